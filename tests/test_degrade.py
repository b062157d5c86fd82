"""Tests for srjudge.degrade: determinism, replay, records, ranges, kernels and the folder runner."""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from skimage import data

import srjudge.degrade.run as run_module
from srjudge.degrade import (
    PIPELINES,
    DegradationRecord,
    degrade,
    degrade_folder,
    derive_seed,
    make_kernel,
    replay,
    sample_record,
)
from srjudge.degrade.kernels import KERNEL_TYPES, gaussian_kernel, generalized_gaussian_kernel
from srjudge.degrade.pipelines import GAUSSIAN_KERNELS
from srjudge.errors import ImageError, SizeMismatchError, SpecError, UnknownNameError
from srjudge.images.io import load_image, save_png, to_uint8
from srjudge.images.resize import imresize

PIPELINE_NAMES = ("realesrgan", "face", "bicubic")
N_RECORDS = 200


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """The bundled astronaut image, float32 RGB in [0, 1], 512 x 512."""
    return data.astronaut().astype(np.float32) / np.float32(255.0)


@pytest.fixture(scope="module")
def hr(astronaut: np.ndarray) -> np.ndarray:
    """A small HR crop (96 x 120: divisible by 2, 3 and 4)."""
    return np.ascontiguousarray(astronaut[40:136, 180:300])


# --- determinism, replay and records ---------------------------------------------------------------


@pytest.mark.parametrize("pipeline", PIPELINE_NAMES)
def test_same_seed_is_byte_identical(hr: np.ndarray, pipeline: str) -> None:
    a, rec_a = degrade(hr, pipeline, 4, seed=11)
    b, rec_b = degrade(hr.copy(), pipeline, 4, seed=11)
    assert to_uint8(a).tobytes() == to_uint8(b).tobytes()
    assert rec_a == rec_b


@pytest.mark.parametrize("pipeline", ["realesrgan", "face"])
def test_other_seed_differs(hr: np.ndarray, pipeline: str) -> None:
    a, rec_a = degrade(hr, pipeline, 4, seed=1)
    b, rec_b = degrade(hr, pipeline, 4, seed=2)
    assert not np.array_equal(to_uint8(a), to_uint8(b))
    assert rec_a.steps != rec_b.steps


def test_input_not_modified(hr: np.ndarray) -> None:
    before = hr.copy()
    degrade(hr, "realesrgan", 2, seed=5)
    assert np.array_equal(hr, before)


def test_output_is_quantised_float32(hr: np.ndarray) -> None:
    lr, _ = degrade(hr, "realesrgan", 4, seed=3)
    assert lr.dtype == np.float32
    assert np.array_equal(lr, to_uint8(lr).astype(np.float32) / np.float32(255.0))


