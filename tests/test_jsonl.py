"""Append-only JSONL files: a cut last line is tolerated (and dropped before appending), nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from srjudge.errors import SrjudgeError
from srjudge.jsonl import open_for_append, read_jsonl


def test_a_cut_last_line_is_left_out_and_dropped_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"b": 2}\n{"c": ')  # a blank line, then a write cut by a kill
    assert read_jsonl(path) == [(1, {"a": 1}), (3, {"b": 2})]
    with open_for_append(path) as handle:
        handle.write('{"c": 3}\n')
    assert read_jsonl(path) == [(1, {"a": 1}), (3, {"b": 2}), (4, {"c": 3})]
    assert path.read_text().endswith('{"b": 2}\n{"c": 3}\n')


def test_a_bad_line_before_the_last_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"b": 2}\n')
    with pytest.raises(SrjudgeError, match=r"rows\.jsonl:2: not valid JSON .*the file is corrupt"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n{"b": \n')  # terminated, so not a cut write
    with pytest.raises(SrjudgeError, match=r"rows\.jsonl:2: not valid JSON"):
        read_jsonl(path)
