"""Images for a VLM: the size they are sent at, and lossless PNG data URIs with a pixel limit."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.vlm.images import ImageTooLarge, data_uri, decode_data_uri, fit_longest_side, plan_resize


def test_the_longest_side_is_bounded_with_the_aspect_kept_and_never_upscaled() -> None:
    assert plan_resize(1000, 500, 768).sent == (768, 384)
    assert plan_resize(500, 1000, 768).describe() == "500x1000 -> 384x768"
    assert plan_resize(300, 200, 768).describe() == "300x200 (unchanged)"
    assert not plan_resize(3000, 2000, None).resized
    assert plan_resize(1001, 3, 100).sent == (100, 1)  # never below one pixel
    with pytest.raises(ValueError, match="max_side must be positive"):
        plan_resize(10, 10, 0)
    image = np.zeros((50, 100, 3), np.float32)
    small, record = fit_longest_side(image, 40)
    assert small.shape == (20, 40, 3) and record.describe() == "100x50 -> 40x20"
    same, _ = fit_longest_side(image, None)
    assert same is image


def test_data_uris_round_trip_8_bit_images_and_refuse_large_ones_from_the_header() -> None:
    image = (np.random.default_rng(0).integers(0, 256, (12, 20, 3)) / 255.0).astype(np.float32)
    uri = data_uri(image)
    assert uri.startswith("data:image/png;base64,")
    assert np.array_equal(decode_data_uri(uri), image)  # lossless
    assert decode_data_uri(uri, max_pixels=240).shape == (12, 20, 3)
    with pytest.raises(ImageTooLarge, match="20x12 = 240 pixels is above the limit of 239"):
        decode_data_uri(uri, max_pixels=239)
    with pytest.raises(ValueError, match="expected a data:image"):
        decode_data_uri("http://example.com/a.png")