@pytest.mark.parametrize("pipeline", PIPELINE_NAMES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_size_and_replay_from_json(hr: np.ndarray, pipeline: str, scale: int) -> None:
    for seed in (0, 1, 2):
        lr, record = degrade(hr, pipeline, scale, seed)
        assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
        assert record.output_size == lr.shape[:2]
        assert record.input_size == hr.shape[:2]
        again = replay(hr, DegradationRecord.from_json(record.to_json()))
        assert to_uint8(again).tobytes() == to_uint8(lr).tobytes()


def test_replay_varies_only_through_the_record(hr: np.ndarray) -> None:
    """Changing a recorded noise seed changes the output: replay reads the record, not a shared RNG."""
    lr, record = degrade(hr, "realesrgan", 4, seed=8)
    data_ = record.to_dict()
    for step in data_["steps"]:
        if step["op"] == "noise":
            step["noise_seed"] += 1
    other = replay(hr, DegradationRecord.from_dict(data_))
    assert not np.array_equal(other, lr)


def test_record_json_round_trip(hr: np.ndarray) -> None:
    for pipeline in PIPELINE_NAMES:
        _, record = degrade(hr[:95], pipeline, 4, seed=21, crop=True)
        text = record.to_json()
        back = DegradationRecord.from_json(text)
        assert back == record
        assert back.to_json() == text
        parsed = json.loads(text)
        assert parsed["pipeline"] == pipeline and parsed["scale"] == 4 and parsed["seed"] == 21
        assert parsed["input_size"] == [95, 120] and parsed["output_size"] == [23, 30]
        assert parsed["version"]
        assert record.cropped


def test_record_rejects_malformed_json() -> None:
    with pytest.raises(SpecError):
        DegradationRecord.from_json("{not json")
    with pytest.raises(SpecError, match="missing"):
        DegradationRecord.from_dict({"pipeline": "bicubic"})


def test_record_is_frozen(hr: np.ndarray) -> None:
    _, record = degrade(hr, "bicubic", 2)
    with pytest.raises(AttributeError):
        record.seed = 3  # type: ignore[misc]


def test_replay_checks_size(hr: np.ndarray) -> None:
    _, record = degrade(hr, "realesrgan", 4, seed=0)
    with pytest.raises(SizeMismatchError):
        replay(hr[:48], record)


# --- parameter ranges over many seeds ----------------------------------------------------------------


def _plausible(count: int, n: int, p: float) -> bool:
    """``count`` of ``n`` Bernoulli(p) draws lies within 4.5 standard deviations of its mean."""
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


def _check_gaussian_family(step: dict, sigma: tuple[float, float]) -> None:
    kind = step["kernel"]
    assert kind in GAUSSIAN_KERNELS
    assert sigma[0] <= step["sigma_x"] <= sigma[1]
    assert sigma[0] <= step["sigma_y"] <= sigma[1]
    if kind.endswith("aniso"):
        assert -math.pi <= step["theta"] <= math.pi
    else:
        assert step["sigma_x"] == step["sigma_y"] and step["theta"] == 0.0
    if kind.startswith("generalized"):
        assert 0.5 <= step["beta"] <= 4.0
    elif kind.startswith("plateau"):
        assert 1.0 <= step["beta"] <= 2.0
    else:
        assert "beta" not in step


def _check_blur(step: dict, sigma: tuple[float, float]) -> None:
    assert step["size"] in range(7, 22, 2)
    if step["kernel"] == "sinc":
        low = math.pi / 3 if step["size"] < 13 else math.pi / 5
        assert low <= step["omega_c"] <= math.pi
    else:
        _check_gaussian_family(step, sigma)


def _check_resize(step: dict, probs_range: tuple[float, float], reference: tuple[int, int]) -> None:
    assert step["mode"] in ("area", "bilinear", "bicubic")
    factor = step["factor"]
    if step["direction"] == "up":
        assert 1.0 <= factor <= probs_range[1]
    elif step["direction"] == "down":
        assert probs_range[0] <= factor <= 1.0
    else:
        assert step["direction"] == "keep" and factor == 1.0
    assert step["size"] == [max(1, int(reference[0] * factor)), max(1, int(reference[1] * factor))]


def _check_noise(step: dict, sigma: tuple[float, float], scale: tuple[float, float]) -> None:
    if step["type"] == "gaussian":
        assert sigma[0] <= step["sigma"] <= sigma[1]
    else:
        assert step["type"] == "poisson" and scale[0] <= step["scale"] <= scale[1]
    assert isinstance(step["gray"], bool)
    assert isinstance(step["noise_seed"], int) and step["noise_seed"] >= 0


def test_realesrgan_parameters_in_published_ranges() -> None:
    hr_size, lr_size = (256, 320), (64, 80)
    records = [sample_record(hr_size, "realesrgan", 4, seed) for seed in range(N_RECORDS)]
    counts: Counter[str] = Counter()
    kernel_types: Counter[str] = Counter()
    for rec in records:
        s = {step["name"]: step for step in rec.steps}
        _check_blur(s["blur1"], (0.2, 3.0))
        _check_resize(s["resize1"], (0.15, 1.5), hr_size)
        _check_noise(s["noise1"], (1.0, 30.0), (0.05, 3.0))
        _check_resize(s["resize2"], (0.3, 1.2), lr_size)
        _check_noise(s["noise2"], (1.0, 25.0), (0.05, 2.5))
        for name in ("jpeg1", "jpeg2", "jpeg_final"):
            assert isinstance(s[name]["quality"], int) and 30 <= s[name]["quality"] <= 95
            assert s[name]["encoder"].startswith("opencv-")
        if s["blur2"]["kernel"] == "none":
            counts["blur2_skipped"] += 1
        else:
            _check_blur(s["blur2"], (0.2, 1.5))
        assert s["resize_final"]["size"] == list(lr_size)
        assert s["resize_final"]["mode"] in ("area", "bilinear", "bicubic")
        final = s["sinc_final"]
        if final["kernel"] == "sinc":
            counts["final_sinc"] += 1
            assert final["size"] in range(7, 22, 2) and math.pi / 3 <= final["omega_c"] <= math.pi
        else:
            assert final["kernel"] == "pulse"
        order = s["final_order"]["order"]
        names = [step["name"] for step in rec.steps]
        if order == "resize_sinc_jpeg":
            counts["resize_first"] += 1
            assert names[-4:] == ["resize_final", "sinc_final", "jpeg_final", "quantise"]
        else:
            assert order == "jpeg_resize_sinc"
            assert names[-4:] == ["jpeg_final", "resize_final", "sinc_final", "quantise"]
        for name in ("blur1", "blur2"):
            kernel_types[s[name]["kernel"]] += 1
        counts[f"resize1_{s['resize1']['direction']}"] += 1
        counts[f"resize2_{s['resize2']['direction']}"] += 1
        for name in ("noise1", "noise2"):
            counts["gaussian"] += s[name]["type"] == "gaussian"
            counts["gray"] += s[name]["gray"]

    n = N_RECORDS
    assert _plausible(counts["blur2_skipped"], n, 0.2)
    assert _plausible(counts["final_sinc"], n, 0.8)
    assert _plausible(counts["resize_first"], n, 0.5)
    assert _plausible(counts["gaussian"], 2 * n, 0.5)
    assert _plausible(counts["gray"], 2 * n, 0.4)
    for direction, p1, p2 in (("up", 0.2, 0.3), ("down", 0.7, 0.4), ("keep", 0.1, 0.3)):
        assert _plausible(counts[f"resize1_{direction}"], n, p1)
        assert _plausible(counts[f"resize2_{direction}"], n, p2)
    blurs = 2 * n - counts["blur2_skipped"]
    assert _plausible(kernel_types["sinc"], blurs, 0.1)
    probs = dict(zip(GAUSSIAN_KERNELS, (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), strict=True))
    gaussian_blurs = blurs - kernel_types["sinc"]
    for kind, p in probs.items():
        assert _plausible(kernel_types[kind], gaussian_blurs, p), (kind, kernel_types)
    # The two most likely types come out on top.
    assert [k for k, _ in kernel_types.most_common(2)] == ["iso", "aniso"]


def test_face_parameters_in_ranges() -> None:
    hr_size = (128, 96)
    for seed in range(N_RECORDS):
        rec = sample_record(hr_size, "face", 2, seed)
        s = {step["name"]: step for step in rec.steps}
        for name in ("blur1", "blur2"):
            assert s[name]["kernel"] == "aniso" and s[name]["size"] in (7, 9, 11)
            _check_gaussian_family(s[name], (0.2, 3.0))
        _check_resize(s["resize1"], (0.5, 2.0), hr_size)
        assert s["resize_target"]["size"] == [64, 48]
        _check_noise(s["noise1"], (0.0, 15.0), (0.05, 2.0))
        assert 30 <= s["jpeg1"]["quality"] <= 90
        assert rec.output_size == (64, 48)


def test_bicubic_draws_nothing() -> None:
    assert sample_record((64, 64), "bicubic", 4, 1).steps == sample_record((64, 64), "bicubic", 4, 2).steps


# --- kernels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KERNEL_TYPES)
@pytest.mark.parametrize("size", [7, 13, 21])
def test_kernels_sum_to_one(kind: str, size: int) -> None:
    params = {"kernel": kind, "size": size, "sigma_x": 2.5, "sigma_y": 0.7, "theta": 0.6, "beta": 1.7}
    params["omega_c"] = math.pi / 4
    kernel = make_kernel(params)
    assert kernel.shape == (size, size)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-9)
    # Point symmetry lets filter2D (correlation) stand in for convolution.
    assert np.allclose(kernel, kernel[::-1, ::-1])


