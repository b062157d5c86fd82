"""Sample photos for demos, tests and synthetic data: scikit-image's bundled photos, cropped, as float RGB."""

from __future__ import annotations

import numpy as np

__all__ = ["bundled_photo"]


def bundled_photo(name: str, size: int = 256) -> np.ndarray:
    """A centre crop of one of scikit-image's bundled photos (shipped in its wheel), as float RGB."""
    from skimage import data

    loader = getattr(data, name, None)
    if loader is None:
        raise ValueError(f"scikit-image has no bundled photo {name!r}")
    image = np.asarray(loader())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    h, w = image.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return (image[y : y + size, x : x + size, :3].astype(np.float32) / 255.0).astype(np.float32)
