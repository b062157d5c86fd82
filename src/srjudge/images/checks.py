"""Checks for images given to srjudge, with messages that say how to fix the input.

:func:`as_image` is the gate through which arrays from the Python API enter (metric calls, judges,
``degrade``/``replay``); it states the accepted dtypes, value ranges and shapes. The other checks here
are shape checks for images that must align.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from srjudge.errors import ImageError, SizeMismatchError, SpecError

FLOAT_TOLERANCE = 1e-3
"""Float values this far outside [0, 1] (rounding of a resize or a colour conversion) are clipped."""

_CHECKED: ContextVar[bool] = ContextVar("srjudge_inputs_checked", default=False)


def as_image(image: Any, what: str = "image") -> np.ndarray:
    """Check an array given to srjudge and return it in canonical form, or raise :class:`ImageError`.

    The rule (the same for every metric, judge and ``degrade``/``replay`` call):

    * **Shape**: H x W x 3 (RGB, channels last), H and W at least 1. Gray H x W, RGBA H x W x 4,
      channels-first 3 x H x W and batches are refused, each with the one-line fix.
    * **float16, float32, float64**: values must lie in [0, 1]. Excursions of at most
      :data:`FLOAT_TOLERANCE` (1e-3) beyond either end, as float rounding gives, are clipped to
      [0, 1]; anything further out is an error (a 0-255 float array is named as such), never
      rescaled. NaN or infinite values are an error. float16 is widened to float32; float32 and
      float64 arrays in range are returned as they are (no copy).
    * **uint8**: converted explicitly, ``image / 255`` as float32 (as :func:`~srjudge.images.io.load_image`
      does for 8-bit files). **uint16**: ``image / 65535`` as float32 (as for 16-bit files).
    * Any other dtype (bool, int8/16/32/64, uint32/64, complex, object) is an error that names the
      dtype and what to pass instead (e.g. ``.astype(np.uint8)`` for 0-255 integers).
    * Anything but a NumPy array is an error; a ``torch.Tensor`` gets the conversion to pass
      (``t.permute(1, 2, 0).cpu().numpy()``), a PIL image ``np.asarray(img.convert("RGB"))``.

    ``what`` names the image in messages ("SR image", "HR reference", "LR input", "SR candidate 2").
    The cost is one pass for the minimum and one for the maximum; nothing is copied unless a
    conversion or a clip is needed.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what}: {_not_an_array(image)}")
    _check_shape(image, what)
    kind = image.dtype.kind
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    if kind == "f":
        return _checked_float(image.astype(np.float32) if image.dtype == np.float16 else image, what)
    raise ImageError(f"{what}: {_bad_dtype(image)}")


def as_optional_image(image: Any, what: str) -> np.ndarray | None:
    """:func:`as_image`, passing None through (an absent LR input or HR reference)."""
    return None if image is None else as_image(image, what)


def inputs_checked() -> bool:
    """Whether the caller runs inside an entry point that has already checked its images."""
    return _CHECKED.get()


@contextmanager
def checked_inputs() -> Iterator[None]:
    """Mark the images of the enclosed calls as checked, so nested entry points do not check again."""
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


_RULE = "pass float values in [0, 1], or the uint8 (0-255) or uint16 (0-65535) array itself"


def _not_an_array(image: Any) -> str:
    kind = type(image)
    module, name = kind.__module__, kind.__name__
    if module.startswith("torch") and name == "Tensor":
        shape = "x".join(str(n) for n in getattr(image, "shape", ()))
        return (
            f"got a torch.Tensor ({shape}); srjudge takes NumPy H x W x 3 arrays. Convert a 3 x H x W "
            "tensor with t.permute(1, 2, 0).cpu().numpy() (for a batch, one image t[i] at a time)."
        )
    if module.startswith("PIL"):
        return (
            "got a PIL image; srjudge takes NumPy H x W x 3 arrays: pass np.asarray(img.convert('RGB')) "
            "(uint8), or read the file with srjudge.images.io.load_image."
        )
    given = name if module == "builtins" else f"{module}.{name}"
    return f"expected a NumPy H x W x 3 array, got {given}."


def _check_shape(image: np.ndarray, what: str) -> None:
    shape = tuple(image.shape)
    if image.ndim == 3 and shape[2] == 3:
        if shape[0] == 0 or shape[1] == 0:
            raise ImageError(f"{what} has zero size {shape[1]}x{shape[0]}.")
        return
    base = f"{what} must be an H x W x 3 RGB array; got shape {shape}"
    if image.ndim == 2:
        hint = "a gray image: repeat it to RGB with np.repeat(image[:, :, None], 3, axis=2)."
    elif image.ndim == 3 and shape[2] == 4:
        hint = "RGBA: drop the alpha channel with image[:, :, :3]."
    elif image.ndim == 3 and shape[2] == 1:
        hint = "one channel: repeat it to RGB with np.repeat(image, 3, axis=2)."
    elif image.ndim == 3 and shape[0] in (1, 3):
        hint = "channels first (C x H x W): transpose with image.transpose(1, 2, 0)."
    elif image.ndim == 4:
        hint = "a batch: pass one image at a time, as H x W x 3."
    else:
        hint = "pass an H x W x 3 array."
    raise ImageError(f"{base}, {hint}")


