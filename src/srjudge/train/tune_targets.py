"""What the two tuning stages learn to answer: stage 1's perception JSON from a degradation record,
stage 2's level word from MOS or pairwise pseudo-labels (pure functions: records and numbers in)."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srjudge.degrade.record import DegradationRecord
from srjudge.errors import SpecError
from srjudge.judges.vlm.parsing import LEVELS
from srjudge.judges.vlm.protocols.perceive_infer import SEVERITY

# ----------------------------------------------------------------------------------------------------------
# Degradation records -> factual descriptions
# ----------------------------------------------------------------------------------------------------------

#: Blur: the combined Gaussian sigma (HR pixels) of the record's blur steps, sqrt(sum sigma_i^2), where
#: an anisotropic kernel counts as sqrt(sigma_x * sigma_y). Below 0.5 it is not listed; below 1.2
#: slight; below 2.0 moderate; else severe. (Real-ESRGAN samples 0.2..3.0 in its first stage.)
BLUR_SIGMA = (0.5, 1.2, 2.0)
#: Noise: the combined sigma in 0..255 units, sqrt(sum sigma_i^2). Poisson noise counts as its standard
#: deviation at mid-grey, scale * sqrt(127.5) (255 photon counts at white). Below 2 not listed; below 8
#: slight; below 16 moderate; else severe.
NOISE_SIGMA = (2.0, 8.0, 16.0)
#: JPEG: the lowest quality of the record's JPEG steps. 90 and above not listed; from 65 slight; from 40
#: moderate; below 40 severe.
JPEG_QUALITY = (90, 65, 40)
#: Sinc (ringing) filters: the lowest cutoff omega_c (radians). From 2.8 not listed; from 2.0 slight;
#: from 1.2 moderate; below 1.2 severe. These thresholds are this package's choice, not the paper's.
SINC_OMEGA = (2.8, 2.0, 1.2)
_POISSON_MID_GREY = math.sqrt(127.5)
_GAUSSIAN_FAMILY = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


@dataclass(frozen=True)
class Distortion:
    """One known distortion: its ``type`` (e.g. "blur"), ``severity`` (the perceive protocol's words:
    slight, moderate, severe) and a factual ``detail`` (e.g. "sigma 2.8")."""

    type: str
    severity: str
    detail: str

    @property
    def label(self) -> str:
        """``type (detail)``: the distortion's ``type`` field in the perceive JSON."""
        return f"{self.type} ({self.detail})" if self.detail else self.type


def _rising(value: float, thresholds: tuple[float, float, float]) -> str | None:
    """Severity of a quantity that grows with the damage (sigma): None below the first threshold."""
    low, mid, high = thresholds
    if value < low:
        return None
    return "slight" if value < mid else "moderate" if value < high else "severe"


def _falling(value: float, thresholds: tuple[float, float, float]) -> str | None:
    """Severity of a quantity that falls as the damage grows (JPEG quality, sinc cutoff)."""
    none_from, slight_from, moderate_from = thresholds
    if value >= none_from:
        return None
    return "slight" if value >= slight_from else "moderate" if value >= moderate_from else "severe"


