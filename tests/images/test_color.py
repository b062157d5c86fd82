"""Colour conversion constants (BT.601 gray and Y)."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.images.color import rgb_to_gray, rgb_to_y


def test_colour_constants() -> None:
    white = np.ones((1, 1, 3))
    assert rgb_to_y(white)[0, 0] == pytest.approx(235 / 255)
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16 / 255)
    assert rgb_to_gray(white)[0, 0] == pytest.approx(1.0, abs=1e-9)
