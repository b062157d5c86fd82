"""``degrade`` and ``replay``: arrays and seeds in, arrays and records out (no file I/O here).

``degrade`` = sample a complete :class:`DegradationRecord` from the seed, then execute it; ``replay``
executes a given record. Both run the same executor, so a replay is byte-identical to the original.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from srjudge.degrade.ops import apply_steps
from srjudge.degrade.pipelines import PIPELINES
from srjudge.degrade.record import DegradationRecord, RecordLike, Step, as_record
from srjudge.errors import ImageError, SizeMismatchError, SpecError
from srjudge.images.checks import as_image

SCALES = (2, 3, 4)
"""Supported scale factors."""


class ReplayVersionWarning(UserWarning):
    """A record made by another srjudge version is replayed; the algorithms may have changed."""


def check_scale(scale: Any) -> int:
    """Validate a scale factor (2, 3 or 4)."""
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or int(scale) not in SCALES:
        raise SpecError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}")
    return int(scale)


def check_seed(seed: Any) -> int:
    """Validate a seed: a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise SpecError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def as_float_image(image: np.ndarray, what: str = "HR image") -> np.ndarray:
    """Canonical contiguous float32 H x W x 3 in [0, 1], by :func:`~srjudge.images.checks.as_image`'s rule.

    uint8 is scaled by 1/255 and uint16 by 1/65535; float input must be in [0, 1] (a 0-255 float array
    is an error, not rescaled); other dtypes, shapes and NaN raise :class:`~srjudge.errors.ImageError`.
    """
    return np.ascontiguousarray(as_image(image, what), dtype=np.float32)


def crop_step(size: tuple[int, int], scale: int, *, crop: bool) -> Step | None:
    """The crop to a multiple of ``scale`` (bottom/right edges trimmed), None if none is needed.

    Without ``crop`` a size that is not a multiple raises :class:`ImageError` that says how to fix it.
    """
    h, w = size
    th, tw = h - h % scale, w - w % scale
    if (th, tw) == (h, w):
        return None
    if th == 0 or tw == 0:
        raise ImageError(f"the HR image is {h}x{w} (height x width), smaller than the scale {scale}.")
    if not crop:
        raise ImageError(
            f"the HR image is {h}x{w} (height x width), not divisible by scale {scale}, so the LR size "
            f"{h}/{scale} x {w}/{scale} is not whole. Crop it to {th}x{tw} first, or pass crop=True "
            "(CLI: --crop) to trim the bottom/right edges and record the crop."
        )
    return {"name": "crop", "op": "crop", "top": 0, "left": 0, "size": [th, tw]}


def sample_record(
    size: tuple[int, int], pipeline: str = "realesrgan", scale: int = 4, seed: int = 0, *, crop: bool = False
) -> DegradationRecord:
    """Draw every parameter for an HR image of ``size`` (height, width) without touching pixels."""
    from srjudge import __version__

    entry = PIPELINES.get(pipeline)
    scale, seed = check_scale(scale), check_seed(seed)
    h, w = int(size[0]), int(size[1])
    first = crop_step((h, w), scale, crop=crop)
    hr = (h - h % scale, w - w % scale)
    rng = np.random.default_rng(seed)
    steps = [first] if first is not None else []
    steps += entry.plan(rng, hr, scale)
    steps.append({"name": "quantise", "op": "quantise", "bits": 8})
    return DegradationRecord(
        pipeline=entry.name,
        scale=scale,
        seed=seed,
        steps=tuple(steps),
        input_size=(h, w),
        output_size=(hr[0] // scale, hr[1] // scale),
        version=__version__,
    )


def replay(hr: np.ndarray, record: RecordLike) -> np.ndarray:
    """Apply a recorded degradation to ``hr``; the result is byte-identical to the original run.

    ``record`` is a :class:`DegradationRecord`, its JSON sidecar as a dict (``json.load`` of
    ``<name>.json``), or the path of that sidecar. ``hr`` must have the record's input size (float in
    [0, 1], or uint8). Returns float32 RGB holding 8-bit values (k / 255).
    """
    return _replay(as_float_image(hr), as_record(record))


def _replay(image: np.ndarray, record: DegradationRecord) -> np.ndarray:
    """:func:`replay` on an image already checked by :func:`as_float_image`."""
    from srjudge import __version__

    if image.shape[:2] != tuple(record.input_size):
        raise SizeMismatchError(
            f"the record is for a {record.input_size[0]}x{record.input_size[1]} HR image, "
            f"got {image.shape[0]}x{image.shape[1]} (height x width)."
        )
    if record.version != __version__:
        warnings.warn(
            f"replaying a record made by srjudge {record.version} with {__version__}; "
            "the output may differ if the degradation code changed.",
            ReplayVersionWarning,
            stacklevel=3,
        )
    out = apply_steps(image, record.steps)
    if out.shape[:2] != tuple(record.output_size):
        raise SizeMismatchError(
            f"the record's steps produce {out.shape[0]}x{out.shape[1]}, but it says {record.output_size}."
        )
    return out


def degrade(
    image: np.ndarray, pipeline: str = "realesrgan", scale: int = 4, seed: int = 0, crop: bool = False
) -> tuple[np.ndarray, DegradationRecord]:
    """Make an LR image from ``image`` (float32 RGB in [0, 1]) with a seeded random degradation.

    Returns the LR image (float32, quantised to 8-bit values, size HR / ``scale``) and the record
    of every sampled parameter. The HR size must be a multiple of ``scale`` unless ``crop`` is set.
    """
    arr = as_float_image(image)
    record = sample_record(arr.shape[:2], pipeline, scale, seed, crop=crop)
    return _replay(arr, record), record
