"""LR-referenced metrics: the LR input is the anchor (RefReward-SR's view; no HR needed).

An SR output is *consistent* with its input when downsampling it with the assumed kernel gives
back the LR image. We downsample with MATLAB-style antialiased bicubic (the kernel used to make
bicubic LR sets) and compare at LR scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter
from skimage.color import deltaE_ciede2000

from srjudge.errors import SpecError
from srjudge.images.checks import lr_scale
from srjudge.images.color import rgb_to_lab
from srjudge.images.resize import imresize
from srjudge.metrics._planes import CHANNELS, Channel, compare_planes
from srjudge.metrics._ssim import ssim_2d
from srjudge.metrics.base import MetricInfo, ScoreMap, register_metric, require_lr
from srjudge.metrics.fullref import psnr_value
from srjudge.spec import Choice

Kernel = Literal["bicubic", "area"]
"""The degradation kernel assumed when downsampling an SR output to the LR size."""
KERNELS: tuple[Kernel, ...] = get_args(Kernel)

# skimage.color.deltaE_ciede2000 is not annotated.
_delta_e: Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], np.ndarray] = deltaE_ciede2000


def downsample_to_lr(sr: np.ndarray, lr: np.ndarray, kernel: Kernel = "bicubic") -> npt.NDArray[np.float64]:
    """Downsample ``sr`` to the LR size with the assumed degradation kernel."""
    scale = lr_scale(sr, lr)
    if scale == 1:
        return sr.astype(np.float64)
    if kernel == "bicubic":
        return imresize(sr, output_shape=lr.shape[:2])
    if kernel == "area":
        h, w = lr.shape[:2]
        mean: npt.NDArray[np.float64] = sr.astype(np.float64).reshape(h, scale, w, scale, 3).mean(axis=(1, 3))
        return mean
    raise SpecError(f"kernel={kernel!r} is not one of {', '.join(KERNELS)}.")


def _register_against_lr(
    info: MetricInfo,
    compare: Callable[[np.ndarray, np.ndarray, float], float],
    *,
    channel: Channel,
    joint: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[..., float]:
    """Register the metric ``info`` that applies ``compare`` to the planes of the LR input and of the
    SR output downsampled to LR size (clipped to [0, 1]).

    Options: ``kernel`` (the assumed degradation, ``bicubic`` or ``area``) and ``channel`` (``rgb``,
    ``y`` or ``gray``; the default is ``channel``). Planes are compared one by one and averaged, or
    (``joint``) all at once as PSNR does.
    """
    default_channel = channel

    def metric(
        sr: np.ndarray,
        *,
        hr: np.ndarray | None = None,
        lr: np.ndarray | None,
        kernel: Kernel = "bicubic",
        channel: Channel = default_channel,
    ) -> float:
        lr = require_lr(lr, info.name)
        down = np.clip(downsample_to_lr(sr, lr, kernel), 0.0, 1.0)
        return compare_planes(down, lr, compare, channel, joint=joint)

    # Named as the module attribute it is bound to, so the registry's target reads lrref:lr_psnr etc.
    metric.__name__ = metric.__qualname__ = info.name.replace("-", "_")
    options = {"kernel": (Choice(*KERNELS), "bicubic"), "channel": (Choice(*CHANNELS), default_channel)}
    return register_metric(info, options=options, aliases=aliases)(metric)


lr_psnr = _register_against_lr(
    MetricInfo(
        name="lr-psnr",
        description="LR consistency: PSNR between the SR output downsampled to LR size and the LR input.",
        higher_is_better=True,
        needs_lr=True,
        value_range=(0.0, math.inf),
        unit="dB",
        score_map=ScoreMap("linear", 20.0, 50.0),
    ),
    psnr_value,
    channel="rgb",
    joint=True,
    aliases=("lr_psnr", "lrpsnr"),
)

lr_ssim = _register_against_lr(
    MetricInfo(
        name="lr-ssim",
        description="LR consistency: SSIM between the SR output downsampled to LR size and the LR input.",
        higher_is_better=True,
        needs_lr=True,
        value_range=(-1.0, 1.0),
        score_map=ScoreMap("linear", 0.0, 1.0),
    ),
    ssim_2d,
    channel="gray",
    aliases=("lr_ssim",),
)


def colour_shift_value(sr: np.ndarray, lr: np.ndarray, sigma: float = 1.0) -> float:
    """Mean CIEDE2000 between low-passed SR (at LR scale) and low-passed LR.

    Colour lives at low spatial frequencies; blurring both first keeps legitimate new detail and
    residual noise from counting as a colour shift.
    """
    down = np.clip(downsample_to_lr(sr, lr), 0.0, 1.0)
    blur_a = np.stack([gaussian_filter(down[..., c], sigma, mode="nearest") for c in range(3)], axis=-1)
    blur_b = np.stack(
        [gaussian_filter(lr[..., c].astype(np.float64), sigma, mode="nearest") for c in range(3)], -1
    )
    return float(np.mean(_delta_e(rgb_to_lab(blur_a), rgb_to_lab(blur_b))))


@register_metric(
    MetricInfo(
        name="colour-shift",
        description="Colour shift versus the LR input: mean CIEDE2000 at LR scale after a light blur.",
        higher_is_better=False,
        needs_lr=True,
        value_range=(0.0, 100.0),
        unit="dE00",
        score_map=ScoreMap("linear", 0.0, 10.0),
    ),
    options={"sigma": (float, 1.0)},
    aliases=("color-shift", "colour_shift", "color_shift"),
)
def colour_shift(
    sr: np.ndarray, *, hr: np.ndarray | None = None, lr: np.ndarray | None, sigma: float = 1.0
) -> float:
    lr = require_lr(lr, "colour-shift")
    return colour_shift_value(sr, lr, sigma)
