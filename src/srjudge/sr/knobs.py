"""Bounded knobs an audit may turn, per SR family (face-SR paper, Table 3).

Each knob has a safe range and a conservative default step; values outside the range are an
error, never clipped silently. Knobs act as pre-filters on the LR input or post-filters on the
SR output (or, for ``scale``, as a re-run at another native scale), so they work with any backend.

| family | knobs |
|---|---|
| general (Real-ESRGAN) | colour_balance, dehalo, detail_damping |
| blind (BSRGAN) | scale_switch, denoise, jpeg_deblock |
| prior-guided (GFPGAN) | restoration_weight, centre_face_only |
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

from srjudge.errors import SpecError
from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize

Stage = Literal["pre", "post", "rerun"]


@dataclass(frozen=True)
class Knob:
    name: str
    family: str
    stage: Stage
    lo: float
    hi: float
    step: float
    description: str
    fixes: tuple[str, ...]
    """Audit tags this knob addresses (the audit picks a knob whose ``fixes`` match a blocking tag)."""

    def check(self, value: float) -> float:
        if not self.lo <= value <= self.hi:
            raise SpecError(f"knob {self.name}={value} is outside its safe range [{self.lo}, {self.hi}].")
        return float(value)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([gaussian_filter(image[..., c].astype(np.float64), sigma) for c in range(3)], axis=-1)


def colour_balance(sr: np.ndarray, lr: np.ndarray, strength: float) -> np.ndarray:
    """Move the SR output's per-channel mean towards the LR input's (grey-world against the input)."""
    shift = lr.reshape(-1, 3).mean(axis=0) - sr.reshape(-1, 3).mean(axis=0)
    return quantize_8bit(sr + strength * shift)


def dehalo(sr: np.ndarray, lr: np.ndarray, strength: float) -> np.ndarray:
    """Clamp overshoot beyond the local range of the upsampled input (halos), by ``strength``."""
    from scipy.ndimage import maximum_filter, minimum_filter

    scale = max(1, sr.shape[0] // lr.shape[0])
    ref = np.clip(imresize(lr, output_shape=sr.shape[:2]), 0.0, 1.0)
    size = (2 * scale + 1, 2 * scale + 1, 1)
    hi, lo = maximum_filter(ref, size=size), minimum_filter(ref, size=size)
    clamped = np.clip(sr, lo, hi)
    return quantize_8bit(sr + strength * (clamped - sr))


def detail_damping(sr: np.ndarray, lr: np.ndarray, strength: float) -> np.ndarray:
    """Attenuate the finest detail (above the LR's Nyquist) by ``strength``: gentle, never a blur to LR."""
    scale = max(1, sr.shape[0] // lr.shape[0])
    low = _blur(sr, 0.5 * scale)
    return quantize_8bit(sr - strength * 0.5 * (sr - low))


def denoise(lr: np.ndarray, strength: float) -> np.ndarray:
    """Light non-local-means on the LR input before SR (``strength`` = OpenCV h in 8-bit units)."""
    data = np.round(np.clip(lr, 0, 1) * 255).astype(np.uint8)
    out: np.ndarray = cv2.fastNlMeansDenoisingColored(data, None, strength, strength, 3, 11)
    return (out.astype(np.float32) / 255.0).astype(np.float32)


def jpeg_deblock(lr: np.ndarray, strength: float) -> np.ndarray:
    """Smooth across the 8x8 JPEG grid of the LR input only, by ``strength``."""
    smoothed = _blur(lr, 0.8)
    h, w = lr.shape[:2]
    mask = np.zeros((h, w, 1))
    mask[np.arange(h) % 8 >= 7] = 1.0
    mask[np.arange(h) % 8 == 0] = 1.0
    mask[:, np.arange(w) % 8 >= 7] = 1.0
    mask[:, np.arange(w) % 8 == 0] = 1.0
    return quantize_8bit(lr + strength * mask * (smoothed - lr))


def restoration_weight(sr: np.ndarray, lr: np.ndarray, weight: float) -> np.ndarray:
    """GFPGAN-style weight: blend the restoration with plain bicubic (1 = full restoration)."""
    base = np.clip(imresize(lr, output_shape=sr.shape[:2]), 0.0, 1.0)
    return quantize_8bit(weight * sr + (1.0 - weight) * base)


def centre_face_only(sr: np.ndarray, lr: np.ndarray, on: float) -> np.ndarray:
    """Keep the restoration only inside the most central face, bicubic elsewhere (GFPGAN's only_center_face).

    Faces are found with :class:`srjudge.faces.detect.FaceFinder` (dlib HOG, CNN fallback) on the SR
    output; the face box widened by a quarter on each side is kept, feathered into the bicubic image.
    With no face found the output is unchanged.
    """
    if on < 0.5:
        return sr
    from srjudge.faces.detect import FaceFinder, centre_face

    face = centre_face(FaceFinder().find(sr), sr.shape)
    if face is None:
        return sr
    base = np.clip(imresize(lr, output_shape=sr.shape[:2]), 0.0, 1.0)
    h, w = sr.shape[:2]
    left, top, right, bottom = face.box
    grow = face.width // 4
    mask = np.zeros((h, w), dtype=np.float32)
    mask[max(0, top - grow) : min(h, bottom + grow), max(0, left - grow) : min(w, right + grow)] = 1.0
    feathered = gaussian_filter(mask, max(2.0, face.width / 16))[..., None]
    return quantize_8bit(feathered * sr + (1.0 - feathered) * base)


KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob(
            "colour_balance",
            "general",
            "post",
            0.0,
            0.5,
            0.25,
            "mild colour balance towards the input",
            ("colour shift",),
        ),
        Knob(
            "dehalo",
            "general",
            "post",
            0.0,
            0.8,
            0.5,
            "clamp halos beyond the input's local range",
            ("ringing", "oversharpening"),
        ),
        Knob(
            "detail_damping",
            "general",
            "post",
            0.0,
            0.5,
            0.25,
            "gently damp the finest detail",
            ("noise", "hallucinated detail", "blockiness", "identity drift"),
        ),
        Knob(
            "scale_switch",
            "blind",
            "rerun",
            2.0,
            4.0,
            2.0,
            "run the model at x2 and finish with bicubic",
            ("hallucinated detail", "semantic change", "oversharpening", "identity drift"),
        ),
        Knob("denoise", "blind", "pre", 0.0, 10.0, 5.0, "light denoising of the LR input", ("noise",)),
        Knob(
            "jpeg_deblock",
            "blind",
            "pre",
            0.0,
            1.0,
            0.6,
            "smooth the LR input's JPEG block edges",
            ("blockiness",),
        ),
        Knob(
            "restoration_weight",
            "prior-guided",
            "post",
            0.3,
            1.0,
            0.7,
            "blend restoration with bicubic",
            ("hallucinated detail", "semantic change", "oversharpening", "identity drift"),
        ),
        Knob(
            "centre_face_only",
            "prior-guided",
            "post",
            0.0,
            1.0,
            1.0,
            "restore the central face only",
            ("hallucinated detail", "semantic change"),
        ),
    )
}

