"""Full-reference metrics: PSNR, SSIM, MS-SSIM and edge-SSIM against an HR reference.

Conventions (checked against scikit-image and the official values of the original scripts):
PSNR on RGB by default (as scikit-image and the IQA-PyTorch calibration); SSIM and MS-SSIM on
MATLAB ``rgb2gray`` by default (as the original scripts were run). ``channel=y`` gives the BT.601
luma that SR papers report, and ``crop_border`` shaves the border as SR papers do (usually = scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from skimage.filters import sobel

from srjudge.images.checks import crop_border as crop
from srjudge.images.color import rgb_to_gray
from srjudge.metrics._planes import CHANNELS, Channel, compare_planes
from srjudge.metrics._ssim import ms_ssim_2d, ssim_2d
from srjudge.metrics.base import MetricInfo, ScoreMap, register_metric, require_hr
from srjudge.spec import Choice

_sobel: Callable[[npt.NDArray[np.float64]], np.ndarray] = sobel  # skimage.filters.sobel is not annotated


def psnr_value(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR of two arrays over all their elements; +inf when they are identical."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


def _register_against_hr(
    info: MetricInfo,
    compare: Callable[[np.ndarray, np.ndarray, float], float],
    *,
    channel: Channel,
    joint: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[..., float]:
    """Register the metric ``info`` that applies ``compare`` to the planes of SR and HR.

    Options: ``channel`` (``rgb``, ``y`` or ``gray``; the default is ``channel``) and ``crop_border``.
    Planes are compared one by one and averaged, or (``joint``) all at once as PSNR does.
    """
    default_channel = channel

    def metric(
        sr: np.ndarray,
        *,
        hr: np.ndarray | None,
        lr: np.ndarray | None = None,
        channel: Channel = default_channel,
        crop_border: int = 0,
    ) -> float:
        hr = require_hr(hr, info.name)
        return compare_planes(sr, hr, compare, channel, crop_border=crop_border, joint=joint)

    # Named as the module attribute it is bound to, so the registry's target reads fullref:psnr etc.
    metric.__name__ = metric.__qualname__ = info.name.replace("-", "_")
    options = {"channel": (Choice(*CHANNELS), default_channel), "crop_border": (int, 0)}
    return register_metric(info, options=options, aliases=aliases)(metric)


psnr = _register_against_hr(
    MetricInfo(
        name="psnr",
        description="Peak signal-to-noise ratio against the HR reference.",
        higher_is_better=True,
        needs_hr=True,
        value_range=(0.0, math.inf),
        unit="dB",
        score_map=ScoreMap("linear", 10.0, 50.0),
    ),
    psnr_value,
    channel="rgb",
    joint=True,
)

ssim = _register_against_hr(
    MetricInfo(
        name="ssim",
        description="Structural similarity (Gaussian 11x11, sigma 1.5) against the HR reference.",
        higher_is_better=True,
        needs_hr=True,
        value_range=(-1.0, 1.0),
        score_map=ScoreMap("linear", 0.0, 1.0),
    ),
    ssim_2d,
    channel="gray",
)

ms_ssim = _register_against_hr(
    MetricInfo(
        name="ms-ssim",
        description="Multi-scale SSIM (five scales, published weights) against the HR reference.",
        higher_is_better=True,
        needs_hr=True,
        value_range=(0.0, 1.0),
        score_map=ScoreMap("linear", 0.0, 1.0),
    ),
    ms_ssim_2d,
    channel="gray",
    aliases=("msssim", "ms_ssim"),
)


def edge_map(image: np.ndarray) -> npt.NDArray[np.float64]:
    """Sobel gradient magnitude of the gray image, about [0, 1]."""
    return np.asarray(_sobel(rgb_to_gray(image)), dtype=np.float64)


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
    hr = require_hr(hr, "edge-ssim")
    return edge_ssim_value(crop(sr, crop_border), crop(hr, crop_border))