def test_kernels_from_sampled_records_sum_to_one() -> None:
    for seed in range(50):
        for step in sample_record((64, 64), "realesrgan", 4, seed).steps:
            if step["op"] == "blur" and step["kernel"] != "none":
                assert make_kernel(step).sum() == pytest.approx(1.0, abs=1e-9)


def test_kernel_shapes() -> None:
    iso = gaussian_kernel(15, 2.0, 2.0)
    one_d = np.exp(-0.5 * (np.arange(-7, 8) / 2.0) ** 2)
    assert np.allclose(iso, np.outer(one_d, one_d) / np.outer(one_d, one_d).sum())
    # beta = 1 turns the generalized Gaussian into the Gaussian.
    assert np.allclose(
        generalized_gaussian_kernel(11, 2.0, 0.8, 0.3, 1.0), gaussian_kernel(11, 2.0, 0.8, 0.3)
    )
    # theta = pi/2 swaps the axes.
    assert np.allclose(gaussian_kernel(11, 2.0, 0.8, math.pi / 2), gaussian_kernel(11, 0.8, 2.0, 0.0))
    sinc = make_kernel({"kernel": "sinc", "size": 21, "omega_c": math.pi / 3})
    assert np.allclose(sinc, sinc.T) and np.allclose(sinc, sinc[::-1])
    assert sinc.min() < 0  # ringing lobes
    pulse = make_kernel({"kernel": "pulse", "size": 21})
    assert pulse[10, 10] == 1.0 and pulse.sum() == 1.0


