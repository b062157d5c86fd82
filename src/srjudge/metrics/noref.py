"""No-reference detail, sharpness, noise and wavelet-artifact measures.

``wavelet-artifact`` compares high-band wavelet energy with a reference (the HR image when given,
else the bicubic-upsampled LR input), as the TWS artifact-suppression term: energy *beyond* the
reference is counted, energy below it is not (blur is not an artifact of this kind).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pywt
from skimage.restoration import estimate_sigma

from srjudge.errors import SrjudgeError
from srjudge.images.checks import check_lr_scale, check_same_size
from srjudge.images.color import rgb_to_gray
from srjudge.images.resize import imresize
from srjudge.metrics.base import MetricInfo, ScoreMap, register_metric
from srjudge.metrics.fullref import edge_map

# skimage.restoration.estimate_sigma is not annotated; on one gray plane it returns one float.
_estimate_sigma: Callable[[npt.NDArray[np.float64]], float] = estimate_sigma

WAVELET = "haar"
WAVELET_LEVELS = 3


def subband_energies(gray: np.ndarray, levels: int = WAVELET_LEVELS, wavelet: str = WAVELET) -> np.ndarray:
    """Mean squared detail coefficient per level, finest first (length ``levels``)."""
    max_level = pywt.dwt_max_level(min(gray.shape), pywt.Wavelet(wavelet).dec_len)
    levels = max(1, min(levels, max_level))
    coeffs = pywt.wavedec2(gray, wavelet, level=levels)
    details = coeffs[1:][::-1]  # finest first
    return np.array([np.mean([np.mean(band**2) for band in level]) for level in details])


def wavelet_artifact_value(image: np.ndarray, reference: np.ndarray) -> float:
    """Sum over levels of the log-energy excess of ``image`` over ``reference`` (0 = none)."""
    eps = 1e-8
    e_img = subband_energies(rgb_to_gray(image))
    e_ref = subband_energies(rgb_to_gray(reference))
    excess = np.log((e_img + eps) / (e_ref + eps))
    return float(np.sum(np.maximum(excess, 0.0)))


def upsample_lr(lr: np.ndarray, size: tuple[int, int]) -> npt.NDArray[np.float64]:
    """Bicubic upsampling of the LR input to ``size`` (H, W): the reference when there is no HR."""
    return np.clip(imresize(lr, output_shape=size), 0.0, 1.0)


@register_metric(
    MetricInfo(
        name="wavelet-artifact",
        description=(
            "High-band wavelet energy beyond the reference (HR, else bicubic-upsampled LR): "
            "ringing, noise, over-sharpening. 0 means none."
        ),
        higher_is_better=False,
        value_range=(0.0, math.inf),
        score_map=ScoreMap("logistic", 1.0, 0.5),
    ),
    aliases=("wavelet", "wavelet_artifact"),
)
def wavelet_artifact(sr: np.ndarray, *, hr: np.ndarray | None, lr: np.ndarray | None) -> float:
    if hr is not None:
        check_same_size(sr, hr, "SR image", "HR reference")
        return wavelet_artifact_value(sr, hr)
    if lr is not None:
        check_lr_scale(sr, lr, "SR image", "LR input")
        return wavelet_artifact_value(sr, upsample_lr(lr, sr.shape[:2]))
    raise SrjudgeError(
        "Metric 'wavelet-artifact' needs a reference: give the HR image (--hr) or the LR input (--lr)."
    )


def phase_energies(gray: np.ndarray, period: int) -> np.ndarray:
    """Mean squared one-pixel difference at each phase of a grid of the given period (both axes)."""
    out = np.zeros(max(period, 1))
    for axis in (0, 1):
        diff = np.diff(gray, axis=axis) ** 2
        phase = np.arange(diff.shape[axis]) % max(period, 1)
        for k in range(out.size):
            out[k] += float(np.take(diff, np.flatnonzero(phase == k), axis=axis).mean())
    return out / 2.0


def detail_and_grid(gray: np.ndarray, scale: int) -> tuple[float, float]:
    """(fine-scale energy off the grid's dominant phase, log2 dominance of that phase).

    An upscale by ``scale`` that replicates pixels puts every step on one phase of a ``scale``-periodic
    grid; natural detail spreads over all phases. Leaving the dominant phase out makes the energy
    blind to grid steps, and the dominance measures them.
    """
    energies = phase_energies(gray, scale) + 1e-12
    if scale < 2:
        return float(energies.mean()), 0.0
    strongest = int(np.argmax(energies))
    others = np.delete(energies, strongest)
    return float(others.mean()), float(np.log2(energies[strongest] / np.median(others)))


GRID_DETECTED = 0.5
"""log2 dominance of one grid phase above which an image is taken to carry upscaling-grid steps."""


def natural_detail_value(image: np.ndarray, max_period: int = 8) -> tuple[float, float, int]:
    """(detail in log2 energy, grid dominance, detected period or 0): no reference needed.

    The grid period is the one (2..``max_period``) whose strongest phase dominates most; when that
    dominance exceeds :data:`GRID_DETECTED` the image carries grid steps (pixel replication, block
    artifacts) and its detail is measured off that phase. Without a grid, every difference counts.
    """
    gray = rgb_to_gray(image)
    best_period, best_grid = 0, 0.0
    for period in range(2, max_period + 1):
        if min(gray.shape) < 4 * period:
            break
        _, grid = detail_and_grid(gray, period)
        if grid > best_grid:
            best_period, best_grid = period, grid
    if best_grid > GRID_DETECTED:
        energy, _ = detail_and_grid(gray, best_period)
    else:
        energy, best_period, best_grid = detail_and_grid(gray, 1)[0], 0, 0.0
    return math.log2(max(energy, 1e-12)), best_grid, best_period


@register_metric(
    MetricInfo(
        name="natural-detail",
        description="No-reference detail: log2 fine-scale energy with upscaling-grid steps left out, minus "
        "half the grid's dominance. Rewards real detail, not blockiness; blind to noise.",
        higher_is_better=True,
        value_range=(-40.0, 0.0),
        unit="log2",
        score_map=ScoreMap("logistic", -9.5, 2.0),
    ),
    aliases=("detail",),
)
def natural_detail(sr: np.ndarray, *, hr: np.ndarray | None = None, lr: np.ndarray | None = None) -> float:
    detail, grid, _ = natural_detail_value(sr)
    return detail - 0.5 * grid


def sharpness_value(image: np.ndarray) -> float:
    """Mean of the top 10 % Sobel gradient magnitudes of the gray image (a Tenengrad-style measure)."""
    grad = edge_map(image).ravel()
    k = max(1, grad.size // 10)
    return float(np.mean(np.partition(grad, grad.size - k)[-k:]))


@register_metric(
    MetricInfo(
        name="sharpness",
        description="Edge strength: mean of the strongest 10 % gradient magnitudes. Rewards blockiness too.",
        higher_is_better=True,
        value_range=(0.0, 1.0),
        score_map=ScoreMap("linear", 0.0, 0.5),
    )
)
def sharpness(sr: np.ndarray, *, hr: np.ndarray | None = None, lr: np.ndarray | None = None) -> float:
    return sharpness_value(sr)


def noise_sigma_value(image: np.ndarray) -> float:
    """Gaussian noise standard deviation in 8-bit units (wavelet MAD estimate of Donoho and Johnstone)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # flat image: empty detail band
        sigma = float(_estimate_sigma(rgb_to_gray(image)))
    return 0.0 if math.isnan(sigma) else sigma * 255.0  # NaN on a perfectly flat image: no noise


@register_metric(
    MetricInfo(
        name="noise",
        description="Estimated noise standard deviation (8-bit units), wavelet median-absolute-deviation.",
        higher_is_better=False,
        value_range=(0.0, 255.0),
        unit="DN",
        score_map=ScoreMap("linear", 0.0, 20.0),
    ),
    aliases=("noise-sigma",),
)
def noise(sr: np.ndarray, *, hr: np.ndarray | None = None, lr: np.ndarray | None = None) -> float:
    return noise_sigma_value(sr)
