"""Helpers shared by the report tests."""

from __future__ import annotations

import numpy as np


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth colour pattern with some texture, float RGB in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [0.5 + 0.4 * np.sin(x / (4 + seed)), 0.5 + 0.4 * np.cos(y / 5), (x + y) / (h + w)], axis=2
    )
    return np.clip(base + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
