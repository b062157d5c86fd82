"""Glyph testbed (issue 8): symbols whose true class is known, upscaled from ambiguous LR inputs.

``glyphs`` renders seeded HR glyphs (digits and capitals in matplotlib's DejaVu faces); ``severity``
degrades them to LR at four severities with srjudge's own degradation ops; ``items`` defines what a
testbed holds (config, splits by font face, items); ``arrays`` makes items in memory; ``build`` writes or
loads an on-disk testbed (see :mod:`srjudge.testbed.build` for the file layout). The experiment that
judges SR outputs of it: ``experiment`` (run), ``candidates``, ``measures``, ``results``, ``report``.
"""

from __future__ import annotations

from srjudge.testbed.arrays import GlyphArrays, glyph_arrays
from srjudge.testbed.build import Manifest, TestbedError, TestbedItem, build_testbed, load_manifest
from srjudge.testbed.glyphs import CLASSES, FONT_FACES, FontFace, GlyphParams, Jitter, render_glyph
from srjudge.testbed.items import SPLITS, TestbedConfig, digits_lr
from srjudge.testbed.severity import SEVERITIES, SEVERITY_SPECS, degrade_glyph, replay_glyph

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
