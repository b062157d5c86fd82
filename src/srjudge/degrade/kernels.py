"""Blur kernels for degradation synthesis, written from the formulas in the Real-ESRGAN paper.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data" (2021),
section 3.2. With ``C`` the pixel offset from the kernel centre and ``Σ = R diag(σx², σy²) Rᵀ``:

* Gaussian:             ``exp(-½ Cᵀ Σ⁻¹ C)``
* generalized Gaussian: ``exp(-½ (Cᵀ Σ⁻¹ C)^β)``
* plateau:              ``1 / (1 + (Cᵀ Σ⁻¹ C)^β)``
* 2-D sinc (ideal circular low-pass): ``ω_c / (2π r) · J1(ω_c r)``, ``r = |C|``

Every builder returns a float64, odd-sized, square kernel normalised to sum to 1. The pipelines record
only the parameters; :func:`make_kernel` rebuilds the identical kernel from them on replay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import j1

GAUSSIAN_KERNELS = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
"""The six Gaussian-family kernel types sampled by the pipelines."""

KERNEL_TYPES = (*GAUSSIAN_KERNELS, "sinc", "pulse")
"""Every kernel type :func:`make_kernel` can build (``pulse`` is the identity)."""


def _check_size(size: int) -> int:
    if isinstance(size, bool) or int(size) != size or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size!r}")
    return int(size)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Column (x) and row (y) offsets from the centre of a ``size`` x ``size`` kernel."""
    radius = _check_size(size) // 2
    axis = np.arange(-radius, radius + 1, dtype=np.float64)
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy


def _normalise(kernel: np.ndarray) -> np.ndarray:
    total = float(kernel.sum())
    if not math.isfinite(total) or abs(total) < 1e-12:
        raise ValueError("kernel sums to zero or is not finite; check its parameters")
    return kernel / total


def mahalanobis_sq(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``Cᵀ Σ⁻¹ C`` on the kernel grid, with ``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ``."""
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"kernel sigmas must be positive, got {sigma_x}, {sigma_y}")
    xx, yy = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    # Rᵀ C: the offset expressed along the kernel's principal axes.
    u = c * xx + s * yy
    v = -s * xx + c * yy
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float = 0.0) -> np.ndarray:
    """Isotropic (``σx == σy``) or anisotropic Gaussian kernel."""
    return _normalise(np.exp(-0.5 * mahalanobis_sq(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
) -> np.ndarray:
    """Generalized Gaussian kernel: heavier (β < 1) or lighter (β > 1) tails than a Gaussian."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return _normalise(np.exp(-0.5 * mahalanobis_sq(size, sigma_x, sigma_y, theta) ** beta))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel: flat top, polynomial fall-off."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return _normalise(1.0 / (1.0 + mahalanobis_sq(size, sigma_x, sigma_y, theta) ** beta))


def sinc_kernel(size: int, omega_c: float) -> np.ndarray:
    """Circular 2-D sinc, an ideal low-pass with cutoff ``omega_c`` rad/pixel: simulates ringing."""
    if not 0 < omega_c <= math.pi:
        raise ValueError(f"omega_c must lie in (0, pi], got {omega_c}")
    xx, yy = _grid(size)
    r = np.hypot(xx, yy)
    centre = r == 0
    safe_r = np.where(centre, 1.0, r)
    kernel = omega_c * j1(omega_c * safe_r) / (2.0 * math.pi * safe_r)
    # Limit of the expression at r -> 0: J1(z) ~ z / 2.
    kernel = np.where(centre, omega_c**2 / (4.0 * math.pi), kernel)
    return _normalise(kernel)


def pulse_kernel(size: int) -> np.ndarray:
    """Identity kernel: a single 1 at the centre."""
    size = _check_size(size)
    kernel = np.zeros((size, size), dtype=np.float64)
    kernel[size // 2, size // 2] = 1.0
    return kernel


def make_kernel(params: Mapping[str, Any]) -> np.ndarray:
    """Build a kernel from a recorded blur step (keys ``kernel``, ``size`` and the type's parameters)."""
    kind = params["kernel"]
    size = int(params["size"])
    if kind == "pulse":
        return pulse_kernel(size)
    if kind == "sinc":
        return sinc_kernel(size, float(params["omega_c"]))
    if kind not in GAUSSIAN_KERNELS:
        raise ValueError(f"unknown kernel type {kind!r}; known: {', '.join(KERNEL_TYPES)}")
    sx, sy, theta = float(params["sigma_x"]), float(params["sigma_y"]), float(params["theta"])
    if kind in ("iso", "aniso"):
        return gaussian_kernel(size, sx, sy, theta)
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(size, sx, sy, theta, float(params["beta"]))
    return plateau_kernel(size, sx, sy, theta, float(params["beta"]))
