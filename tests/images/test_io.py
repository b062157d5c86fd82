"""Image loading: formats, bit depths, modes, orientation, and a clear error for every bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srjudge.errors import ImageError
from srjudge.images.io import AlphaDroppedWarning, expand_image_paths, load_image, save_png


@pytest.fixture()
def rgb8() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "suffix,fmt", [(".png", "PNG"), (".bmp", "BMP"), (".tif", "TIFF"), (".webp", "WEBP")]
)
def test_lossless_formats_round_trip_exactly(tmp_path: Path, rgb8: np.ndarray, suffix: str, fmt: str) -> None:
    path = tmp_path / f"x{suffix}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(rgb8).save(path, format=fmt, **kwargs)
    image = load_image(path)
    assert image.dtype == np.float32 and image.shape == (24, 32, 3)
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), rgb8)


def test_jpeg_loads_close(tmp_path: Path, rgb8: np.ndarray) -> None:
    smooth = np.full((24, 32, 3), 120, dtype=np.uint8)
    Image.fromarray(smooth).save(tmp_path / "x.jpg", quality=95)
    image = load_image(tmp_path / "x.jpg")
    assert image.shape == (24, 32, 3) and abs(float(image.mean()) - 120 / 255) < 2 / 255


def test_gray_8_and_16_bit(tmp_path: Path) -> None:
    gray = np.arange(0, 240, dtype=np.uint8).reshape(12, 20)
    Image.fromarray(gray).save(tmp_path / "g8.png")
    image = load_image(tmp_path / "g8.png")
    assert image.shape == (12, 20, 3)
    np.testing.assert_allclose(image[..., 0], gray / 255.0, atol=1e-6)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    gray16 = (np.arange(240, dtype=np.uint16) * 273).reshape(12, 20)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    np.testing.assert_allclose(load_image(tmp_path / "g16.png")[..., 1], gray16 / 65535.0, atol=1e-6)


def test_16_bit_rgb_keeps_precision(tmp_path: Path) -> None:
    image = np.random.default_rng(2).random((10, 14, 3)).astype(np.float32)
    save_png(tmp_path / "c16.png", image, bits=16)
    np.testing.assert_allclose(load_image(tmp_path / "c16.png"), image, atol=1.0 / 65535)


def test_rgba_drops_alpha_with_warning(tmp_path: Path, rgb8: np.ndarray) -> None:
    rgba = np.dstack([rgb8, np.full(rgb8.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with pytest.warns(AlphaDroppedWarning, match="a.png"):
        image = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(np.round(image * 255).astype(np.uint8), rgb8)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    data = np.zeros((10, 20, 3), dtype=np.uint8)
    data[:, :10] = 255  # white left half
    pil = Image.fromarray(data)
    exif = pil.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    pil.save(tmp_path / "o.jpg", exif=exif, quality=100)
    image = load_image(tmp_path / "o.jpg")
    assert image.shape == (20, 10, 3)
    assert image[:8].mean() > 0.9 and image[12:].mean() < 0.1  # white half now on top


def test_save_png_refuses_other_suffixes(tmp_path: Path, rgb8: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"\.png"):
        save_png(tmp_path / "x.jpg", rgb8 / 255.0)


@pytest.mark.parametrize(
    "setup,match",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
        (lambda p: p.mkdir(), "folder"),
    ],
)
def test_bad_inputs_name_the_file(tmp_path: Path, setup, match: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.png"
    setup(path)
    with pytest.raises(ImageError, match=match) as info:
        load_image(path)
    assert "bad.png" in str(info.value)


def test_truncated_file(tmp_path: Path, rgb8: np.ndarray) -> None:
    Image.fromarray(np.tile(rgb8, (8, 8, 1))).save(tmp_path / "full.png")
    blob = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageError, match=r"cut\.png.*(damaged|truncated)"):
        load_image(tmp_path / "cut.png")


def test_decompression_bomb_guard(tmp_path: Path) -> None:
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"60,000 pixels is above the limit of 50,000"):
        load_image(tmp_path / "big.png", max_pixels=50_000)
    assert load_image(tmp_path / "big.png", max_pixels=None).shape == (200, 300, 3)


def test_expand_paths(tmp_path: Path, rgb8: np.ndarray) -> None:
    for name in ("b.png", "a.png", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in expand_image_paths([tmp_path])] == ["a.png", "b.png"]
    assert [p.name for p in expand_image_paths([str(tmp_path / "*.png"), tmp_path / "a.png"])] == [
        "a.png",
        "b.png",
    ]
    with pytest.raises(ImageError, match="matches no files"):
        expand_image_paths([str(tmp_path / "*.jpg")])
    with pytest.raises(ImageError, match="no such file"):
        expand_image_paths([tmp_path / "nope.png"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="holds no images"):
        expand_image_paths([empty])


def test_no_warning_for_plain_rgb(tmp_path: Path, rgb8: np.ndarray) -> None:
    Image.fromarray(rgb8).save(tmp_path / "x.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(tmp_path / "x.png")
