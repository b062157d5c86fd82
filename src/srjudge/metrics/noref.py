"""No-reference detail, sharpness, noise and wavelet-artifact measures.

``wavelet-artifact`` compares high-band wavelet energy with a reference (the HR image when given,
else the bicubic-upsampled LR input), as the TWS artifact-suppression term: energy *beyond* the
reference is counted, energy below it is not (blur is not an artifact of this kind).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pywt
from skimage.filters import sobel
from skimage.restoration import estimate_sigma

from srjudge.errors import SrjudgeError
from srjudge.images.checks import check_lr_scale, check_same_size
from srjudge.images.color import rgb_to_gray
from srjudge.images.resize import imresize
from srjudge.metrics.base import MetricInfo, ScoreMap, register_metric

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


def upsample_lr(lr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
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


def sharpness_value(image: np.ndarray) -> float:
    """Mean of the top 10 % Sobel gradient magnitudes of the gray image (a Tenengrad-style measure)."""
    grad = np.asarray(sobel(rgb_to_gray(image)), dtype=np.float64).ravel()
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
        sigma = float(estimate_sigma(rgb_to_gray(image)))
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
