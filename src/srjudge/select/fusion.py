"""Fusing the top-k candidates into one image (diffusion-SR selection paper: ensemble the best few).

Pure functions on aligned candidates of one LR input. ``median`` is robust to one odd sample;
``mean`` averages noise away; ``weighted`` weights each candidate by its judge score
(:func:`fusion_weights`). :func:`fuse_scored` is the one place that turns judge scores into a fused
image: ``select``, the testbed and its report all fuse through it.
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


def fusion_weights(scores: Sequence[float | None], *, floor: float = 0.0) -> list[float]:
    """The ``weighted`` fusion's weights from judge scores (0-100): each score clipped at 0 (an
    abstention, None, counts 0) plus ``floor``; equal weights when they sum to 0."""
    weights = [max(float(s or 0.0), 0.0) + floor for s in scores]
    if sum(weights) <= 0:
        return [1.0] * len(weights)
    return weights


def fuse_scored(
    images: Sequence[np.ndarray],
    scores: Sequence[float | None],
    method: FuseMethod,
    *,
    floor: float = 0.0,
) -> np.ndarray:
    """Fuse the candidates ``images`` that a judge scored ``scores`` (one each, same order) with
    ``method``; ``weighted`` uses :func:`fusion_weights`."""
    if len(scores) != len(images):
        raise ValueError(f"{len(scores)} scores for {len(images)} images to fuse")
    return fuse(images, method, fusion_weights(scores, floor=floor))