def _checked_float(image: np.ndarray, what: str) -> np.ndarray:
    lo, hi = float(np.min(image)), float(np.max(image))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        nan = int(np.count_nonzero(np.isnan(image)))
        inf = int(np.count_nonzero(np.isinf(image)))
        found = " and ".join(
            part for part in (f"{nan} NaN" if nan else "", f"{inf} infinite" if inf else "") if part
        )
        raise ImageError(
            f"{what}: float values must be finite, in [0, 1]; got {found} value(s). "
            "Check the step that made the image (a division by zero, an overflow)."
        )
    if lo >= 0.0 and hi <= 1.0:
        return image
    if lo >= -FLOAT_TOLERANCE and hi <= 1.0 + FLOAT_TOLERANCE:
        clipped: np.ndarray = np.clip(image, 0.0, 1.0)
        return clipped
    problems = []
    if hi > 1.0 + FLOAT_TOLERANCE:
        problems.append(f"got max {round(hi, 4)}{_high_hint(hi)}")
    if lo < -FLOAT_TOLERANCE:
        problems.append(f"got min {round(lo, 4)}{_low_hint(lo, hi)}")
    raise ImageError(
        f"{what}: float values must be in [0, 1] (excursions up to {FLOAT_TOLERANCE:g} are clipped); "
        + "; ".join(problems)
        + "."
    )


def _high_hint(hi: float) -> str:
    if hi <= 1.5:
        return " (an overshoot, as resampling or a network can give): clip with np.clip(image, 0, 1)"
    if hi <= 255.0 + FLOAT_TOLERANCE * 255.0:
        return " (looks like 0-255): divide by 255, or pass the uint8 array itself"
    if hi <= 65535.0 + FLOAT_TOLERANCE * 65535.0:
        return " (looks like 0-65535): divide by 65535, or pass the uint16 array itself"
    return f": {_RULE}"


def _low_hint(lo: float, hi: float) -> str:
    if lo >= -1.0 - FLOAT_TOLERANCE and hi <= 1.0 + FLOAT_TOLERANCE and lo < -0.5:
        return " (looks like [-1, 1], as some networks output): map it with (image + 1) / 2"
    if lo >= -0.5:
        return " (an undershoot, as resampling or a network can give): clip with np.clip(image, 0, 1)"
    return f": {_RULE}"


def _bad_dtype(image: np.ndarray) -> str:
    dtype = image.dtype
    given = f"dtype {dtype} is not an image type srjudge accepts; {_RULE}"
    if dtype.kind == "b":
        return f"{given}. A bool mask becomes a black/white image with mask.astype(np.uint8) * 255."
    if dtype.kind in "iu":
        lo, hi = int(np.min(image)), int(np.max(image))
        if lo >= 0 and hi <= 255:
            fix = "so cast it with image.astype(np.uint8)"
        elif lo >= 0 and hi <= 65535:
            fix = "so cast it with image.astype(np.uint16)"
        else:
            fix = "so scale it to float in [0, 1]"
        return f"{given}. Its values are {lo} to {hi}, {fix} (OpenCV and NumPy arithmetic give int32/int64)."
    return f"{given}."


def check_image(image: np.ndarray, what: str = "image") -> None:
    """Raise unless ``image`` is an H x W x 3 array (shape only; :func:`as_image` checks values too)."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what}: {_not_an_array(image)}")
    _check_shape(image, what)


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def check_same_size(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Two images that are compared pixel by pixel must have the same width and height."""
    check_image(a, name_a)
    check_image(b, name_b)
    if a.shape[:2] != b.shape[:2]:
        raise SizeMismatchError(
            f"{name_a} is {_size(a)} (WxH) but {name_b} is {_size(b)}: they must be the same size. "
            "Crop or resize one of them before comparing, or check that you paired the right files."
        )


def lr_scale(sr: np.ndarray, lr: np.ndarray) -> int:
    """The integer upscaling factor from ``lr`` to ``sr``; 0 when there is none."""
    (h, w), (lh, lw) = sr.shape[:2], lr.shape[:2]
    if lh == 0 or lw == 0 or h % lh or w % lw or h // lh != w // lw:
        return 0
    return int(h // lh)


def check_lr_scale(sr: np.ndarray, lr: np.ndarray, name_sr: str, name_lr: str) -> int:
    """The SR image must be the LR input upscaled by one integer factor (x1 allowed)."""
    check_image(sr, name_sr)
    check_image(lr, name_lr)
    scale = lr_scale(sr, lr)
    if scale == 0:
        raise SizeMismatchError(
            f"{name_sr} is {_size(sr)} (WxH) and {name_lr} is {_size(lr)}: the SR size must be the LR size "
            "times one integer factor in both directions. Check the pairing, or crop the SR image to "
            "a multiple of the LR size; srjudge does not resize silently."
        )
    return scale


def crop_border(image: np.ndarray, border: int) -> np.ndarray:
    """Shave ``border`` pixels from every side, as SR papers do before comparing (usually = scale)."""
    if border < 0:
        raise SpecError(f"crop_border must be >= 0, got {border}.")
    if border == 0:
        return image
    h, w = image.shape[:2]
    if 2 * border >= min(h, w):
        raise ImageError(f"crop_border={border} removes the whole {w}x{h} (WxH) image.")
    return image[border:-border, border:-border]
