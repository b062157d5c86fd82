"""Face crops: aligned chips for recognition models, and plain crops for people and VLM prompts."""

from __future__ import annotations

import cv2
import numpy as np

from srjudge.faces.detect import Face, dlib_shape
from srjudge.faces.models import import_dlib
from srjudge.images.io import to_uint8

ARCFACE_SIZE = 112
ARCFACE_EYES = ((38.2946, 51.6963), (73.5318, 51.5014))
"""Where the insightface ArcFace template puts the eye centres in its 112x112 crop."""


def dlib_chip(image: np.ndarray, face: Face, *, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """dlib's aligned face chip (what its recognition model sees), uint8 RGB ``size`` x ``size``."""
    data = np.ascontiguousarray(to_uint8(image))
    chip: np.ndarray = np.asarray(
        import_dlib().get_face_chip(data, dlib_shape(face), size=size, padding=padding)
    )
    return chip


def arcface_chip(image: np.ndarray, face: Face) -> np.ndarray:
    """A 112x112 uint8 RGB crop aligned as insightface's ArcFace models expect.

    dlib's 5 points are eye corners and the nose base, not ArcFace's eye centres, nose tip and mouth
    corners, so the crop is the similarity transform that puts the two eye centres (mean of each
    eye's corners) on the template's; nose and mouth then fall where the face's proportions put them.
    """
    (x1, y1), (x2, y2) = face.eye_centres()
    (u1, v1), (u2, v2) = ARCFACE_EYES
    source = complex(x2 - x1, y2 - y1)
    target = complex(u2 - u1, v2 - v1)
    if abs(source) < 1e-6:
        raise ValueError(f"face at {face.box}: its eye centres coincide; cannot align it")
    rotation_scale = target / source
    a, b = rotation_scale.real, rotation_scale.imag
    tx = u1 - (a * x1 - b * y1)
    ty = v1 - (b * x1 + a * y1)
    matrix = np.array([[a, -b, tx], [b, a, ty]], dtype=np.float64)
    warped = cv2.warpAffine(
        to_uint8(image),
        matrix,
        (ARCFACE_SIZE, ARCFACE_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    return np.asarray(warped, dtype=np.uint8)


def view_crop(image: np.ndarray, face: Face, *, size: int = 160, margin: float = 0.35) -> np.ndarray:
    """The face as a person sees it: its box widened by ``margin`` on each side, squared, clamped to the
    image, resized to ``size`` x ``size`` (float RGB in [0, 1]). For panels and VLM prompts."""
    h, w = image.shape[:2]
    left, top, right, bottom = face.box
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    half = max(right - left, bottom - top) * (0.5 + margin)
    x0, x1 = int(max(0, round(cx - half))), int(min(w, round(cx + half)))
    y0, y1 = int(max(0, round(cy - half))), int(min(h, round(cy + half)))
    crop = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_CUBIC
    resized = cv2.resize(
        np.ascontiguousarray(crop, dtype=np.float32), (size, size), interpolation=interpolation
    )
    return np.clip(resized, 0.0, 1.0).astype(np.float32)
