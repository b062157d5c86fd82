"""What a person needs to decide between candidates: large views and the same zoomed crops in each.

Pure array logic (no files): where two outputs differ most, the crop of that region from every image
shown, and the LR upsampled two ways (nearest shows its pixels, bicubic what plain interpolation gives)
so that invented detail can be told from detail the input holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter

from srjudge.images.color import rgb_to_gray
from srjudge.images.resize import imresize


@dataclass(frozen=True)
class Box:
    """A square region ``(top, left, size)`` in full-resolution pixels."""

    top: int
    left: int
    size: int

    def cut(self, image: np.ndarray) -> np.ndarray:
        return image[self.top : self.top + self.size, self.left : self.left + self.size]

    def describe(self) -> str:
        return f"{self.size}x{self.size} px at x={self.left}, y={self.top}"


def crop_size(shape: tuple[int, ...]) -> int:
    """A quarter of the shorter side (at least 16 px): small enough to zoom, large enough to read."""
    return max(16, min(shape[0], shape[1]) // 4)


def most_different_region(a: np.ndarray, b: np.ndarray, size: int | None = None) -> Box:
    """The square where ``a`` and ``b`` differ most (mean absolute gray difference); ties: top-left."""
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"images of different sizes: {a.shape[:2]} and {b.shape[:2]}")
    side = min(size or crop_size(a.shape), a.shape[0], a.shape[1])
    diff = np.abs(rgb_to_gray(a).astype(np.float64) - rgb_to_gray(b).astype(np.float64))
    mean = uniform_filter(diff, size=side, mode="constant")
    half = side // 2
    # window centres whose square lies inside the image
    inner = mean[half : a.shape[0] - side + half + 1, half : a.shape[1] - side + half + 1]
    top, left = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return Box(int(top), int(left), side)


def upsample_nearest(lr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The LR at the output size with square pixels (what the input really holds)."""
    rows = (np.arange(shape[0]) * lr.shape[0] // shape[0]).clip(0, lr.shape[0] - 1)
    cols = (np.arange(shape[1]) * lr.shape[1] // shape[1]).clip(0, lr.shape[1] - 1)
    return np.asarray(lr[rows][:, cols])


def upsample_bicubic(lr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.clip(imresize(lr, output_shape=shape), 0.0, 1.0).astype(np.float32)


def zoom(image: np.ndarray, width: int) -> np.ndarray:
    """Enlarge a crop with square pixels to about ``width`` (an integer factor, never shrinking)."""
    factor = max(1, width // max(1, image.shape[1]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
