"""Rank correlations and the monotone mapping of judge predictions onto the human scale (pure functions).

SRCC and KRCC are computed on the raw predictions; PLCC and RMSE after a monotone mapping of the
predictions onto the (oriented) human scale, fitted per judge: the VQEG 5-parameter logistic when it
is monotone in the direction of SRCC, else a 4-parameter logistic held to that direction, else a line
(:func:`logistic_fit`; the kind used is recorded). PLCC is signed by the mapping's direction, so it
always has the sign of SRCC. DMOS (lower is better) is passed as ``higher_is_better=False``: the human
scores are negated first.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

from srjudge.bench.bootstrap import FloatArray

FitKind = Literal["5-param", "4-param", "linear"]

_MAXFEV = 20_000
_MAXFEV_BOOT = 400


@dataclass(frozen=True)
class LogisticFit:
    """A fitted mapping from judge predictions onto the human scale.

    ``kind`` "5-param": f(x) = b1*(0.5 - 1/(1+exp(b2*(x-b3)))) + b4*x + b5 (VQEG);
    "4-param": f(x) = (b1-b2)/(1+exp(-(x-b3)/|b4|)) + b2; "linear": f(x) = b1*x + b2.
    Fits made here are monotone over the predictions they were fitted on (see :func:`logistic_fit`);
    ``note`` says why a simpler kind than the 5-param logistic was used (empty otherwise).
    """

    kind: FitKind
    params: tuple[float, ...]
    note: str = ""

    def __call__(self, x: ArrayLike) -> FloatArray:
        """The mapping applied to predictions ``x``."""
        mapped: FloatArray = _FUNCS[self.kind](np.asarray(x, dtype=np.float64), *self.params)
        return mapped


def oriented(pred: ArrayLike, human: ArrayLike, higher_is_better: bool) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    h = np.asarray(human, dtype=np.float64).ravel()
    if p.shape != h.shape:
        raise ValueError(f"predictions and human scores differ in length: {p.size} vs {h.size}")
    if p.size < 3:
        raise ValueError(f"need at least 3 items, got {p.size}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(h))):
        raise ValueError("predictions and human scores must be finite")
    return p, (h if higher_is_better else -h)


def srcc(pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True) -> float:
    """Spearman rank correlation of predictions with human scores (DMOS: ``higher_is_better=False``)."""
    p, h = oriented(pred, human, higher_is_better)
    return float(stats.spearmanr(p, h).statistic)


def krcc(pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True) -> float:
    """Kendall tau-b of predictions with human scores (DMOS: ``higher_is_better=False``)."""
    p, h = oriented(pred, human, higher_is_better)
    return float(stats.kendalltau(p, h).statistic)


def _logistic5(x: FloatArray, b1: float, b2: float, b3: float, b4: float, b5: float) -> FloatArray:
    z = np.clip(b2 * (x - b3), -500.0, 500.0)
    return np.asarray(b1 * (0.5 - 1.0 / (1.0 + np.exp(z))) + b4 * x + b5, dtype=np.float64)


def _logistic4(x: FloatArray, b1: float, b2: float, b3: float, b4: float) -> FloatArray:
    z = np.clip(-(x - b3) / max(abs(b4), 1e-12), -500.0, 500.0)
    return np.asarray((b1 - b2) / (1.0 + np.exp(z)) + b2, dtype=np.float64)


def _linear(x: FloatArray, b1: float, b2: float) -> FloatArray:
    return np.asarray(b1 * x + b2, dtype=np.float64)


_FUNCS: dict[str, Any] = {"5-param": _logistic5, "4-param": _logistic4, "linear": _linear}


def _degenerate(fit: LogisticFit, x: FloatArray, y: FloatArray) -> bool:
    """A 5-param fit whose terms diverge (|b1| or |b4| * range(x) over 10x the human span) is rejected:
    the classic over-parameterisation failure on small or noisy sets, where two huge terms cancel."""
    if fit.kind != "5-param":
        return False
    b1, _, _, b4, _ = fit.params
    limit = 10.0 * float(np.ptp(y))
    return abs(b1) > limit or abs(b4) * float(np.ptp(x)) > limit


MONOTONE_TOLERANCE = 0.01
"""A fitted mapping counts as monotone when, over the observed predictions, it never falls back
(against its direction) by more than this share of the human scores' range. It lets through the
VQEG 5-param logistic's usual negligible dips at the ends of the range (noise pulls its linear term),
and rejects humps."""


def _extrema(fit: LogisticFit, lo: float, hi: float) -> list[float]:
    """Where the mapping may turn inside (lo, hi): for the 5-param logistic, the solutions of
    f'(x) = b1*b2*q + b4 = 0 with q = e^z / (1 + e^z)^2, z = b2*(x - b3) (q = c has two solutions
    z = ±log((1 - s) / s), s = (1 - sqrt(1 - 4c)) / 2, when 0 < c <= 1/4). Logistic-4 and lines
    never turn."""
    if fit.kind != "5-param":
        return []
    b1, b2, b3, b4, _ = fit.params
    if b1 * b2 == 0:
        return []
    c = -b4 / (b1 * b2)
    if not 0 < c <= 0.25:
        return []
    s = (1.0 - math.sqrt(max(0.0, 1.0 - 4.0 * c))) / 2.0
    if s <= 0:
        return []
    z = math.log((1.0 - s) / s)
    return [t for t in (b3 + z / b2, b3 - z / b2) if lo < t < hi]


def _reverse_fall(fit: LogisticFit, x: FloatArray, direction: int) -> tuple[float, float]:
    """(largest fall against ``direction`` over [min x, max x], net change in ``direction``), exactly:
    between the ends of the range and the mapping's turning points it is monotone."""
    lo, hi = float(np.min(x)), float(np.max(x))
    points = np.array(sorted([lo, hi, *_extrema(fit, lo, hi)]), dtype=np.float64)
    v = direction * fit(points)
    return float(np.max(np.maximum.accumulate(v) - v)), float(v[-1] - v[0])