_POST: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "colour_balance": colour_balance,
    "dehalo": dehalo,
    "detail_damping": detail_damping,
    "restoration_weight": restoration_weight,
    "centre_face_only": centre_face_only,
}
_PRE: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "denoise": denoise,
    "jpeg_deblock": jpeg_deblock,
}


def knobs_for(family: str) -> list[Knob]:
    """Knobs an audit may apply to this family's outputs (interpolation and diffusion use 'general')."""
    key = family if family in ("general", "blind", "prior-guided") else "general"
    return [k for k in KNOBS.values() if k.family == key]


def choose_knob(family: str, tags: Sequence[str], exclude: Collection[str] = ()) -> tuple[Knob, float] | None:
    """One conservative knob whose ``fixes`` match the tags (first match in table order), at its step."""
    for knob in knobs_for(family):
        if knob.name not in exclude and any(tag in knob.fixes for tag in tags):
            return knob, knob.step
    return None


def apply_pre(name: str, lr: np.ndarray, value: float) -> np.ndarray:
    knob = KNOBS[name]
    return _PRE[name](lr, knob.check(value))


def apply_post(name: str, sr: np.ndarray, lr: np.ndarray, value: float) -> np.ndarray:
    knob = KNOBS[name]
    return _POST[name](sr, lr, knob.check(value))
