"""Side-by-side panels with captions, as in the face-SR paper's figures (LR | pure | +judge).

Pure functions: canonical float images in, a canonical float image out; nothing is read or written.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from srjudge.images.checks import check_image
from srjudge.images.io import to_uint8

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (20, 20, 20)


@lru_cache(maxsize=16)
def caption_font(size: int) -> Font:
    """DejaVu Sans as shipped by matplotlib when it is installed, else Pillow's built-in font."""
    try:
        font_manager = importlib.import_module("matplotlib.font_manager")
        path = font_manager.findfont("DejaVu Sans", fallback_to_default=True)
        return ImageFont.truetype(path, size)
    except (ImportError, OSError, ValueError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed-size bitmap font
        return ImageFont.load_default()


def _resize(image: np.ndarray, height: int) -> Image.Image:
    """Scale to ``height``: nearest for enlargements of 2x or more (pixels stay visible), else Lanczos."""
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    pil = Image.fromarray(to_uint8(image))
    if (h, w) == (height, width):
        return pil
    method = Image.Resampling.NEAREST if height >= 2 * h else Image.Resampling.LANCZOS
    return pil.resize((width, height), method)


def _text_width(font: Font, text: str) -> float:
    return float(font.getlength(text))


def _cut(line: str, font: Font, width: int) -> list[str]:
    """Cut a line with no usable space in it into pieces that fit ``width``."""
    pieces = []
    while len(line) > 1 and _text_width(font, line) > width:
        cut = len(line) - 1
        while cut > 1 and _text_width(font, line[:cut]) > width:
            cut -= 1
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def wrap_caption(text: str, font: Font, width: int) -> list[str]:
    """Split a caption into lines (at newlines, then at spaces) that fit ``width`` pixels."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if not line or _text_width(font, trial) <= width:
                line = trial
            else:
                lines.extend(_cut(line, font, width))
                line = word
        lines.extend(_cut(line, font, width))
    return lines


def side_by_side(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    *,
    height: int = 256,
    gap: int = 6,
    font_size: int | None = None,
) -> np.ndarray:
    """Images in a row at one height, a thin gap apart, each with its caption in a band below.

    Small images enlarged 2x or more use nearest-neighbour (pixels stay visible), others Lanczos.
    Captions may have several lines (``\\n``); long lines wrap to the image width. The caption band
    is as tall as the longest caption. Returns a canonical float32 RGB image.
    """
    if not images:
        raise ValueError("side_by_side needs at least one image")
    if len(captions) != len(images):
        raise ValueError(f"got {len(images)} images but {len(captions)} captions")
    if height < 8:
        raise ValueError(f"height must be at least 8 pixels, got {height}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    for i, image in enumerate(images):
        check_image(image, f"panel image {i}")
    size = font_size if font_size is not None else int(np.clip(round(height / 16), 11, 22))
    font = caption_font(size)
    ascent, descent = font.getmetrics() if isinstance(font, ImageFont.FreeTypeFont) else (size, 2)
    line_height = ascent + descent + max(1, size // 5)
    pad = max(3, size // 3)
    tiles = [_resize(image, height) for image in images]
    wrapped = [
        wrap_caption(c, font, max(1, tile.width - 2 * pad)) for c, tile in zip(captions, tiles, strict=True)
    ]
    band = 2 * pad + line_height * max(len(lines) for lines in wrapped)
    total_width = sum(tile.width for tile in tiles) + gap * (len(tiles) - 1)
    canvas = Image.new("RGB", (total_width, height + band), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    x = 0
    for tile, lines in zip(tiles, wrapped, strict=True):
        canvas.paste(tile, (x, 0))
        y = height + pad
        for line in lines:
            offset = max(0.0, (tile.width - _text_width(font, line)) / 2)
            draw.text((x + offset, y), line, fill=TEXT_COLOUR, font=font)
            y += line_height
        x += tile.width + gap
    return (np.asarray(canvas, dtype=np.float32) / np.float32(255.0)).astype(np.float32)
