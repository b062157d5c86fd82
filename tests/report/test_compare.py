"""Comparison views: where two outputs differ most, the LR at the output size, integer zooms."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.report.compare import Box, crop_size, most_different_region, upsample_nearest, zoom


def test_the_most_different_region_is_found_where_a_difference_was_planted() -> None:
    a = np.full((64, 96, 3), 0.5, np.float32)
    b = a.copy()
    b[40:56, 20:36] = 0.9  # a 16 x 16 change
    box = most_different_region(a, b, size=16)
    assert box == Box(top=40, left=20, size=16)
    assert np.array_equal(box.cut(b), b[40:56, 20:36]) and box.describe() == "16x16 px at x=20, y=40"
    assert most_different_region(a, a, size=16) == Box(0, 0, 16)  # ties: top-left
    assert crop_size(a.shape) == 16 and crop_size((400, 300, 3)) == 75
    with pytest.raises(ValueError, match="different sizes"):
        most_different_region(a, b[:32])


def test_nearest_upsampling_and_zoom_repeat_pixels() -> None:
    lr = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    up = upsample_nearest(lr, (4, 6))
    assert np.array_equal(up, np.repeat(np.repeat(lr, 2, axis=0), 2, axis=1))
    assert zoom(lr, 10).shape == (6, 9, 3) and np.array_equal(zoom(lr, 10)[::3, ::3], lr)
    assert np.array_equal(zoom(lr, 2), lr)  # never shrinks
