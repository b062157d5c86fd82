"""Side-by-side panels: shapes, nearest for small images, Lanczos for large ones, captions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srjudge.images.io import to_uint8
from srjudge.report import side_by_side
from tests.report.helpers import _photo


def test_side_by_side_shapes_and_nearest_for_small_images() -> None:
    lr, sr, wide = _photo(16, 16, 1), _photo(64, 64, 2), _photo(48, 64, 3)
    out = side_by_side([lr, sr, wide], ["LR", "pure", "+judge"], height=128, gap=6)
    assert out.dtype == np.float32 and out.ndim == 3 and out.shape[2] == 3
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert out.shape[1] == 128 + 128 + round(64 * 128 / 48) + 2 * 6
    assert out.shape[0] > 128  # the caption band
    # 16 -> 128 is an 8x enlargement: nearest-neighbour, every LR pixel an 8x8 block.
    blocks = np.repeat(np.repeat(to_uint8(lr), 8, axis=0), 8, axis=1)
    np.testing.assert_array_equal(to_uint8(out[:128, :128]), blocks)
    # The gaps are plain background.
    assert np.all(out[:, 128:134] == 1.0)


def test_side_by_side_lanczos_for_large_images() -> None:
    big = _photo(256, 256, 4)
    out = side_by_side([big], ["x"], height=128)
    expected = np.asarray(Image.fromarray(to_uint8(big)).resize((128, 128), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(to_uint8(out[:128]), expected)
    same = side_by_side([big], ["x"], height=256)
    np.testing.assert_array_equal(to_uint8(same[:256]), to_uint8(big))


def test_side_by_side_captions_render() -> None:
    images = [_photo(32, 32, 5), _photo(32, 32, 6)]
    blank = side_by_side(images, ["", ""], height=96)
    one = side_by_side(images, ["LR", "score 71.2"], height=96)
    three = side_by_side(images, ["LR", "pure\nscore 71.2 | tags: blur\ndecision: retry"], height=96)
    for out in (one, three):
        band = out[96:]
        assert band.size and float(band.std()) > 0.0  # text was drawn: the band is not uniform
        assert float(band[:, :96].std()) > 0.0 and float(band[:, 102:].std()) > 0.0  # under each image
    assert float(blank[96:].std()) == 0.0
    assert three.shape[0] > one.shape[0]  # more lines, taller band
    long = side_by_side(images, ["x", "word " * 40], height=96)
    assert long.shape[1] == one.shape[1]  # long captions wrap instead of widening the panel


def test_side_by_side_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        side_by_side([], [])
    with pytest.raises(ValueError, match="captions"):
        side_by_side([_photo(8, 8, 0)], ["a", "b"])
    with pytest.raises(ValueError, match="height"):
        side_by_side([_photo(8, 8, 0)], ["a"], height=4)
