"""Bootstrap percentile intervals: the :class:`Estimate` every bench and testbed measure reports."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

CI_LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95 % bootstrap percentile interval (NaN bounds when undefined)."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _percentile_ci(samples: FloatArray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - CI_LEVEL) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def estimate(value: float, samples: FloatArray) -> Estimate:
    low, high = _percentile_ci(samples)
    return Estimate(float(value), low, high)


def boot_indices(n: int, n_boot: int, seed: int) -> NDArray[np.intp]:
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def mean_estimate(values: FloatArray, idx: NDArray[np.intp]) -> Estimate:
    if values.size == 0:
        return Estimate(math.nan, math.nan, math.nan)
    return estimate(float(np.mean(values)), values[idx].mean(axis=1) if idx.size else np.empty(0))


def rowwise_pearson(a: FloatArray, b: FloatArray) -> FloatArray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (a * b).sum(axis=1) / den
    return np.where(den > 0, out, np.nan)


def est_cols(name: str, est: Estimate) -> dict[str, float]:
    return {name: est.value, f"{name}_lo": est.low, f"{name}_hi": est.high}