def _steps(record: DegradationRecord | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if isinstance(record, DegradationRecord):
        return list(record.steps)
    steps = record.get("steps") if isinstance(record, Mapping) else None
    if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
        raise SpecError(
            f"degradation record: expected a mapping with a 'steps' list, got {type(record).__name__}"
        )
    return list(steps)


def _number(step: Mapping[str, Any], key: str) -> float:
    value = step.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise SpecError(
            f"degradation record: step {step.get('name')!r} has no numeric {key!r} (got {value!r})"
        )
    return float(value)


def degradation_distortions(record: DegradationRecord | Mapping[str, Any]) -> tuple[Distortion, ...]:
    """The visible distortions a degradation record implies, in the order blur, ringing, noise, JPEG.

    Thresholds: :data:`BLUR_SIGMA`, :data:`SINC_OMEGA`, :data:`NOISE_SIGMA`, :data:`JPEG_QUALITY`.
    Resizes (the scale factor, random up/down resizes) are not listed: every LR image is downscaled,
    so a resize says nothing about its quality relative to others. Pure: a record (or its dict) in.
    """
    blur_sq, omegas, noise_sq, noise_kinds, qualities = 0.0, [], 0.0, set(), []
    for step in _steps(record):
        op = step.get("op")
        if op == "blur":
            kernel = step.get("kernel")
            if kernel in _GAUSSIAN_FAMILY:
                blur_sq += _number(step, "sigma_x") * _number(step, "sigma_y")
            elif kernel == "sinc":
                omegas.append(_number(step, "omega_c"))
        elif op == "noise":
            if step.get("type") == "gaussian":
                noise_sq += _number(step, "sigma") ** 2
                noise_kinds.add("Gaussian")
            elif step.get("type") == "poisson":
                noise_sq += (_number(step, "scale") * _POISSON_MID_GREY) ** 2
                noise_kinds.add("Poisson")
        elif op == "jpeg":
            qualities.append(_number(step, "quality"))
    out: list[Distortion] = []
    blur = math.sqrt(blur_sq)
    if (sev := _rising(blur, BLUR_SIGMA)) is not None:
        out.append(Distortion("blur", sev, f"sigma {blur:.1f}"))
    if omegas and (sev := _falling(min(omegas), SINC_OMEGA)) is not None:
        out.append(Distortion("ringing", sev, f"sinc cutoff {min(omegas):.2f}"))
    noise = math.sqrt(noise_sq)
    if (sev := _rising(noise, NOISE_SIGMA)) is not None:
        kind = next(iter(noise_kinds)) + " noise" if len(noise_kinds) == 1 else "noise"
        out.append(Distortion(kind, sev, f"sigma {noise:.0f}"))
    if qualities and (sev := _falling(min(qualities), JPEG_QUALITY)) is not None:
        out.append(Distortion("JPEG blocking", sev, f"quality {min(qualities):.0f}"))
    return tuple(out)


def describe_degradation(record: DegradationRecord | Mapping[str, Any]) -> str:
    """A short factual description with strength words, e.g.
    ``"severe blur (sigma 2.8); slight Gaussian noise (sigma 6); severe JPEG blocking (quality 32)"``;
    ``"no visible distortions"`` when nothing passes the thresholds (see :func:`degradation_distortions`)."""
    found = degradation_distortions(record)
    return "; ".join(f"{d.severity} {d.label}" for d in found) or "no visible distortions"


def perception_target(content: str, distortions: Sequence[Distortion]) -> str:
    """The stage-1 target: the perceive protocol's JSON answer for this content and these distortions."""
    for d in distortions:
        if d.severity not in SEVERITY:
            raise SpecError(f"severity {d.severity!r} is not one of {', '.join(SEVERITY)}")
    body = {
        "content": content,
        "distortions": [{"type": d.label, "severity": d.severity} for d in distortions],
    }
    return json.dumps(body, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------------------
# Labels: MOS or pairwise pseudo-labels -> five levels
# ----------------------------------------------------------------------------------------------------------

#: Default level boundaries: equal fifths of the label distribution (bottom fifth "bad", top "excellent").
DEFAULT_QUANTILES = (0.2, 0.4, 0.6, 0.8)


def levels_from_scores(
    scores: Sequence[float], quantiles: Sequence[float] = DEFAULT_QUANTILES, *, higher_is_better: bool = True
) -> list[str]:
    """Map scores to the five level words by the quantiles of the scores themselves.

    With the default quantiles (0.2, 0.4, 0.6, 0.8) a score at or below the 20th percentile is "bad",
    at or below the 40th "poor", the 60th "fair", the 80th "good", above it "excellent" (for DMOS,
    ``higher_is_better=False``, the order is reversed). Quantiles use numpy's linear interpolation;
    equal scores always get the same level.
    """
    q = [float(x) for x in quantiles]
    if len(q) != 4 or any(not 0.0 < a < 1.0 for a in q) or any(b <= a for a, b in itertools.pairwise(q)):
        raise SpecError(f"level quantiles must be 4 increasing values in (0, 1), got {list(quantiles)}")
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        return []
    if not np.all(np.isfinite(arr)):
        raise SpecError("scores to map to levels must be finite numbers")
    values = arr if higher_is_better else -arr
    cuts = np.quantile(values, q)
    worst_first = LEVELS[::-1]  # bad, poor, fair, good, excellent
    return [worst_first[int(np.searchsorted(cuts, v, side="left"))] for v in values]


def scores_from_pairs(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Bradley-Terry scores (0-100, win probability against an average item) from pairwise labels.

    Each row has ``image_a``, ``image_b`` and ``winner`` ("A"/"B"); when it holds ``p_a`` (the share of
    votes for A, from ``srjudge evolve``) that share is the outcome, else the winner counts 1/0. Rows
    marked ``skipped`` are left out. Fit by :func:`srjudge.judges.vlm.aggregate.bradley_terry`.
    """
    from srjudge.judges.vlm.aggregate import bradley_terry, strength_to_score

    index: dict[str, int] = {}
    outcomes: list[tuple[int, int, float]] = []
    for n, row in enumerate(rows, 1):
        if row.get("skipped"):
            continue
        a, b, winner = row.get("image_a"), row.get("image_b"), row.get("winner")
        if not isinstance(a, str) or not isinstance(b, str):
            raise SpecError(f"pair row {n}: image_a and image_b must be strings, got {a!r}, {b!r}")
        if winner not in ("A", "B"):
            raise SpecError(f"pair row {n}: winner must be 'A' or 'B', got {winner!r}")
        p_a = row.get("p_a")
        w = float(p_a) if isinstance(p_a, int | float) and not isinstance(p_a, bool) else float(winner == "A")
        i, j = index.setdefault(a, len(index)), index.setdefault(b, len(index))
        outcomes.append((i, j, w))
    if not outcomes:
        raise SpecError("no usable pair (every row is skipped, or the file is empty)")
    scores = strength_to_score(bradley_terry(len(index), outcomes))
    return {name: scores[i] for name, i in index.items()}
