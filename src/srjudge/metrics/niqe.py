"""NIQE, the Naturalness Image Quality Evaluator (Mittal, Soundararajan, Bovik, IEEE SPL 2013).

Written from the paper and the algorithm of the LIVE MATLAB release (``computequality.m``):

1. gray = MATLAB ``rgb2gray`` of the 8-bit image (rounded), float64 in 0..255, cropped to a
   multiple of the block size (96 x 96);
2. at two scales (the second is MATLAB ``imresize(im, 0.5)``, bicubic with antialiasing), the
   MSCN coefficients ``(im - mu) / (sigma + 1)``, with ``mu`` and ``sigma`` from a 7 x 7 Gaussian
   window (sigma 7/6, normalised) and 'replicate' boundary;
3. per non-overlapping block (96 x 96 at scale 1, 48 x 48 at scale 2) 18 features: the asymmetric
   generalised Gaussian (AGGD) fit of the MSCN coefficients ``[alpha, (beta_l + beta_r) / 2]``, and for
   the products with the four circularly shifted copies of the block
   ``[alpha, mean, beta_l, beta_r]``;
4. the distance between the multivariate Gaussian of the block features (NaN-robust mean and
   covariance) and the pristine model shipped in ``srjudge/data/niqe_pris_params.npz`` (from BasicSR,
   Apache-2.0, the LIVE release's pristine parameters):
   ``sqrt((mu_p - mu_d) pinv((cov_p + cov_d) / 2) (mu_p - mu_d)^T)``, ``pinv`` with MATLAB's tolerance.

Lower is better. Typical values: 3-5 for natural photographs, 8+ for strongly degraded images.
On the IQA-PyTorch calibration images the values are within 0.6 % of the official MATLAB ones
(I03 / I04 / I06 / I08 / I19: 15.746 / 3.655 / 3.234 / 3.202 / 8.667 vs 15.75 / 3.655 / 3.235 / 3.184 /
8.635).

Details that follow MATLAB: a side of the AGGD with no samples has a NaN spread and the shape falls to
the first grid point (0.2), as ``min`` over an all-NaN vector does; the mean over blocks skips NaN
entries per feature and the covariance uses the blocks without NaN (``nanmean`` / ``nancov``). One
deliberate deviation: MSCN values below ``FLAT_EPS`` (1e-8, rounding noise of a perfectly flat window)
are set to exactly 0, so flat regions give the exact-arithmetic result instead of one decided by the
last bits of the filter (this moved the calibration values by at most 0.4 %, all towards the official
ones). An image with fewer than two blocks with finite features (e.g. constant) raises ImageError.

Everything here is vectorised over blocks (one AGGD fit call covers every block and every shift at a
scale), and the AGGD shape is looked up on the MATLAB grid ``0.2:0.001:10`` with a binary search
instead of a brute-force scan: the ratio ``r(alpha)`` is strictly increasing on the grid, so the
search plus a neighbour comparison returns the same grid point as MATLAB's ``min``.

The MSCN and AGGD helpers are shared with :mod:`srjudge.metrics.brisque`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import numpy as np
import numpy.typing as npt
from scipy.ndimage import correlate1d
from scipy.special import gamma as _gamma_fn

from srjudge.errors import ImageError, SpecError
from srjudge.images.checks import crop_border as crop_border_
from srjudge.images.color import rgb_to_gray_uint8
from srjudge.images.resize import imresize
from srjudge.metrics.base import MetricFn, MetricInfo, ScoreMap, register_metric_factory

__all__ = [
    "NIQE_INFO",
    "aggd_fit",
    "circshift_pairs",
    "gaussian_window_1d",
    "mscn",
    "niqe",
    "niqe_features",
    "niqe_gray",
]

# MATLAB ``0.2:0.001:10`` (9801 points); the AGGD/GGD shape parameter is chosen on this grid.
GAMMA_GRID = 0.2 + 0.001 * np.arange(9801, dtype=np.float64)
# AGGD moment ratio r(a) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)), strictly increasing on the grid.
_R_GRID = _gamma_fn(2.0 / GAMMA_GRID) ** 2 / (_gamma_fn(1.0 / GAMMA_GRID) * _gamma_fn(3.0 / GAMMA_GRID))
# Circular shifts (rows, cols) of the paired products, as MATLAB ``circshift`` takes them.
SHIFTS: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (1, 1), (-1, 1))

_FEATURES_PER_SCALE = 18
FLAT_EPS = 1e-8
"""MSCN magnitudes below this are rounding noise of a flat window (0..255 units); they become 0."""

NIQE_INFO = MetricInfo(
    name="niqe",
    description=(
        "NIQE (Mittal et al. 2013), no-reference naturalness of the SR image, as in the LIVE MATLAB "
        "release: distance of multiscale MSCN/AGGD block statistics from a pristine model. Lower is better."
    ),
    higher_is_better=False,
    # Logistic score: 50 at NIQE 6 (the border between natural-looking and visibly degraded), slope 2:
    # NIQE 3 -> ~82, 4 -> ~73, 6 -> 50, 9 -> ~18, 15 -> ~1.
    score_map=ScoreMap(kind="logistic", a=6.0, b=2.0),
    unit="",
    reference=(
        "Mittal, Soundararajan, Bovik, 'Making a completely blind image quality analyzer', IEEE SPL 2013"
    ),
)


def gaussian_window_1d(size: int = 7, sigma: float = 7.0 / 6.0) -> npt.NDArray[np.float64]:
    """Normalised 1-D Gaussian; its outer product is MATLAB ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g: npt.NDArray[np.float64] = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / float(g.sum())


