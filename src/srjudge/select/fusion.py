"""Fusing the top-k candidates into one image (diffusion-SR selection paper: ensemble the best few).

Pure functions on aligned candidates of one LR input. ``median`` is robust to one odd sample;
``mean`` averages noise away; ``weighted`` weights each candidate by its judge score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from srjudge.images.io import quantize_8bit

FuseMethod = Literal["none", "mean", "median", "weighted"]
FUSE_METHODS: tuple[str, ...] = ("none", "mean", "median", "weighted")


def fuse(
    images: Sequence[np.ndarray], method: FuseMethod, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Fuse aligned images; ``weighted`` needs non-negative weights with a positive sum."""
    if not images:
        raise ValueError("nothing to fuse")
    stack = np.stack([np.asarray(i, dtype=np.float64) for i in images])
    if method == "none":
        return quantize_8bit(stack[0])
    if method == "mean":
        return quantize_8bit(stack.mean(axis=0))
    if method == "median":
        return quantize_8bit(np.median(stack, axis=0))
    if method == "weighted":
        if weights is None or len(weights) != len(images):
            raise ValueError("weighted fusion needs one weight per image")
        w = np.asarray(weights, dtype=np.float64)
        if np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
        return quantize_8bit(np.tensordot(w / w.sum(), stack, axes=1))
    raise ValueError(f"unknown fusion {method!r}; use one of {', '.join(FUSE_METHODS)}")
