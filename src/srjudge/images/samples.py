"""Sample photos for demos, tests and synthetic data: scikit-image's bundled photos, cropped, as float RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["FACES_FOLDER", "bundled_photo", "face_photos"]

FACES_FOLDER = Path(__file__).resolve().parents[1] / "data" / "faces"
"""The portraits shipped with srjudge (package data), with their licences in ``LICENSES.md``."""


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


def face_photos() -> list[tuple[str, np.ndarray]]:
    """Real face photos for the face demo: scikit-image's astronaut (Eileen Collins, NASA, public domain)
    and the portraits in ``srjudge/data/faces`` (licences in its ``LICENSES.md``), as float RGB."""
    import json

    from skimage import data

    from srjudge.images.io import load_image

    astronaut = np.asarray(data.astronaut())  # type: ignore[no-untyped-call]
    photos = [("astronaut", (astronaut.astype(np.float32) / 255.0).astype(np.float32))]
    index = json.loads((FACES_FOLDER / "faces.json").read_text())
    for name in index["files"]:
        photos.append((Path(name).stem, load_image(FACES_FOLDER / name)))
    return photos