_WINDOW = gaussian_window_1d()


def _filter(image: np.ndarray, mode: str) -> np.ndarray:
    """Separable 7 x 7 Gaussian correlation (``imfilter``) with the given scipy boundary mode."""
    out = correlate1d(image, _WINDOW, axis=0, mode=mode)
    return np.asarray(correlate1d(out, _WINDOW, axis=1, mode=mode))


def mscn(
    image: np.ndarray, *, c: float = 1.0, mode: str = "nearest", flat_eps: float = FLAT_EPS
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients ``(im - mu) / (sigma + c)`` and ``sigma``.

    ``mode`` is the scipy.ndimage boundary mode: 'nearest' is MATLAB 'replicate', 'constant' is the
    zero padding of ``filter2(..., 'same')``. Coefficients below ``flat_eps`` in magnitude are set to 0:
    in a flat window they are exactly 0 in exact arithmetic, and leaving the rounding noise in would let
    the last bits of the filter decide which AGGD sign bucket each product falls in.
    """
    mu = _filter(image, mode)
    sigma = np.sqrt(np.abs(_filter(image * image, mode) - mu * mu))
    structdis = (image - mu) / (sigma + c)
    if flat_eps > 0:
        structdis[np.abs(structdis) < flat_eps] = 0.0
    return structdis, sigma


def _grid_argmin(target: np.ndarray, grid: np.ndarray) -> npt.NDArray[np.intp]:
    """Index of the grid point nearest ``target`` on an increasing grid, like MATLAB ``min((grid - t).^2)``.

    Ties go to the lower index (MATLAB returns the first minimum); a NaN target gives index 0, as
    MATLAB ``min`` does on an all-NaN vector.
    """
    t = np.nan_to_num(target, nan=-np.inf)
    hi = np.clip(np.searchsorted(grid, t, side="left"), 1, grid.size - 1)
    lo = hi - 1
    take_lo = (grid[lo] - t) ** 2 <= (grid[hi] - t) ** 2
    nearest: npt.NDArray[np.intp] = np.where(take_lo, lo, hi)
    return nearest


def aggd_fit(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD fit along the last axis: shape ``alpha`` and the left/right standard deviations.

    Moment matching as in the LIVE code (``estimateaggdparam``): ``gammahat = std_l / std_r``,
    ``rhat = mean(|x|)^2 / mean(x^2)``, normalised by ``(g^3 + 1)(g + 1) / (g^2 + 1)^2`` and matched to
    ``r(alpha)`` on the grid 0.2:0.001:10. ``std_l`` (``std_r``) is the RMS of the negative (positive)
    values; it is NaN when there are none, and then ``alpha`` is 0.2, as in MATLAB.
    Returns ``(alpha, std_l, std_r)``, each of shape ``values.shape[:-1]``.
    """
    x = values
    sq = x * x
    neg = x < 0
    n_neg = np.count_nonzero(neg, axis=-1)
    n_pos = np.count_nonzero(x > 0, axis=-1)
    total_sq = sq.sum(axis=-1)
    left_sq = np.where(neg, sq, 0.0).sum(axis=-1)
    right_sq = total_sq - left_sq  # zeros add nothing
    n = x.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        std_l = np.sqrt(left_sq / n_neg)
        std_r = np.sqrt(right_sq / n_pos)
        std_l = np.where(n_neg > 0, std_l, np.nan)
        std_r = np.where(n_pos > 0, std_r, np.nan)
        g = std_l / std_r
        mean_abs = np.abs(x).sum(axis=-1) / n
        rhat = mean_abs * mean_abs / (total_sq / n)
        rhat_norm = rhat * (g**3 + 1.0) * (g + 1.0) / (g * g + 1.0) ** 2
    alpha = GAMMA_GRID[_grid_argmin(rhat_norm, _R_GRID)]
    return alpha, std_l, std_r


def circshift_pairs(blocks: np.ndarray) -> np.ndarray:
    """Products of each block with its four circularly shifted copies, shape (4, *blocks.shape).

    ``blocks`` is (..., h, w); the shift wraps inside each block, as MATLAB ``circshift`` on a block does.
    """
    return np.stack([blocks * np.roll(blocks, shift, axis=(-2, -1)) for shift in SHIFTS])


def _to_blocks(image: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """Non-overlapping bh x bw blocks of a 2-D array whose size is a multiple of the block, (n, bh * bw)."""
    h, w = image.shape
    nr, nc = h // bh, w // bw
    blocks = image[: nr * bh, : nc * bw].reshape(nr, bh, nc, bw).swapaxes(1, 2)
    return blocks.reshape(nr * nc, bh, bw)


def _block_features(structdis: np.ndarray, block: int) -> np.ndarray:
    """The 18 NIQE features of every block of one scale, shape (n_blocks, 18)."""
    blocks = _to_blocks(structdis, block, block)
    n = blocks.shape[0]
    pairs = circshift_pairs(blocks)
    stacked = np.concatenate([blocks[None], pairs]).reshape(5, n, block * block)
    alpha, std_l, std_r = aggd_fit(stacked)
    # beta = std * sqrt(Gamma(1/a) / Gamma(3/a)); alpha is on the grid, so these never overflow.
    g1 = _gamma_fn(1.0 / alpha)
    conv = np.sqrt(g1 / _gamma_fn(3.0 / alpha))
    beta_l, beta_r = std_l * conv, std_r * conv
    feats = np.empty((n, _FEATURES_PER_SCALE), dtype=np.float64)
    feats[:, 0] = alpha[0]
    feats[:, 1] = (beta_l[0] + beta_r[0]) / 2.0
    mean = (beta_r[1:] - beta_l[1:]) * (_gamma_fn(2.0 / alpha[1:]) / g1[1:])
    for k in range(4):
        feats[:, 2 + 4 * k] = alpha[1 + k]
        feats[:, 3 + 4 * k] = mean[k]
        feats[:, 4 + 4 * k] = beta_l[1 + k]
        feats[:, 5 + 4 * k] = beta_r[1 + k]
    return feats


def _check_block_size(block_size: int) -> None:
    if block_size < 8 or block_size % 2:
        raise SpecError(
            f"NIQE block_size must be an even integer >= 8, got {block_size} (the default is 96)."
        )


def niqe_features(gray: np.ndarray, *, block_size: int = 96) -> np.ndarray:
    """Per-block NIQE features of a gray image (float, 0..255), shape (n_blocks, 36).

    The image is cropped to a multiple of ``block_size``; raises :class:`ImageError` when that leaves
    fewer than two blocks.
    """
    _check_block_size(block_size)
    if gray.ndim != 2:
        raise ImageError(f"NIQE needs a 2-D gray image here, got shape {gray.shape}.")
    h, w = gray.shape
    nr, nc = h // block_size, w // block_size
    if nr * nc < 2:
        raise ImageError(
            f"NIQE needs at least two {block_size}x{block_size} blocks, but the image is {w}x{h} (WxH) "
            f"after border cropping: the minimum is {2 * block_size}x{block_size} or {block_size}x"
            f"{2 * block_size}."
        )
    im = np.ascontiguousarray(gray[: nr * block_size, : nc * block_size], dtype=np.float64)
    per_scale = []
    for scale in (1, 2):
        structdis, _ = mscn(im)
        per_scale.append(_block_features(structdis, block_size // scale))
        if scale == 1:
            im = imresize(im, 0.5)
    return np.concatenate(per_scale, axis=1)


def _pinv(a: np.ndarray) -> np.ndarray:
    """Moore-Penrose inverse with MATLAB's default tolerance ``max(size) * norm(a) * eps``."""
    u, s, vt = np.linalg.svd(a)
    tol = max(a.shape) * (s[0] if s.size else 0.0) * np.finfo(np.float64).eps
    keep = s > tol
    return np.asarray((vt[keep].T / s[keep]) @ u[:, keep].T)


@lru_cache(maxsize=1)
def _pristine() -> tuple[np.ndarray, np.ndarray]:
    """The pristine MVG model (mean 36, covariance 36 x 36) from the package data."""
    ref = resources.files("srjudge") / "data" / "niqe_pris_params.npz"
    with resources.as_file(ref) as path, np.load(path) as data:
        mu = np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(-1)
        cov = np.asarray(data["cov_pris_param"], dtype=np.float64)
    return mu, cov


def _mvg_distance(feats: np.ndarray) -> float:
    """NIQE distance of block features from the pristine model, NaN-robust like MATLAB nanmean/nancov.

    The mean ignores NaN entries per feature; the covariance uses the blocks with no NaN feature.
    """
    complete = feats[~np.isnan(feats).any(axis=1)]
    if complete.shape[0] < 2:
        raise ImageError(
            f"NIQE is undefined for this image: only {complete.shape[0]} of {feats.shape[0]} blocks have "
            "finite statistics (flat, texture-less blocks have none). A constant image has no NIQE."
        )
    with np.errstate(invalid="ignore"):
        mu_d = np.nanmean(feats, axis=0)
    cov_d = np.cov(complete, rowvar=False)
    mu_p, cov_p = _pristine()
    diff = mu_p - mu_d
    value = float(diff @ _pinv((cov_p + cov_d) / 2.0) @ diff)
    return math.sqrt(max(value, 0.0))


def niqe_gray(gray: np.ndarray, *, block_size: int = 96) -> float:
    """NIQE of a 2-D gray image with values in 0..255 (float), e.g. a Y channel scaled to 8 bits."""
    return _mvg_distance(niqe_features(np.asarray(gray, dtype=np.float64), block_size=block_size))


def gray_levels(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of the 8-bit image for RGB input; a 2-D [0, 1] image is taken as gray."""
    if image.ndim == 2:
        return np.round(np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0)
    if image.ndim == 3 and image.shape[2] >= 3:
        return rgb_to_gray_uint8(image)
    raise ImageError(f"NIQE needs an H x W x 3 RGB image in [0, 1], got shape {image.shape}.")


def niqe(image: np.ndarray, *, crop_border: int = 0, block_size: int = 96) -> float:
    """NIQE of an RGB image in [0, 1] (H x W x 3), as the LIVE MATLAB release computes it; lower is better.

    ``crop_border`` pixels are removed from each side first (SR convention); ``block_size`` other than
    96 departs from the block size the pristine model was fitted with.
    """
    return niqe_gray(gray_levels(crop_border_(np.asarray(image), crop_border)), block_size=block_size)


@register_metric_factory(NIQE_INFO, options={"crop_border": (int, 0), "block_size": (int, 96)})
def _niqe_factory(crop_border: int = 0, block_size: int = 96) -> MetricFn:
    """Registry factory: validates the options once and binds them."""
    _check_block_size(block_size)
    if crop_border < 0:
        raise SpecError(f"crop_border must be >= 0, got {crop_border}.")

    def bound(sr: np.ndarray, hr: np.ndarray | None, lr: np.ndarray | None) -> float:
        return niqe(sr, crop_border=crop_border, block_size=block_size)

    return bound
