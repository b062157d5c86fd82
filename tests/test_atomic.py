"""Atomic writes: the old file or the complete new one, never a cut one, and no temporary file left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from srjudge.atomic import write_bytes, write_json, write_text


def test_writes_create_folders_replace_the_file_and_leave_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "record.json"
    assert write_text(target, "first") == target and target.read_text() == "first"
    write_json(target, {"path": Path("x/y.png"), "n": 1})
    assert target.read_text() == '{\n  "path": "x/y.png",\n  "n": 1\n}\n'  # non-JSON values as strings
    assert json.loads(target.read_text()) == {"path": "x/y.png", "n": 1}
    write_bytes(target, b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in target.parent.iterdir()) == ["record.json"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_text(tmp_path / "record.json", "old")

    def power_cut(fd: int) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError, match="power cut"):
        write_text(target, "new")
    assert target.read_text() == "old"
    # What was cut short is a hidden temporary file beside it, which no folder scan picks up.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".record.json.tmp", "record.json"]