# --- bicubic, sizes and errors -----------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_equals_imresize(hr: np.ndarray, scale: int) -> None:
    lr, record = degrade(hr, "bicubic", scale, seed=123)
    expected = imresize(hr, output_shape=(hr.shape[0] // scale, hr.shape[1] // scale))
    assert np.array_equal(to_uint8(lr), to_uint8(expected))
    assert [s["op"] for s in record.steps] == ["bicubic", "quantise"]


def test_non_divisible_size_raises_with_advice(hr: np.ndarray) -> None:
    with pytest.raises(ImageError) as info:
        degrade(hr[:95, :118], "realesrgan", 4)
    message = str(info.value)
    assert "95x118" in message and "92x116" in message and "crop=True" in message


def test_crop_option_crops_and_records(hr: np.ndarray) -> None:
    odd = hr[:95, :118]
    lr, record = degrade(odd, "face", 4, seed=4, crop=True)
    assert lr.shape == (23, 29, 3)
    assert record.input_size == (95, 118)
    assert record.step("crop") == {"name": "crop", "op": "crop", "top": 0, "left": 0, "size": [92, 116]}
    assert np.array_equal(replay(odd, record), lr)
    # Cropping explicitly gives the same result as the crop option.
    plain, _ = degrade(odd[:92, :116], "face", 4, seed=4)
    assert np.array_equal(plain, lr)
    # A divisible image is not cropped, and its record says so.
    _, rec = degrade(hr, "face", 4, seed=4, crop=True)
    assert not rec.cropped


def test_unknown_pipeline_did_you_mean(hr: np.ndarray) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: realesrgan"):
        degrade(hr, "realesrgn")
    assert set(PIPELINES.names()) == set(PIPELINE_NAMES)
    assert PIPELINES.canonical("Real-ESRGAN") == "realesrgan"


@pytest.mark.parametrize("scale", [1, 5, 2.0, True])
def test_bad_scale(hr: np.ndarray, scale: object) -> None:
    with pytest.raises(SpecError, match="scale"):
        degrade(hr, "bicubic", scale)  # type: ignore[arg-type]


def test_bad_seed_and_image(hr: np.ndarray) -> None:
    with pytest.raises(SpecError, match="seed"):
        degrade(hr, "bicubic", 2, seed=-1)
    with pytest.raises(ImageError, match="H x W x 3"):
        degrade(hr[:, :, 0], "bicubic", 2)


def test_tiny_images(hr: np.ndarray) -> None:
    for seed in range(10):
        lr, _ = degrade(hr[:4, :4], "realesrgan", 4, seed)
        assert lr.shape == (1, 1, 3)


def test_speed_512(astronaut: np.ndarray) -> None:
    """A 512 x 512 image through realesrgan takes well under a second (loose bound for busy machines)."""
    best = math.inf
    for seed in range(3):
        start = time.perf_counter()
        degrade(astronaut, "realesrgan", 4, seed)
        best = min(best, time.perf_counter() - start)
    assert best < 2.0


# --- folder runner ---------------------------------------------------------------------------------


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


def test_replay_record_errors_name_the_problem(hr: np.ndarray, tmp_path: Path) -> None:
    _, record = degrade(hr, "bicubic", 2, seed=0)
    with pytest.raises(SpecError, match="no such degradation record"):
        replay(hr, tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(SpecError, match=r"broken\.json: degradation record: not valid JSON"):
        replay(hr, broken)
    with pytest.raises(SpecError, match="missing field"):
        replay(hr, {k: v for k, v in record.to_dict().items() if k != "steps"})
    with pytest.raises(SpecError, match="got int"):
        replay(hr, 7)  # type: ignore[arg-type]


def test_replay_checks_the_hr_array(hr: np.ndarray) -> None:
    _, record = degrade(hr, "bicubic", 2, seed=0)
    with pytest.raises(ImageError, match=r"HR image: float values must be in .*0-255"):
        replay(hr * 255.0, record)
    assert replay(to_uint8(hr), record).tobytes() == replay(hr, record).tobytes()
