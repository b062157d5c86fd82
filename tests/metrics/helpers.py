"""Helpers shared by the metric tests."""

from __future__ import annotations

import numpy as np


def _textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic textured RGB image in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.25 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    img = base[..., None] + 0.08 * rng.standard_normal((h, w, 3))
    return np.clip(img, 0.0, 1.0).astype(np.float32)
