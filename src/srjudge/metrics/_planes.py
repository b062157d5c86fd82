"""Turning RGB images into the planes a metric compares: 'rgb', 'y' (BT.601) or 'gray' (MATLAB rgb2gray)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np

from srjudge.errors import SpecError
from srjudge.images.checks import crop_border as crop
from srjudge.images.color import rgb_to_gray_uint8, rgb_to_y

Channel = Literal["rgb", "y", "gray"]
"""The planes a metric compares: RGB (three planes), BT.601 luma or MATLAB gray."""
CHANNELS: tuple[Channel, ...] = get_args(Channel)


def planes(image: np.ndarray, channel: Channel, *, crop_border: int = 0) -> tuple[list[np.ndarray], float]:
    """The 2-D planes to compare and their data range.

    ``gray`` is MATLAB ``rgb2gray`` of the 8-bit image (0..255), what the original SSIM/MS-SSIM
    scripts were given for the official values; ``y`` is BT.601 luma as SR papers report (0..1);
    ``rgb`` compares the three channels (0..1) and averages, as scikit-image does.
    """
    if channel not in CHANNELS:
        raise SpecError(f"channel={channel!r} is not one of {', '.join(CHANNELS)}.")
    data = crop(image, crop_border).astype(np.float64)
    if channel == "rgb":
        return [data[..., c] for c in range(3)], 1.0
    if channel == "y":
        return [rgb_to_y(data)], 1.0
    return [rgb_to_gray_uint8(data)], 255.0


def compare_planes(
    a: np.ndarray,
    b: np.ndarray,
    compare: Callable[[np.ndarray, np.ndarray, float], float],
    channel: Channel,
    *,
    crop_border: int = 0,
    joint: bool = False,
) -> float:
    """Compare two images plane by plane and average, or (``joint``) all planes at once as PSNR does."""
    planes_a, data_range = planes(a, channel, crop_border=crop_border)
    planes_b, _ = planes(b, channel, crop_border=crop_border)
    if joint:
        return compare(np.stack(planes_a), np.stack(planes_b), data_range)
    return float(np.mean([compare(x, y, data_range) for x, y in zip(planes_a, planes_b, strict=True)]))
