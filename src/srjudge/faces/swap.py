"""A face-swap decoy: another person's face warped onto a face, to check that identity checks catch it.

The generative failure the face-SR paper guards against is a restored face that is someone else. A
swap made here is that failure on purpose: the source face is aligned on the target's eye centres
(similarity transform), colour-matched to the target face's mean and spread, and feathered into it.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

from srjudge.faces.detect import Face


def _eye_transform(source: Face, target: Face) -> np.ndarray:
    """The 2x3 similarity matrix that maps the source face's eye centres onto the target's."""
    (sx1, sy1), (sx2, sy2) = source.eye_centres()
    (tx1, ty1), (tx2, ty2) = target.eye_centres()
    ratio = complex(tx2 - tx1, ty2 - ty1) / complex(sx2 - sx1, sy2 - sy1)
    a, b = ratio.real, ratio.imag
    return np.array([[a, -b, tx1 - (a * sx1 - b * sy1)], [b, a, ty1 - (b * sx1 + a * sy1)]])


def swap_face(target: np.ndarray, target_face: Face, source: np.ndarray, source_face: Face) -> np.ndarray:
    """``target`` with ``target_face`` replaced by ``source_face`` from ``source`` (float RGB in [0, 1])."""
    h, w = target.shape[:2]
    warped = cv2.warpAffine(
        np.ascontiguousarray(source, dtype=np.float32),
        _eye_transform(source_face, target_face),
        (w, h),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    left, top, right, bottom = target_face.box
    mask = np.zeros((h, w), np.float32)
    inset = target_face.width // 10
    mask[max(0, top + inset) : min(h, bottom - inset // 2), max(0, left + inset) : min(w, right - inset)] = (
        1.0
    )
    mask = gaussian_filter(mask, max(1.5, target_face.width / 14))[..., None]
    region = mask[..., 0] > 0.5
    if region.any():  # match the source's colours to the target face's
        mean_t, std_t = target[region].mean(axis=0), target[region].std(axis=0) + 1e-6
        mean_s, std_s = warped[region].mean(axis=0), warped[region].std(axis=0) + 1e-6
        warped = (warped - mean_s) / std_s * std_t + mean_t
    out: np.ndarray = np.clip(mask * warped + (1.0 - mask) * target, 0.0, 1.0).astype(np.float32)
    return out
