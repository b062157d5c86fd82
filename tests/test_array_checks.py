"""Arrays given to the Python API are checked: dtype, value range, shape, named in the message."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import srjudge.images.checks as checks
import srjudge.judges.base as judges_base
import srjudge.metrics.base as metrics_base
from srjudge.degrade import degrade
from srjudge.errors import ImageError, SrjudgeError
from srjudge.images.checks import FLOAT_TOLERANCE, as_image
from srjudge.images.io import to_uint8
from srjudge.judges import create_judge
from srjudge.metrics import create_metric


@pytest.fixture(scope="module")
def u8() -> np.ndarray:
    """A 192x128 crop of a bundled photo as the uint8 array OpenCV or PIL would give."""
    from srjudge.images.samples import bundled_photo

    return np.ascontiguousarray(to_uint8(bundled_photo("astronaut"))[:128, :192])


@pytest.fixture(scope="module")
def f(u8: np.ndarray) -> np.ndarray:
    """The same image as float32 in [0, 1]."""
    return u8.astype(np.float32) / np.float32(255.0)


@pytest.fixture(scope="module")
def noisy(f: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.clip(f + rng.normal(0.0, 0.05, f.shape).astype(np.float32), 0.0, 1.0)


# --- the rule, on as_image ------------------------------------------------------------------------


def test_float_in_range_passes_through_without_a_copy(f: np.ndarray) -> None:
    assert as_image(f) is f
    f64 = f.astype(np.float64)
    assert as_image(f64) is f64


def test_uint8_and_uint16_are_scaled_to_float32(u8: np.ndarray) -> None:
    out = as_image(u8)
    assert out.dtype == np.float32
    assert np.array_equal(out, u8.astype(np.float32) / np.float32(255.0))
    u16 = u8.astype(np.uint16) * np.uint16(257)  # 8-bit levels as 16-bit: the same values
    out16 = as_image(u16)
    assert out16.dtype == np.float32
    assert np.allclose(out16, out, atol=1e-6)


def test_float16_is_widened(f: np.ndarray) -> None:
    out = as_image(f.astype(np.float16))
    assert out.dtype == np.float32
    assert np.allclose(out, f, atol=1e-3)


def test_tiny_excursions_are_clipped_larger_ones_refused(f: np.ndarray) -> None:
    image = f.copy()
    image[0, 0, 0], image[0, 1, 1] = 1.0005, -0.0005
    out = as_image(image)
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.array_equal(out[1:], image[1:])
    assert image[0, 0, 0] == np.float32(1.0005)  # the caller's array is left alone
    image[0, 0, 0] = 1.0 + 2 * FLOAT_TOLERANCE
    with pytest.raises(ImageError, match=r"got max 1\.002.*np\.clip"):
        as_image(image, "SR image")


def test_255_float_is_refused_with_the_fix(u8: np.ndarray) -> None:
    with pytest.raises(ImageError) as info:
        as_image(u8.astype(np.float32), "SR image")
    message = str(info.value)
    assert message.startswith("SR image: float values must be in [0, 1]")
    assert "0-255" in message and "divide by 255" in message and "uint8" in message
    assert f"got max {float(u8.max())}" in message


def test_65535_float_and_minus_one_to_one_are_named() -> None:
    with pytest.raises(ImageError, match="0-65535"):
        as_image(np.full((4, 4, 3), 40000.0, np.float32))
    ramp = np.linspace(-1.0, 1.0, 48, dtype=np.float32).reshape(4, 4, 3)
    with pytest.raises(ImageError, match=r"\[-1, 1\].*\(image \+ 1\) / 2"):
        as_image(ramp)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_refused(f: np.ndarray, bad: float) -> None:
    image = f.copy()
    image[5, 5, 1] = bad
    kind = "NaN" if math.isnan(bad) else "infinite"
    with pytest.raises(ImageError, match=f"HR reference: .*1 {kind} value"):
        as_image(image, "HR reference")


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint32])
def test_other_integer_dtypes_are_refused_naming_the_dtype(u8: np.ndarray, dtype: Any) -> None:
    with pytest.raises(ImageError) as info:
        as_image(u8.astype(dtype), "SR image")
    message = str(info.value)
    assert f"dtype {np.dtype(dtype).name}" in message
    assert "astype(np.uint8)" in message


def test_wide_integers_get_the_uint16_or_scaling_hint() -> None:
    with pytest.raises(ImageError, match=r"astype\(np\.uint16\)"):
        as_image(np.full((4, 4, 3), 4000, np.int32))
    with pytest.raises(ImageError, match=r"-5 to 7.*float in \[0, 1\]"):
        as_image(np.array([-5, 7] * 24, np.int64).reshape(4, 4, 3))


def test_bool_is_refused(f: np.ndarray) -> None:
    with pytest.raises(ImageError, match="dtype bool"):
        as_image(f > 0.5)


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((8, 8), "gray"),
        ((8, 8, 1), "one channel"),
        ((8, 8, 4), "RGBA"),
        ((3, 8, 9), r"transpose\(1, 2, 0\)"),
        ((2, 8, 8, 3), "one image at a time"),
        ((0, 8, 3), "zero size"),
    ],
)
def test_shapes_are_refused_with_the_fix(shape: tuple[int, ...], hint: str) -> None:
    with pytest.raises(ImageError, match=hint):
        as_image(np.zeros(shape, np.float32), "SR image")


def test_non_arrays_are_refused() -> None:
    tensor_type = type("Tensor", (), {"__module__": "torch", "shape": (3, 8, 8)})
    with pytest.raises(ImageError, match=r"torch\.Tensor.*permute\(1, 2, 0\)\.cpu\(\)\.numpy\(\)"):
        as_image(tensor_type(), "SR image")
    with pytest.raises(ImageError, match="got list"):
        as_image([[0.0, 0.5]], "SR image")


def test_errors_are_srjudge_errors(u8: np.ndarray) -> None:
    with pytest.raises(SrjudgeError):
        as_image(u8.astype(np.float64))


# --- metrics --------------------------------------------------------------------------------------


def test_niqe_of_a_255_float_array_raises(u8: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"SR image: .*0-255"):
        create_metric("niqe")(u8.astype(np.float32))


def test_niqe_of_uint8_equals_niqe_of_float(u8: np.ndarray, f: np.ndarray) -> None:
    niqe = create_metric("niqe")
    assert niqe(u8) == pytest.approx(niqe(f), abs=1e-6)


def test_psnr_float_against_uint8(u8: np.ndarray, f: np.ndarray, noisy: np.ndarray) -> None:
    psnr = create_metric("psnr")
    assert psnr(f, hr=u8) == math.inf
    assert psnr(u8, hr=f) == math.inf
    assert psnr(noisy, hr=u8) == pytest.approx(psnr(noisy, hr=f), abs=1e-9)
    assert 20.0 < psnr(noisy, hr=u8) < 40.0


def test_metric_names_hr_and_lr(f: np.ndarray, u8: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"HR reference: .*0-255"):
        create_metric("psnr")(f, hr=u8.astype(np.float32))
    lr = u8[::2, ::2].astype(np.int64)
    with pytest.raises(ImageError, match="LR input: dtype int64"):
        create_metric("niqe")(f, lr=lr)


def test_tiny_excursion_accepted_by_a_metric(f: np.ndarray) -> None:
    image = f.copy()
    image[0, 0] = 1.0005
    assert create_metric("psnr")(image, hr=np.clip(image, 0.0, 1.0)) == math.inf


# --- judges ---------------------------------------------------------------------------------------


def test_judge_names_the_sr_image(u8: np.ndarray, f: np.ndarray) -> None:
    judge = create_judge("psnr")
    with pytest.raises(ImageError, match="SR image: float values must be in"):
        judge.score(u8.astype(np.float32), hr=f)
    with pytest.raises(ImageError, match="HR reference: float values"):
        judge.score(f, hr=u8.astype(np.float64))
    with pytest.raises(ImageError, match="LR input: dtype int32"):
        judge.score(f, hr=f, lr=u8[::2, ::2].astype(np.int32))


def test_judge_names_the_candidate(u8: np.ndarray, f: np.ndarray, noisy: np.ndarray) -> None:
    judge = create_judge("psnr")
    with pytest.raises(ImageError, match="SR candidate 2: float values"):
        judge.score_many([f, noisy, u8.astype(np.float32)], hr=f)
    with pytest.raises(ImageError, match="SR candidate 1: float values"):
        judge.rank([f, u8.astype(np.float32)], hr=f)
    with pytest.raises(ImageError, match=r"b\.png: float values"):
        judge.rank([f, u8.astype(np.float32)], hr=f, names=["a.png", "b.png"])
    with pytest.raises(ImageError, match="SR candidate B: float values"):
        judge.compare(noisy, u8.astype(np.float32), hr=f)
    with pytest.raises(ImageError, match="list of H x W x 3 images"):
        judge.score_many(f, hr=f)


def test_judge_takes_uint8(u8: np.ndarray, f: np.ndarray, noisy: np.ndarray) -> None:
    judge = create_judge("psnr")
    assert judge.score(u8, hr=f).raw == math.inf
    assert judge.rank([to_uint8(noisy), u8], hr=u8).order() == [1, 0]
    assert judge.compare(to_uint8(noisy), u8, hr=f).winner == "B"


def test_candidate_set_judges_check_too(u8: np.ndarray, f: np.ndarray) -> None:
    judge = create_judge("tws")
    with pytest.raises(ImageError, match="SR image: float values"):
        judge.score(u8.astype(np.float32), hr=f)
    with pytest.raises(ImageError, match="SR candidate 0: float values"):
        judge.score_many([u8.astype(np.float32)], hr=f)
    assert judge.score(u8, hr=f).score == pytest.approx(judge.score(f, hr=f).score)


def test_images_are_checked_once(monkeypatch: pytest.MonkeyPatch, u8: np.ndarray, f: np.ndarray) -> None:
    names: list[str] = []

    def counting(image: Any, what: str = "image") -> np.ndarray:
        names.append(what)
        return as_image(image, what)

    for module in (checks, judges_base, metrics_base):
        monkeypatch.setattr(module, "as_image", counting)
    judge = create_judge("psnr")
    judge.rank([u8, f], hr=u8)
    assert names == ["SR candidate 0", "SR candidate 1", "HR reference"]
    names.clear()
    create_metric("psnr")(u8, hr=f)
    assert names == ["SR image", "HR reference"]


# --- degrade --------------------------------------------------------------------------------------


def test_degrade_checks_its_input(u8: np.ndarray, f: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"HR image: .*0-255"):
        degrade(u8.astype(np.float32), "bicubic", 2)
    a, _ = degrade(u8, "bicubic", 2, seed=1)
    b, _ = degrade(f, "bicubic", 2, seed=1)
    assert np.array_equal(a, b)
