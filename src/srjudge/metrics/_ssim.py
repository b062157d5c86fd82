"""SSIM core (Wang et al. 2004): Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, 'valid' filtering.

Shared by SSIM, MS-SSIM, edge-SSIM and the LR-consistency SSIM; written from the paper and checked
against scikit-image and the official values of the original MATLAB scripts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.ndimage import correlate1d

from srjudge.errors import SrjudgeError

WINDOW = 11
SIGMA = 1.5


def _gaussian_taps(size: int = WINDOW, sigma: float = SIGMA) -> npt.NDArray[np.float64]:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps: npt.NDArray[np.float64] = np.exp(-(x**2) / (2.0 * sigma**2))
    return taps / float(taps.sum())


_TAPS = _gaussian_taps()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter keeping only fully covered pixels (MATLAB filter2 'valid')."""
    r = WINDOW // 2
    y = correlate1d(x, _TAPS, axis=0, mode="constant")[r:-r]
    out: np.ndarray = correlate1d(y, _TAPS, axis=1, mode="constant")[:, r:-r]
    return out


def ssim_and_cs(a: np.ndarray, b: np.ndarray, data_range: float) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two 2-D float arrays."""
    if min(a.shape) < WINDOW:
        raise SrjudgeError(
            f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels per compared plane; got "
            f"{a.shape[1]}x{a.shape[0]}. Use a larger image or PSNR."
        )
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a), _filter_valid(b)
    var_a = _filter_valid(a * a) - mu_a**2
    var_b = _filter_valid(b * b) - mu_b**2
    cov = _filter_valid(a * b) - mu_a * mu_b
    cs_map = (2.0 * cov + c2) / (var_a + var_b + c2)
    lum_map = (2.0 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return float(np.mean(lum_map * cs_map)), float(np.mean(cs_map))


def ssim_2d(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    return ssim_and_cs(a, b, data_range)[0]


MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _halve(x: np.ndarray) -> np.ndarray:
    """2x2 box average then keep every second pixel, as the original msssim.m does."""
    if x.shape[0] % 2 or x.shape[1] % 2:
        x = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2)), mode="symmetric")
    out: np.ndarray = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4.0
    return out


def ms_ssim_2d(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003), five scales with the published weights."""
    levels = len(MS_WEIGHTS)
    min_side = WINDOW * 2 ** (levels - 1)
    if min(a.shape) < min_side:
        raise SrjudgeError(
            f"MS-SSIM needs at least {min_side}x{min_side} pixels (five scales of an 11x11 window); got "
            f"{a.shape[1]}x{a.shape[0]}. Use SSIM for smaller images."
        )
    cs_values: list[float] = []
    ssim_last = 0.0
    for level in range(levels):
        ssim_value, cs_value = ssim_and_cs(a, b, data_range)
        cs_values.append(cs_value)
        ssim_last = ssim_value
        if level < levels - 1:
            a, b = _halve(a), _halve(b)
    result = float(
        np.prod([max(cs, 0.0) ** w for cs, w in zip(cs_values[:-1], MS_WEIGHTS[:-1], strict=True)])
    )
    return result * float(max(ssim_last, 0.0) ** MS_WEIGHTS[-1])
