"""Builders of single recorded steps (the dicts :func:`srjudge.degrade.ops.apply_steps` executes), for
plans made outside the random pipelines: the glyph testbed's severities, the bench's synthetic sets."""

from __future__ import annotations

import math
from collections.abc import Sequence

from srjudge.degrade.ops import JPEG_ENCODER
from srjudge.degrade.record import Step


def gaussian_size(sigma: float, truncate: float = 4.0) -> int:
    """The odd kernel size that reaches ``truncate`` sigmas from the centre (scipy's Gaussian filter)."""
    return 2 * int(truncate * sigma + 0.5) + 1


def blur_step(
    sigma_x: float,
    sigma_y: float | None = None,
    theta: float = 0.0,
    *,
    size: int | None = None,
    name: str = "blur",
) -> Step:
    """A Gaussian blur: isotropic when ``sigma_y`` is None, else anisotropic at angle ``theta``;
    ``size`` defaults to :func:`gaussian_size` of the larger sigma."""
    sy = sigma_x if sigma_y is None else sigma_y
    return {
        "name": name,
        "op": "blur",
        "kernel": "iso" if sigma_y is None else "aniso",
        "size": gaussian_size(max(sigma_x, sy)) if size is None else int(size),
        "sigma_x": float(sigma_x),
        "sigma_y": float(sy),
        "theta": float(theta),
    }


def bicubic_step(size: Sequence[int], *, name: str = "bicubic") -> Step:
    """MATLAB-compatible antialiased bicubic resize to ``size`` (height, width)."""
    return {"name": name, "op": "bicubic", "size": [int(size[0]), int(size[1])]}


def gaussian_noise_step(sigma: float, noise_seed: int, *, gray: bool, name: str = "noise") -> Step:
    """Additive Gaussian noise of ``sigma`` (0..255 units) drawn from its own ``noise_seed``."""
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"noise sigma must be a finite number >= 0, got {sigma}")
    return {
        "name": name,
        "op": "noise",
        "type": "gaussian",
        "sigma": float(sigma),
        "gray": bool(gray),
        "noise_seed": int(noise_seed),
    }


def jpeg_step(quality: int, *, name: str = "jpeg") -> Step:
    """A JPEG round trip at ``quality`` (OpenCV, 4:2:0 chroma subsampling)."""
    return {
        "name": name,
        "op": "jpeg",
        "quality": int(quality),
        "encoder": JPEG_ENCODER,
        "subsampling": "4:2:0",
    }


def quantise_step(*, name: str = "quantise") -> Step:
    """Rounding to 8-bit levels, as a saved PNG holds them."""
    return {"name": name, "op": "quantise", "bits": 8}
