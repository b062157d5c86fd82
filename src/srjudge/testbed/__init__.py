"""Glyph testbed (issue 8): symbols whose true class is known, upscaled from ambiguous LR inputs.

``glyphs`` renders seeded HR glyphs (digits and capitals in matplotlib's DejaVu faces); ``build`` degrades
them to LR at four severities with srjudge's own degradation ops, splits by font face, and writes or
loads an on-disk testbed. See :mod:`srjudge.testbed.build` for the file layout.
"""

from __future__ import annotations

from srjudge.testbed.build import (
    SEVERITIES,
    SEVERITY_SPECS,
    SPLITS,
    GlyphArrays,
    Manifest,
    TestbedConfig,
    TestbedError,
    TestbedItem,
    build_testbed,
    degrade_glyph,
    digits_lr,
    glyph_arrays,
    load_manifest,
    replay_glyph,
)
from srjudge.testbed.glyphs import CLASSES, FONT_FACES, FontFace, GlyphParams, Jitter, render_glyph

__all__ = [
    "CLASSES",
    "FONT_FACES",
    "SEVERITIES",
    "SEVERITY_SPECS",
    "SPLITS",
    "FontFace",
    "GlyphArrays",
    "GlyphParams",
    "Jitter",
    "Manifest",
    "TestbedConfig",
    "TestbedError",
    "TestbedItem",
    "build_testbed",
    "degrade_glyph",
    "digits_lr",
    "glyph_arrays",
    "load_manifest",
    "render_glyph",
    "replay_glyph",
]
