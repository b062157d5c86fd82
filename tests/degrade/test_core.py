"""degrade() and replay(): determinism, replay from records, sizes, crop, errors and speed."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from srjudge.degrade import PIPELINES, DegradationRecord, degrade, replay
from srjudge.errors import ImageError, SizeMismatchError, SpecError, UnknownNameError
from srjudge.images.io import to_uint8
from srjudge.images.resize import imresize
from tests.degrade.helpers import PIPELINE_NAMES


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


def test_replay_checks_size(hr: np.ndarray) -> None:
    _, record = degrade(hr, "realesrgan", 4, seed=0)
    with pytest.raises(SizeMismatchError):
        replay(hr[:48], record)


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


# --- input checks ---------------------------------------------------------------------------------


def test_degrade_checks_its_input(u8: np.ndarray, f: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"HR image: .*0-255"):
        degrade(u8.astype(np.float32), "bicubic", 2)
    a, _ = degrade(u8, "bicubic", 2, seed=1)
    b, _ = degrade(f, "bicubic", 2, seed=1)
    assert np.array_equal(a, b)
