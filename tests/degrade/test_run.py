"""The folder runner (degrade_folder): outputs, records, resume, seeds, sizes, and replay from sidecars."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import srjudge.degrade.run as run_module
from srjudge.degrade import DegradationRecord, degrade, degrade_folder, derive_seed, replay
from srjudge.errors import ImageError
from srjudge.images.io import load_image, save_png, to_uint8


@pytest.fixture
def hr_folder(tmp_path: Path, astronaut: np.ndarray) -> Path:
    folder = tmp_path / "hr"
    save_png(folder / "a.png", astronaut[0:64, 0:64])
    save_png(folder / "b.png", astronaut[100:148, 200:264])
    save_png(folder / "c.png", astronaut[300:364, 300:356])
    return folder


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_folder_runner_writes_outputs(hr_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "lr"
    seen: list[tuple[int, int]] = []
    summary = degrade_folder(
        [hr_folder], out, "realesrgan", 4, seed=5, progress=lambda d, t, _: seen.append((d, t))
    )
    assert summary.written == 3 and summary.skipped == 0 and not summary.failed
    assert seen == [(1, 3), (2, 3), (3, 3)]
    rows = _read_csv(out / "degradations.csv")
    assert [r["name"] for r in rows] == ["a.png", "b.png", "c.png"]
    for row, stem in zip(rows, "abc", strict=True):
        lr_path, sidecar = out / f"{stem}.png", out / f"{stem}.json"
        assert row["lr"] == f"{stem}.png" and row["sidecar"] == f"{stem}.json"
        record = DegradationRecord.from_json(sidecar.read_text())
        assert record.seed == derive_seed(5, f"{stem}.png") == int(row["seed"])
        assert record.source == f"{stem}.png" and record.source_sha256
        assert row["blur1_kernel"] == record.step("blur1")["kernel"]  # type: ignore[index]
        assert int(row["jpeg1_quality"]) == record.step("jpeg1")["quality"]  # type: ignore[index]
        # The sidecar alone reproduces the saved LR image.
        lr = load_image(lr_path)
        assert lr.shape[:2] == record.output_size
        again = replay(load_image(hr_folder / f"{stem}.png"), record)
        assert np.array_equal(to_uint8(again), to_uint8(lr))


def test_folder_runner_resumes_without_recomputing(
    hr_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "lr"
    degrade_folder([hr_folder], out, "face", 2, seed=1)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed an image that was already done")

    monkeypatch.setattr(run_module, "degrade", boom)
    summary = degrade_folder([hr_folder], out, "face", 2, seed=1)
    assert summary.skipped == 3 and summary.written == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix != ".csv"} == {
        k: v for k, v in stamps.items() if not k.endswith(".csv")
    }
    assert len(_read_csv(out / "degradations.csv")) == 3


def test_folder_runner_redoes_changed_settings_or_inputs(
    hr_folder: Path, tmp_path: Path, astronaut: np.ndarray
) -> None:
    out = tmp_path / "lr"
    degrade_folder([hr_folder], out, "face", 2, seed=1)
    save_png(hr_folder / "b.png", astronaut[0:48, 0:64])
    summary = degrade_folder([hr_folder], out, "face", 2, seed=1)
    assert [i.status for i in summary.items] == ["skipped", "written", "skipped"]
    summary = degrade_folder([hr_folder], out, "face", 2, seed=2)
    assert summary.written == 3
    assert len(_read_csv(out / "degradations.csv")) == 3


def test_folder_runner_interrupted_then_resumed(hr_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "lr"

    def stop_after_first(done: int, total: int, item: run_module.FolderItem) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        degrade_folder([hr_folder], out, "realesrgan", 4, seed=3, progress=stop_after_first)
    assert [r["name"] for r in _read_csv(out / "degradations.csv")] == ["a.png"]
    summary = degrade_folder([hr_folder], out, "realesrgan", 4, seed=3)
    assert [i.status for i in summary.items] == ["skipped", "written", "written"]
    assert sorted(r["name"] for r in _read_csv(out / "degradations.csv")) == ["a.png", "b.png", "c.png"]


def test_folder_seeds_do_not_depend_on_order(hr_folder: Path, tmp_path: Path) -> None:
    files = sorted(hr_folder.iterdir())
    degrade_folder(files, tmp_path / "one", "realesrgan", 4, seed=9)
    degrade_folder(files[::-1], tmp_path / "two", "realesrgan", 4, seed=9)
    degrade_folder(files[1:2], tmp_path / "three", "realesrgan", 4, seed=9)
    for f in files:
        assert (tmp_path / "one" / f"{f.stem}.png").read_bytes() == (
            tmp_path / "two" / f"{f.stem}.png"
        ).read_bytes()
    assert (tmp_path / "one" / "b.png").read_bytes() == (tmp_path / "three" / "b.png").read_bytes()


def test_folder_runner_size_check_and_crop(tmp_path: Path, astronaut: np.ndarray) -> None:
    folder = tmp_path / "hr"
    save_png(folder / "odd.png", astronaut[:50, :61])
    out = tmp_path / "lr"
    with pytest.raises(ImageError, match="crop=True"):
        degrade_folder([folder], out, "bicubic", 4)
    assert not out.exists()
    summary = degrade_folder([folder], out, "bicubic", 4, crop=True)
    assert summary.written == 1
    record = DegradationRecord.from_json((out / "odd.json").read_text())
    assert record.cropped and record.output_size == (12, 15)
    assert _read_csv(out / "degradations.csv")[0]["cropped"] == "True"


def test_folder_runner_mirrors_subfolders_with_root(tmp_path: Path, astronaut: np.ndarray) -> None:
    root = tmp_path / "hr"
    save_png(root / "x" / "img.png", astronaut[:32, :32])
    save_png(root / "y" / "img.png", astronaut[32:64, :32])
    out = tmp_path / "lr"
    files = sorted(root.rglob("*.png"))
    with pytest.raises(ImageError, match="rename"):
        degrade_folder(files, out, "bicubic", 2)
    summary = degrade_folder(files, out, "bicubic", 2, root=root)
    assert summary.written == 2
    assert (out / "x" / "img.png").exists() and (out / "y" / "img.json").exists()


def test_folder_runner_reports_unreadable_file(hr_folder: Path, tmp_path: Path) -> None:
    (hr_folder / "broken.png").write_bytes(b"not a png at all")
    summary = degrade_folder([hr_folder], tmp_path / "lr", "bicubic", 4)
    assert summary.written == 3
    assert [i.name for i in summary.failed] == ["broken.png"]
    assert "broken.png" in summary.failed[0].message


def test_folder_runner_refuses_to_overwrite_inputs(hr_folder: Path) -> None:
    with pytest.raises(ImageError, match="overwrite"):
        degrade_folder([hr_folder], hr_folder, "bicubic", 4)


# --- replay from the JSON sidecar (dict or path) -----------------------------------------------------


def test_replay_from_sidecar_dict_and_path(hr_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "lr"
    degrade_folder([hr_folder], out, "realesrgan", 4, seed=9)
    for stem in "abc":
        sidecar = out / f"{stem}.json"
        with sidecar.open(encoding="utf-8") as fh:
            as_dict = json.load(fh)
        hr_image = load_image(hr_folder / f"{stem}.png")
        saved = to_uint8(load_image(out / f"{stem}.png")).tobytes()
        record = DegradationRecord.from_dict(as_dict)
        original = replay(hr_image, record)
        for given in (as_dict, sidecar, str(sidecar), sidecar.read_text(encoding="utf-8")):
            again = replay(hr_image, given)
            assert again.tobytes() == original.tobytes()
            assert to_uint8(again).tobytes() == saved
        # The LR of degrade() itself, replayed from its record written out and read back as a dict.
        lr, rec = degrade(hr_image, "face", 4, seed=3)
        path = tmp_path / f"{stem}-face.json"
        path.write_text(rec.to_json(), encoding="utf-8")
        with path.open(encoding="utf-8") as fh:
            assert replay(hr_image, json.load(fh)).tobytes() == lr.tobytes()
        assert replay(hr_image, path).tobytes() == lr.tobytes()