def _monotone(fit: LogisticFit, x: FloatArray, y: FloatArray, direction: int) -> bool:
    """Whether ``fit`` moves in ``direction`` (+1 rising, -1 falling) over [min x, max x]: it gains in
    that direction overall and never falls back by more than :data:`MONOTONE_TOLERANCE` of the human
    scores' range (checked exactly at the ends and turning points, see :func:`_extrema`)."""
    fall, net = _reverse_fall(fit, x, direction)
    return net > 0 and fall <= MONOTONE_TOLERANCE * float(np.ptp(y))


def _direction(x: FloatArray, y: FloatArray) -> int:
    """+1 when SRCC(x, y) >= 0 (or is undefined), else -1: the direction the mapping is held to."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 1
    return -1 if float(stats.spearmanr(x, y).statistic) < 0 else 1


def direction_of(fit: LogisticFit, x: FloatArray) -> int:
    """The direction of a (monotone) mapping over the predictions: -1 when it falls, else +1."""
    if x.size == 0:
        return 1
    ends = fit(np.array([np.min(x), np.max(x)], dtype=np.float64))
    return -1 if ends[1] < ends[0] else 1


def _try_fit(
    kind: FitKind, x: FloatArray, y: FloatArray, p0: Sequence[float], maxfev: int
) -> LogisticFit | None:
    if x.size <= len(p0):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(_FUNCS[kind], x, y, p0=list(p0), maxfev=maxfev)
    except (RuntimeError, ValueError, TypeError):
        return None
    fit = LogisticFit(kind, tuple(float(v) for v in params))
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(fit(x)))) or _degenerate(fit, x, y):
        return None
    return fit


def _try_fit4(
    x: FloatArray, y: FloatArray, direction: int, p0: Sequence[float] | None, maxfev: int
) -> LogisticFit | None:
    """The 4-param logistic held to ``direction``: fitted as b2 + direction * a * sigmoid((x - b3) / s)
    by bounded least squares, stored as (b1 = b2 + direction * a, b2, b3, s).

    Bounds (they keep the fit well conditioned, like the 5-param divergence check): 0 <= a <= 10x the
    human span, b2 within 10 spans of the human scores, the midpoint b3 within one prediction range of
    the predictions, 1e-6 <= s <= 10 prediction ranges.
    """
    if x.size <= 4:
        return None
    span, spread, width = float(np.ptp(y)), float(np.std(x)), float(np.ptp(x))
    lo, hi = float(np.min(x)), float(np.max(x))
    lower = np.array([0.0, float(np.min(y)) - 10 * span, lo - width, 1e-6 * width])
    upper = np.array([10 * span, float(np.max(y)) + 10 * span, hi + width, 10 * width])
    if p0 is None:
        p0 = (span, float(np.min(y) if direction > 0 else np.max(y)), float(np.mean(x)), spread / 2.0)
    start = np.asarray(p0, dtype=np.float64)
    start[3] = abs(start[3])
    # Strictly inside the bounds, as the bounded solver needs.
    margin = 1e-9 * (upper - lower)
    start = np.clip(start, lower + margin, upper - margin)

    def model(t: FloatArray, a: float, b2: float, b3: float, s: float) -> FloatArray:
        return _logistic4(t, b2 + direction * a, b2, b3, s)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, _ = curve_fit(
                model,
                x,
                y,
                p0=start,
                bounds=(lower, upper),
                max_nfev=maxfev,
            )
    except (RuntimeError, ValueError, TypeError):
        return None
    a, b2, b3, s = (float(v) for v in params)
    fit = LogisticFit("4-param", (b2 + direction * a, b2, b3, s))
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(fit(x)))):
        return None
    return fit


def _linear_fit(x: FloatArray, y: FloatArray, direction: int = 1) -> LogisticFit:
    """Least-squares line; a slope against ``direction`` is clamped to 0 (the constant mean)."""
    if np.ptp(x) == 0:
        return LogisticFit("linear", (0.0, float(np.mean(y))))
    slope, intercept = np.polyfit(x, y, 1)
    if direction * slope < 0:
        return LogisticFit("linear", (0.0, float(np.mean(y))), "the least-squares line runs against SRCC")
    return LogisticFit("linear", (float(slope), float(intercept)))


def fit_monotone(
    x: FloatArray, y: FloatArray, direction: int | None = None, maxfev: int = _MAXFEV
) -> LogisticFit:
    """The first monotone mapping (in ``direction``, by default the sign of SRCC) of: the VQEG
    5-param logistic, the 4-param logistic (constrained), a straight line (clamped)."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        line = _linear_fit(x, y)
        return LogisticFit("linear", line.params, "constant predictions or human scores")
    d = _direction(x, y) if direction is None else (-1 if direction < 0 else 1)
    spread = float(np.std(x))
    # b1: the human span (max(mos) for a MOS scale that starts at 0), b2: ~0.1 for predictions
    # spread like 0-100 scores (SD ~ 20), b3: mean prediction, b4: 0, b5: mean human score.
    # The signs of b1 and b2 start the curve in the direction of SRCC.
    p5 = (float(np.ptp(y)), d * 2.0 / spread, float(np.mean(x)), 0.0, float(np.mean(y)))
    fit5 = _try_fit("5-param", x, y, p5, maxfev)
    if fit5 is not None and _monotone(fit5, x, y, d):
        return fit5
    if fit5 is not None:
        why = "the 5-param logistic was not monotone over the predictions"
    elif x.size <= 5:
        why = "too few items for the 5-param logistic"
    else:
        why = "the 5-param logistic did not converge (or diverged)"
    fit4 = _try_fit4(x, y, d, None, maxfev)
    if fit4 is not None:
        return LogisticFit(fit4.kind, fit4.params, why)
    line = _linear_fit(x, y, d)
    notes = [why, "the 4-param logistic failed too", line.note]
    return LogisticFit("linear", line.params, "; ".join(n for n in notes if n))


