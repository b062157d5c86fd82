"""Turning RGB images into the planes a metric compares: 'rgb', 'y' (BT.601) or 'gray' (MATLAB rgb2gray)."""

from __future__ import annotations

import numpy as np

from srjudge.errors import SpecError
from srjudge.images.color import rgb_to_gray_uint8, rgb_to_y

CHANNELS = ("rgb", "y", "gray")


def planes(image: np.ndarray, channel: str, *, crop_border: int = 0) -> tuple[list[np.ndarray], float]:
    """The 2-D planes to compare and their data range.

    ``gray`` is MATLAB ``rgb2gray`` of the 8-bit image (0..255), what the original SSIM/MS-SSIM
    scripts were given for the official values; ``y`` is BT.601 luma as SR papers report (0..1);
    ``rgb`` compares the three channels (0..1) and averages, as scikit-image does.
    """
    if channel not in CHANNELS:
        raise SpecError(f"channel={channel!r} is not one of {', '.join(CHANNELS)}.")
    if crop_border < 0:
        raise SpecError(f"crop_border must be >= 0, got {crop_border}.")
    if crop_border:
        if 2 * crop_border >= min(image.shape[:2]):
            raise SpecError(
                f"crop_border={crop_border} removes the whole {image.shape[1]}x{image.shape[0]} image."
            )
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    data = image.astype(np.float64)
    if channel == "rgb":
        return [data[..., c] for c in range(3)], 1.0
    if channel == "y":
        return [rgb_to_y(data)], 1.0
    return [rgb_to_gray_uint8(data)], 255.0
