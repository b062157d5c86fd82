"""MATLAB-style imresize against PIL (same antialiased cubic away from borders) and on a ramp."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srjudge.images.resize import imresize


@pytest.mark.parametrize("scale", [0.5, 0.25, 1 / 3, 2.0, 3.0, 4.0])
def test_imresize_matches_pil_bicubic_in_the_interior(scale: float) -> None:
    # PIL's BICUBIC is the same a=-0.5 kernel with antialias widening; only the border handling
    # differs (PIL renormalises, MATLAB mirrors), so compare away from the borders.
    a = np.random.default_rng(0).random((72, 96))
    ours = imresize(a, scale)
    pil = Image.fromarray(a.astype(np.float32), "F").resize((ours.shape[1], ours.shape[0]), Image.BICUBIC)
    k = int(np.ceil(3 / scale)) + 2 if scale < 1 else int(3 * scale) + 2
    np.testing.assert_allclose(ours[k:-k, k:-k], np.asarray(pil, np.float64)[k:-k, k:-k], atol=1e-5)


def test_imresize_sizes_and_constant_preserved() -> None:
    c = np.full((30, 40, 3), 0.25)
    assert imresize(c, 0.5).shape == (15, 20, 3)
    assert imresize(c, output_shape=(7, 9)).shape == (7, 9, 3)
    np.testing.assert_allclose(imresize(c, 1 / 3), 0.25, atol=1e-12)
    with pytest.raises(ValueError):
        imresize(c)


def test_imresize_matlab_values_on_a_ramp() -> None:
    # A linear ramp stays linear under cubic interpolation away from the borders (weights sum to 1,
    # symmetric kernel), and MATLAB's pixel-centre convention puts output i at (i+0.5)/s - 0.5.
    ramp = np.tile(np.arange(32, dtype=np.float64), (8, 1))
    down = imresize(ramp, output_shape=(8, 16))
    expected = (np.arange(16) + 0.5) * 2 - 0.5
    np.testing.assert_allclose(down[4, 3:-3], expected[3:-3], atol=1e-9)
