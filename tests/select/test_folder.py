"""Selection over folders and manifests: resumable, and every manifest problem reported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import q8
from srjudge.errors import SrjudgeError
from srjudge.images.io import save_png
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from srjudge.select.folder import items_from_folder, items_from_manifest, select_items
from srjudge.sr import classical


def _write_item(root: Path, name: str, hr: np.ndarray) -> None:
    lr = q8(imresize(hr, 0.25))
    save_png(root / name / "lr.png", lr)
    save_png(root / name / "candidates" / "bicubic.png", classical.bicubic(lr, 4))
    save_png(root / name / "candidates" / "lanczos.png", classical.lanczos(lr, 4))
    save_png(root / name / "candidates" / "nearest.png", classical.nearest(lr, 4))


def test_folder_mode_is_resumable(tmp_path: Path, astronaut: np.ndarray) -> None:
    from srjudge.images.samples import bundled_photo

    root = tmp_path / "in"
    _write_item(root, "astronaut", astronaut)
    _write_item(root, "coffee", bundled_photo("coffee"))
    (root / "broken").mkdir()
    with pytest.raises(SrjudgeError, match="broken: no lr"):
        items_from_folder(root)
    (root / "broken").rmdir()
    items = items_from_folder(root)
    out = tmp_path / "out"
    first = select_items(items, create_judge("trust"), out, top_k=2)
    assert first.done == ["astronaut", "coffee"] and (out / "coffee" / "fused.png").is_file()
    record = json.loads((out / "astronaut" / "selection.json").read_text())
    assert Path(record["chosen"]["path"]).stem != "nearest"
    again = select_items(items, create_judge("trust"), out, top_k=2)
    assert again.skipped == ["astronaut", "coffee"] and not again.done
    changed = select_items(items, create_judge("trust"), out, top_k=3)  # other settings: recomputed
    assert changed.done == ["astronaut", "coffee"]
    rows = list(csv.DictReader((out / "selections.csv").open()))
    assert len(rows) == 4


def test_manifest_mode_reports_every_problem(tmp_path: Path, astronaut: np.ndarray) -> None:
    _write_item(tmp_path, "a", astronaut)
    good = tmp_path / "m.csv"
    good.write_text(
        "item,lr,candidate\na,a/lr.png,a/candidates/bicubic.png\na,a/lr.png,a/candidates/lanczos.png\n"
    )
    [item] = items_from_manifest(good)
    assert item.name == "a" and len(item.candidates) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"item": "a", "lr": "a/lr.png", "candidate": "a/candidates/missing.png"}\n'
        '{"item": "a", "lr": "a/other.png", "candidate": "a/candidates/bicubic.png"}\n'
        '{"item": "b", "lr": "a/lr.png"}\n'
    )
    with pytest.raises(SrjudgeError) as info:
        items_from_manifest(bad)
    message = str(info.value)
    assert "row 1: candidate file 'a/candidates/missing.png' not found" in message
    assert "row 2: item 'a' has two LR inputs" in message and "row 3: missing candidate" in message
