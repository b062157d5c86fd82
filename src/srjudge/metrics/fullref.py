"""Full-reference metrics: PSNR, SSIM, MS-SSIM and edge-SSIM against an HR reference.

Conventions (checked against scikit-image and the official values of the original scripts):
PSNR on RGB by default (as scikit-image and the IQA-PyTorch calibration); SSIM and MS-SSIM on
MATLAB ``rgb2gray`` by default (as the original scripts were run). ``channel=y`` gives the BT.601
luma that SR papers report, and ``crop_border`` shaves the border as SR papers do (usually = scale).
"""

from __future__ import annotations

import math

import numpy as np
from skimage.filters import sobel

from srjudge.images.color import rgb_to_gray
from srjudge.metrics._planes import planes
from srjudge.metrics._ssim import ms_ssim_2d, ssim_2d
from srjudge.metrics.base import MetricInfo, ScoreMap, register_metric


def psnr_value(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR of two arrays over all their elements; +inf when they are identical."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


@register_metric(
    MetricInfo(
        name="psnr",
        description="Peak signal-to-noise ratio against the HR reference.",
        higher_is_better=True,
        needs_hr=True,
        value_range=(0.0, math.inf),
        unit="dB",
        score_map=ScoreMap("linear", 10.0, 50.0),
    ),
    options={"channel": (str, "rgb"), "crop_border": (int, 0)},
)
def psnr(
    sr: np.ndarray,
    *,
    hr: np.ndarray | None,
    lr: np.ndarray | None = None,
    channel: str = "rgb",
    crop_border: int = 0,
) -> float:
    assert hr is not None
    sr_planes, rng = planes(sr, channel, crop_border=crop_border)
    hr_planes, _ = planes(hr, channel, crop_border=crop_border)
    return psnr_value(np.stack(sr_planes), np.stack(hr_planes), rng)


@register_metric(
    MetricInfo(
        name="ssim",
        description="Structural similarity (Gaussian 11x11, sigma 1.5) against the HR reference.",
        higher_is_better=True,
        needs_hr=True,
        value_range=(-1.0, 1.0),
        score_map=ScoreMap("linear", 0.0, 1.0),
    ),
    options={"channel": (str, "gray"), "crop_border": (int, 0)},
)
def ssim(
    sr: np.ndarray,
    *,
    hr: np.ndarray | None,
    lr: np.ndarray | None = None,
    channel: str = "gray",
    crop_border: int = 0,
) -> float:
    assert hr is not None
    sr_planes, rng = planes(sr, channel, crop_border=crop_border)
    hr_planes, _ = planes(hr, channel, crop_border=crop_border)
    return float(np.mean([ssim_2d(a, b, rng) for a, b in zip(sr_planes, hr_planes, strict=True)]))


@register_metric(
    MetricInfo(
        name="ms-ssim",
        description="Multi-scale SSIM (five scales, published weights) against the HR reference.",
        higher_is_better=True,
        needs_hr=True,
        value_range=(0.0, 1.0),
        score_map=ScoreMap("linear", 0.0, 1.0),
    ),
    options={"channel": (str, "gray"), "crop_border": (int, 0)},
    aliases=("msssim", "ms_ssim"),
)
def ms_ssim(
    sr: np.ndarray,
    *,
    hr: np.ndarray | None,
    lr: np.ndarray | None = None,
    channel: str = "gray",
    crop_border: int = 0,
) -> float:
    assert hr is not None
    sr_planes, rng = planes(sr, channel, crop_border=crop_border)
    hr_planes, _ = planes(hr, channel, crop_border=crop_border)
    return float(np.mean([ms_ssim_2d(a, b, rng) for a, b in zip(sr_planes, hr_planes, strict=True)]))


def edge_map(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the gray image, about [0, 1]."""
    return np.asarray(sobel(rgb_to_gray(image)), dtype=np.float64)


def edge_ssim_value(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM between the edge maps of two RGB images: structural integrity without texture noise."""
    return ssim_2d(edge_map(a), edge_map(b), 1.0)


@register_metric(
    MetricInfo(
        name="edge-ssim",
        description="SSIM between Sobel edge maps: structural integrity (the TWS structure term).",
        higher_is_better=True,
        needs_hr=True,
        value_range=(-1.0, 1.0),
        score_map=ScoreMap("linear", 0.0, 1.0),
    ),
    options={"crop_border": (int, 0)},
    aliases=("edge_ssim",),
)
def edge_ssim(
    sr: np.ndarray, *, hr: np.ndarray | None, lr: np.ndarray | None = None, crop_border: int = 0
) -> float:
    assert hr is not None
    if crop_border:
        sr = sr[crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[crop_border:-crop_border, crop_border:-crop_border]
    return edge_ssim_value(sr, hr)