def refit_monotone(
    x: FloatArray, y: FloatArray, full: LogisticFit, direction: int, full_direction: int
) -> LogisticFit | None:
    """A bootstrap refit: the full-data mapping's kind warm-started from it, held to the resample's own
    SRCC direction (a fresh, short fit when that differs from the full data's); None when it fails."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    if direction != full_direction:
        return fit_monotone(x, y, direction, _MAXFEV_BOOT)
    if full.kind == "linear":
        return _linear_fit(x, y, direction)
    if full.kind == "4-param":
        b1, b2, b3, b4 = full.params
        warm = _try_fit4(x, y, direction, (direction * (b1 - b2), b2, b3, b4), _MAXFEV_BOOT)
        return warm if warm is not None else _try_fit4(x, y, direction, None, _MAXFEV_BOOT)
    fit = _try_fit("5-param", x, y, full.params, _MAXFEV_BOOT)
    return fit if fit is not None and _monotone(fit, x, y, direction) else None


def logistic_fit(pred: ArrayLike, mos: ArrayLike) -> tuple[LogisticFit, FloatArray]:
    """Fit a monotone mapping from predictions to human scores; returns (fit, mapped predictions).

    The mapping is held to the direction of SRCC(pred, mos) (rising when SRCC >= 0, falling when it
    is negative) over the observed range of ``pred``, so it can never bend into a hump:

    1. the VQEG 5-parameter logistic, from b1 = span of ``mos``, b2 = ±2 / SD(pred) (0.1 for 0-100
       scores; the sign of SRCC), b3 = mean(pred), b4 = 0, b5 = mean(mos), up to 20,000 evaluations;
       kept only if it converges, does not diverge (|b1| or |b4| * range(pred) over 10x the human
       span) and is monotone in that direction (checked exactly; see :func:`_monotone`);
    2. else the 4-parameter logistic with its step's sign fixed to that direction (bounded fit);
    3. else a straight line, its slope clamped to 0 when it runs against SRCC.

    ``fit.kind`` says which was used ("5-param", "4-param", "linear") and ``fit.note`` why an
    earlier step was passed over (empty when the 5-param logistic was used).
    """
    x = np.asarray(pred, dtype=np.float64).ravel()
    y = np.asarray(mos, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"need two equal-length arrays of at least 2 items, got {x.size} and {y.size}")
    fit = fit_monotone(x, y)
    return fit, fit(x)


def _pearson(a: FloatArray, b: FloatArray) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def signed_plcc(mapping: LogisticFit, p: FloatArray, h: FloatArray) -> float:
    return direction_of(mapping, p) * _pearson(mapping(p), h)


def plcc(
    pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True, fit: LogisticFit | None = None
) -> float:
    """Pearson correlation of the mapped predictions with the (oriented) human scores, signed by the
    mapping's direction: negative when the judge's scores fall as the human scores rise.

    ``fit`` reuses a mapping; by default the monotone one of :func:`logistic_fit` is fitted here.
    As the fit is least squares, the unsigned correlation is >= 0, so PLCC has the sign of SRCC.
    """
    p, h = oriented(pred, human, higher_is_better)
    mapping = fit if fit is not None else fit_monotone(p, h)
    return signed_plcc(mapping, p, h)


def rmse(
    pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True, fit: LogisticFit | None = None
) -> float:
    """Root mean square error of the logistic-mapped predictions, in human-scale units."""
    p, h = oriented(pred, human, higher_is_better)
    mapping = fit if fit is not None else fit_monotone(p, h)
    return float(np.sqrt(np.mean((mapping(p) - h) ** 2)))
