"""Arrays given to the Python API are checked (srjudge.images.checks): dtype, range, shape, named."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from srjudge.errors import ImageError, SizeMismatchError, SrjudgeError
from srjudge.images.checks import FLOAT_TOLERANCE, as_image, check_lr_scale, check_same_size


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


def test_size_checks_say_both_sizes_and_a_fix() -> None:
    a = np.zeros((10, 20, 3), np.float32)
    with pytest.raises(SizeMismatchError, match=r"20x10.*12x10.*same size"):
        check_same_size(a, np.zeros((10, 12, 3), np.float32), "SR", "HR")
    assert check_lr_scale(np.zeros((40, 80, 3)), np.zeros((10, 20, 3)), "SR", "LR") == 4
    with pytest.raises(SizeMismatchError, match="integer factor"):
        check_lr_scale(np.zeros((41, 80, 3)), np.zeros((10, 20, 3)), "SR", "LR")
    with pytest.raises(SizeMismatchError):
        check_lr_scale(np.zeros((40, 60, 3)), np.zeros((10, 20, 3)), "SR", "LR")  # x4 by x3
