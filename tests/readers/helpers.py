"""Helpers shared by the reader tests."""

from __future__ import annotations

import numpy as np

from srjudge.testbed.glyphs import FONT_FACES, Jitter, draw_glyph, sample_glyph_params


def _plain(char: str, size: int = 32, face: int = 0) -> np.ndarray:
    params = sample_glyph_params(np.random.default_rng(0), Jitter.none())
    return draw_glyph(char, FONT_FACES[face], params, size=size)
