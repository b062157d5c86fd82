"""Helpers shared by the judge tests: outputs of different 'models', jittered glyphs."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from conftest import q8
from srjudge.sr import classical
from srjudge.testbed.glyphs import FONT_FACES, render_glyph


def _model_outputs(hr: np.ndarray, lr: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of different 'models': the truth, a good restoration, and classical failure modes."""
    bic = classical.bicubic(lr, 4)
    return {
        "truth": hr,
        "good": q8(0.75 * hr + 0.25 * bic),
        "lanczos": classical.lanczos(lr, 4),
        "bicubic": bic,
        "blurred": q8(np.stack([gaussian_filter(bic[..., c], 1.5) for c in range(3)], -1)),
        "oversharpened": classical.unsharp(bic, 2.5, 2.0),
        "nearest": classical.nearest(lr, 4),
        "noisy": q8(bic + np.random.default_rng(0).normal(0, 0.04, bic.shape)),
    }


def _jittered(char: str, seed: int, face: int = 4) -> np.ndarray:
    return render_glyph(char, FONT_FACES[face], rng=np.random.default_rng(seed))
