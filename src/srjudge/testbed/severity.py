"""The testbed's four degradation severities: plans of srjudge.degrade ops, recorded and replayable.

:func:`degrade_glyph` turns an HR 32x32 glyph into its LR 8x8 input at one severity and returns the
:class:`~srjudge.degrade.DegradationRecord` dict that :func:`replay_glyph` (or ``srjudge.degrade.replay``)
reproduces byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from srjudge.degrade.core import as_float_image, check_seed, replay
from srjudge.degrade.record import SCHEMA as RECORD_SCHEMA
from srjudge.degrade.record import DegradationRecord, Step
from srjudge.degrade.steps import bicubic_step, blur_step, gaussian_noise_step, jpeg_step, quantise_step
from srjudge.errors import ImageError, SpecError

SEVERITIES = ("clean", "mild", "moderate", "severe")
"""Severity names; an item's ``severity`` is the index into this tuple."""


@dataclass(frozen=True)
class SeveritySpec:
    """Ranges one severity draws from. Blur sigmas in HR pixels, noise sigma in 0..255 units.

    The plan is: optional Gaussian blur (``aniso`` draws sigma_x, sigma_y and an angle independently),
    MATLAB bicubic x4 (the ``bicubic`` op), optional gray Gaussian noise, optional JPEG, 8-bit quantise.
    """

    name: str
    blur_sigma: tuple[float, float] | None = None
    blur_aniso: bool = False
    blur_size: int = 7
    noise_sigma: tuple[float, float] | None = None
    jpeg_quality: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "blur_sigma": None if self.blur_sigma is None else list(self.blur_sigma),
            "blur_aniso": self.blur_aniso,
            "blur_size": self.blur_size,
            "noise_sigma": None if self.noise_sigma is None else list(self.noise_sigma),
            "jpeg_quality": None if self.jpeg_quality is None else list(self.jpeg_quality),
        }


SEVERITY_SPECS: tuple[SeveritySpec, ...] = (
    SeveritySpec("clean"),
    SeveritySpec("mild", blur_sigma=(0.5, 1.0), blur_size=7, noise_sigma=(1.0, 4.0)),
    SeveritySpec(
        "moderate",
        blur_sigma=(1.0, 1.8),
        blur_aniso=True,
        blur_size=11,
        noise_sigma=(4.0, 10.0),
        jpeg_quality=(60, 85),
    ),
    SeveritySpec(
        "severe",
        blur_sigma=(1.6, 2.4),
        blur_aniso=True,
        blur_size=15,
        noise_sigma=(7.0, 14.0),
        jpeg_quality=(30, 55),
    ),
)
"""The four severities (index = ``severity``)."""


def check_severity(severity: Any) -> int:
    """Validate a severity: an int 0..3 or one of the names in :data:`SEVERITIES`."""
    if isinstance(severity, str):
        key = severity.strip().lower()
        if key in SEVERITIES:
            return SEVERITIES.index(key)
        raise SpecError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)} (or 0..3)")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise SpecError(f"severity must be an int 0..3 or a name ({', '.join(SEVERITIES)}), got {severity!r}")
    if not 0 <= int(severity) < len(SEVERITIES):
        raise SpecError(f"severity must be in 0..{len(SEVERITIES) - 1}, got {severity!r}")
    return int(severity)


def plan_severity(
    rng: np.random.Generator, severity: int, hr_size: tuple[int, int], scale: int = 4
) -> list[Step]:
    """The degradation steps of one severity for an HR image of ``hr_size``; draws only from ``rng``."""
    spec = SEVERITY_SPECS[check_severity(severity)]
    lr = [hr_size[0] // scale, hr_size[1] // scale]
    steps: list[Step] = []
    if spec.blur_sigma is not None:
        lo, hi = spec.blur_sigma
        sx = float(rng.uniform(lo, hi))
        if spec.blur_aniso:
            sy, theta = float(rng.uniform(lo, hi)), float(rng.uniform(-math.pi, math.pi))
            steps.append(blur_step(sx, sy, theta, size=spec.blur_size))
        else:
            steps.append(blur_step(sx, size=spec.blur_size))
    steps.append(bicubic_step(lr))
    if spec.noise_sigma is not None:
        sigma = float(rng.uniform(*spec.noise_sigma))
        steps.append(gaussian_noise_step(sigma, int(rng.integers(0, 2**63 - 1)), gray=True))
    if spec.jpeg_quality is not None:
        steps.append(jpeg_step(int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))))
    steps.append(quantise_step())
    return steps


def record_dict(
    hr_size: tuple[int, int], severity: int, seed: int, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Sample one severity's complete record for an HR image of ``hr_size``, as a JSON-ready dict.

    The dict has exactly the layout of :meth:`DegradationRecord.to_dict` (so ``from_dict`` reads it and
    :func:`srjudge.degrade.replay` replays it); built directly because it is made once per item.
    """
    from srjudge import __version__

    severity, seed = check_severity(severity), check_seed(seed)
    h, w = int(hr_size[0]), int(hr_size[1])
    if h % 4 or w % 4 or h < 8 or w < 8:
        raise ImageError(f"testbed HR images must be at least 8x8 and a multiple of 4 in size, got {h}x{w}")
    return {
        "schema": RECORD_SCHEMA,
        "pipeline": f"testbed-{SEVERITIES[severity]}",
        "scale": 4,
        "seed": seed,
        "input_size": [h, w],
        "output_size": [h // 4, w // 4],
        "version": __version__,
        "source": None,
        "source_sha256": None,
        "extra": {"testbed_severity": severity, "severity_name": SEVERITIES[severity], **dict(extra or {})},
        "steps": plan_severity(np.random.default_rng(seed), severity, (h, w), 4),
    }


def degradation_record(
    hr_size: tuple[int, int], severity: int, seed: int, *, extra: Mapping[str, Any] | None = None
) -> DegradationRecord:
    """Sample the complete record of one severity for an HR image of ``hr_size`` (no pixels touched)."""
    return DegradationRecord.from_dict(record_dict(hr_size, severity, seed, extra=extra))


def degrade_glyph(hr: np.ndarray, severity: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """HR glyph (H, W, 3) -> LR (H/4, W/4, 3) float32 at 8-bit levels, and its record as a dict.

    The record is a :class:`~srjudge.degrade.DegradationRecord` dict; ``replay_glyph(hr, record)`` (or
    ``srjudge.degrade.replay(hr, DegradationRecord.from_dict(record))``) reproduces the LR byte for byte.
    """
    image = as_float_image(hr)
    record = degradation_record(image.shape[:2], severity, seed)
    return replay(image, record), record.to_dict()


def replay_glyph(hr: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """Re-run a recorded degradation (a record dict from :func:`degrade_glyph` or a testbed item)."""
    return replay(as_float_image(hr), DegradationRecord.from_dict(record))
