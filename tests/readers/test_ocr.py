"""The OCR reader (RapidOCR) on a clean glyph and on blank paper."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.readers import CLASSES, create_reader
from tests.readers.helpers import _plain


def test_ocr_reads_a_clean_large_seven_and_nothing_on_blank_paper() -> None:
    """RapidOCR reads a clean upright '7' (64 px render) and reads nothing on blank paper."""
    reader = create_reader("ocr")
    seven, blank = _plain("7", size=64), np.ones((32, 32, 3), np.float32)
    a, b = reader.read([seven, blank])
    assert a.label == "7" and a.confidence > 0.5 and a.probs is None and a.text is not None
    assert b.label is None and b.confidence == 0.0 and b.note
    assert a.distribution()[CLASSES.index("7")] == pytest.approx(a.confidence)
