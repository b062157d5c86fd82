"""Interpolation SR backends: ``bicubic`` (MATLAB ``imresize``) and ``lanczos`` (OpenCV Lanczos-4).

They are the baseline every learned SR candidate must beat, so they accept any integer scale 1-8
and round their output to 8 bits, as if it had been saved to a PNG and read back.

This module also holds the small input checks shared by the other SR backend modules
(:func:`check_lr`, :func:`check_scale`); it imports neither torch nor any optional package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from srjudge.errors import ImageError, SpecError
from srjudge.images.io import quantize_8bit
from srjudge.spec import Spec, coerce_options
from srjudge.sr import classical
from srjudge.sr.base import Family, SRBackend, register_sr_backend

MAX_SCALE = 8


def check_lr(lr: np.ndarray) -> np.ndarray:
    """The LR input as a contiguous float32 H x W x 3 array; anything else raises :class:`ImageError`."""
    array = np.asarray(lr)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageError(f"The LR image must be an H x W x 3 RGB array; got shape {array.shape}.")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"The LR image is empty (shape {array.shape}).")
    return np.ascontiguousarray(array, dtype=np.float32)


def check_scale(scale: object, supported: tuple[int, ...], *, what: str) -> int:
    """``scale`` as an int if ``supported`` lists it; otherwise :class:`SpecError` listing the supported ones.

    Backends never resize silently to reach a scale they do not support natively.
    """
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer):
        raise SpecError(f"The scale for {what} must be an integer; got {scale!r}.")
    value = int(scale)
    if value not in supported:
        listed = ", ".join(str(s) for s in supported)
        raise SpecError(
            f"{what} does not support scale {value}: supported scale(s): {listed}. "
            "srjudge does not resize an SR output to reach another scale; pick a supported one."
        )
    return value


class InterpolationBackend(SRBackend):
    """A classical upscaler at any integer scale 1-8; output quantised to 8 bits."""

    family: Family = "interpolation"
    stochastic = False
    scales = tuple(range(1, MAX_SCALE + 1))

    def __init__(self, name: str, upscaler: Callable[[np.ndarray, int], np.ndarray], kernel: str) -> None:
        self.spec = name
        self._upscaler = upscaler
        self._kernel = kernel

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        image = check_lr(lr)
        factor = check_scale(scale, self.scales, what=f"SR backend {self.spec!r}")
        h, w = image.shape[:2]
        out = quantize_8bit(self._upscaler(image, factor))
        if out.shape != (h * factor, w * factor, 3):  # guaranteed by classical; kept as a check
            raise ImageError(f"{self.spec} produced {out.shape} for a {w}x{h} input at x{factor}.")
        return out

    def settings(self) -> dict[str, Any]:
        return {"kernel": self._kernel, "quantized": "8-bit"}


def _factory(
    name: str, upscaler: Callable[[np.ndarray, int], np.ndarray], kernel: str
) -> Callable[[Spec], SRBackend]:
    def make(spec: Spec) -> SRBackend:
        coerce_options(spec, {}, kind="SR backend")
        if spec.arg is not None:
            raise SpecError(f"SR backend {name!r} takes no argument; got {spec.arg!r}.")
        return InterpolationBackend(name, upscaler, kernel)

    return make


register_sr_backend("bicubic", "MATLAB imresize bicubic (deterministic baseline).")(
    _factory("bicubic", classical.bicubic, "MATLAB imresize bicubic")
)
register_sr_backend("lanczos", "OpenCV Lanczos-4 interpolation (deterministic baseline).")(
    _factory("lanczos", classical.lanczos, "OpenCV INTER_LANCZOS4")
)


@register_sr_backend(
    "classical",
    "Classical candidate makers (nearest, sharpened, denoised variants): classical:NAME.",
    arg="variant: " + ", ".join(classical.DEMO_CANDIDATES),
)
def _classical(spec: Spec) -> SRBackend:
    """``classical:NAME``: one of the classical candidate makers (nearest, sharpened, denoised variants)."""
    coerce_options(spec, {}, kind="SR backend")
    names = ", ".join(classical.DEMO_CANDIDATES)
    if spec.arg is None:
        raise SpecError(f"SR backend 'classical' needs a variant: classical:NAME with NAME one of {names}.")
    if spec.arg not in classical.DEMO_CANDIDATES:
        raise SpecError(f"Unknown classical variant {spec.arg!r}: use one of {names}.")
    return InterpolationBackend(f"classical:{spec.arg}", classical.DEMO_CANDIDATES[spec.arg], spec.arg)
