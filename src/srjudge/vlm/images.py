"""Preparing images for a VLM: bounded size (recorded) and PNG data URIs for HTTP backends."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from srjudge.images.io import to_uint8

DEFAULT_MAX_SIDE = 768
"""Longest side sent to a VLM by default; larger images are downscaled (Lanczos) and the resize recorded."""


@dataclass(frozen=True)
class ResizeRecord:
    original: tuple[int, int]  # (width, height)
    sent: tuple[int, int]

    @property
    def resized(self) -> bool:
        return self.original != self.sent

    def describe(self) -> str:
        (w, h), (sw, sh) = self.original, self.sent
        return f"{w}x{h} -> {sw}x{sh}" if self.resized else f"{w}x{h} (unchanged)"


def plan_resize(width: int, height: int, max_side: int | None) -> ResizeRecord:
    """The size an image is sent at: longest side at most ``max_side``, aspect kept, never upscaled."""
    if max_side is None or max(width, height) <= max_side:
        return ResizeRecord((width, height), (width, height))
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    factor = max_side / max(width, height)
    return ResizeRecord((width, height), (max(1, round(width * factor)), max(1, round(height * factor))))


def fit_longest_side(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, ResizeRecord]:
    """Downscale (Lanczos) to the planned size; the record says what was done."""
    h, w = image.shape[:2]
    record = plan_resize(w, h, max_side)
    if not record.resized:
        return image, record
    pil = Image.fromarray(to_uint8(image)).resize(record.sent, Image.Resampling.LANCZOS)
    return np.asarray(pil, dtype=np.float32) / np.float32(255.0), record


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(image: np.ndarray) -> str:
    """A lossless PNG data URI, as OpenAI-compatible chat APIs accept in ``image_url``."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than allowed; raised before any pixel is decoded."""

    def __init__(self, width: int, height: int, max_pixels: int) -> None:
        self.width, self.height, self.max_pixels = width, height, max_pixels
        super().__init__(f"{width}x{height} = {width * height:,} pixels is above the limit of {max_pixels:,}")


def decode_data_uri(
    uri: str, *, max_pixels: int | None = None, formats: Sequence[str] | None = None
) -> np.ndarray:
    """The inverse of :func:`data_uri` (any PIL-readable base64 image); raises ValueError when malformed.

    With ``max_pixels``, the size the image header declares is checked first (PIL reads headers
    lazily), so a small file that would decompress to a huge image raises :class:`ImageTooLarge`
    without being decoded. ``formats`` limits the PIL decoders tried (e.g. ``("PNG", "JPEG")``).
    """
    if not uri.startswith("data:image/") or ";base64," not in uri:
        raise ValueError("expected a data:image/...;base64, URI")
    raw = base64.b64decode(uri.split(";base64,", 1)[1], validate=True)
    with Image.open(io.BytesIO(raw), formats=None if formats is None else list(formats)) as pil:
        width, height = pil.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLarge(width, height, max_pixels)
        return np.asarray(pil.convert("RGB"), dtype=np.float32) / np.float32(255.0)
