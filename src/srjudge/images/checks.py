"""Shape checks for images that must align, with messages that say how to fix the input."""

from __future__ import annotations

import numpy as np

from srjudge.errors import ImageError, SizeMismatchError, SpecError


def check_image(image: np.ndarray, what: str = "image") -> None:
    """Raise unless ``image`` is a canonical H x W x 3 float array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ImageError(f"{what} must be an H x W x 3 RGB array in [0, 1]; got shape {shape}.")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"{what} has zero size {image.shape[1]}x{image.shape[0]}.")


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
    return h // lh


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
