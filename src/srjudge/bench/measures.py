"""Agreement of a judge with human opinion, as the IQA community reports it (pure functions, no I/O).

Conventions (VQEG, IQA-PyTorch benchmark tables):

* Judge predictions are higher-is-better. When the human scale is DMOS (lower is better) pass
  ``higher_is_better=False``: the human scores are negated first, so a good judge always gets
  positive SRCC / KRCC / PLCC (RMSE is unchanged by the negation).
* SRCC and KRCC are computed on the raw predictions; PLCC and RMSE after a monotone mapping of the
  predictions onto the (oriented) human scale, fitted per judge: the VQEG 5-parameter logistic when
  it is monotone in the direction of SRCC, else a 4-parameter logistic held to that direction, else
  a line (:func:`logistic_fit`; the kind used is recorded). PLCC is signed by the mapping's
  direction, so it always has the sign of SRCC.
* With groups (e.g. several SR outputs of one LR input), :func:`grouped_measures` also reports
  agreement within groups (mean per-group SRCC, pairwise accuracy over same-group pairs), with CIs
  from resampling whole groups.
* 95 % confidence intervals are bootstrap percentile intervals: items (pairs, groups) are resampled
  with replacement ``n_boot`` times with a seeded generator, so the numbers are reproducible.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

from srjudge.judges.vlm.stability import flip_rate, mean_spread

FitKind = Literal["5-param", "4-param", "linear"]
FloatArray = NDArray[np.float64]
Predictions = Sequence[float | None] | NDArray[Any]
"""One judge prediction per item; None (or NaN) where the judge abstained."""
HumanScores = Sequence[float] | NDArray[Any]

CI_LEVEL = 0.95
REFIT_BUDGET = 4_000_000
"""With ``refit=None``, the logistic is refitted per bootstrap resample when ``n_boot * (n + 1500)``
is at most this (a warm-started refit takes ~2-8 ms: a few seconds at most for 1000 resamples)."""
_MAXFEV = 20_000
_MAXFEV_BOOT = 400


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95 % bootstrap percentile interval (NaN bounds when undefined)."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


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
        return _FUNCS[self.kind](np.asarray(x, dtype=np.float64), *self.params)


@dataclass(frozen=True)
class MOSMeasures:
    """Judge vs MOS/DMOS: rank and linear agreement with CIs, and the monotone fit used for PLCC/RMSE.

    ``plcc`` is signed by the fit's direction, which follows SRCC: it is negative for a judge whose
    scores fall as the human scores rise. ``fit.kind`` is the mapping used ("5-param", "4-param" or
    "linear"; the fallbacks when the 5-param logistic fails or is not monotone).
    """

    n: int
    srcc: Estimate
    krcc: Estimate
    plcc: Estimate
    rmse: Estimate
    fit: LogisticFit
    higher_is_better: bool
    n_boot: int
    ci_refit: bool
    """True when the logistic was refitted on every bootstrap resample; False when the full-data
    mapping was reused (PLCC/RMSE CIs then ignore the fit's own uncertainty)."""
    n_refit_failed: int = 0
    """Resamples whose refit failed to converge; the full-data mapping was used for those."""

    def to_row(self) -> dict[str, Any]:
        """Flat table row: values and CI bounds."""
        row: dict[str, Any] = {"n": self.n}
        for name in ("srcc", "krcc", "plcc", "rmse"):
            row.update(_est_cols(name, getattr(self, name)))
        row["fit"] = self.fit.kind
        return row


@dataclass(frozen=True)
class GroupedMeasures:
    """Judge vs MOS/DMOS *within* groups (e.g. the outputs of several SR methods for one LR input).

    Only the order of items inside a group counts, so a judge is not rewarded for telling easy scenes
    from hard ones. Items whose prediction is missing (None/NaN: the judge abstained) are dropped
    first (``n_abstained``). A group is *used* when at least 2 of its items remain and their human
    scores are not all equal; other groups are skipped (``n_groups - n_groups_used``).

    * ``srcc``: the unweighted mean over used groups of the per-group SRCC (a judge that scores all
      items of a group equal earns 0 for that group: it orders nothing).
    * ``pair_accuracy``: over all pairs of items in the same group whose human scores differ
      (``n_pairs``, pooled over groups, so larger groups weigh more), the share the judge orders as
      people do; a judge tie (equal predictions) earns ``judge_tie_credit`` (one half).
      ``n_judge_ties`` counts those pairs.

    CIs: percentile bootstrap over the used GROUPS (``n_boot`` resamples of whole groups with
    replacement, ``seed``), as items of one group are not independent.
    """

    n_items: int
    n_abstained: int
    n_groups: int
    n_groups_used: int
    n_pairs: int
    n_judge_ties: int
    srcc: Estimate
    pair_accuracy: Estimate
    higher_is_better: bool
    n_boot: int
    seed: int
    judge_tie_credit: float = 0.5

    def to_row(self) -> dict[str, Any]:
        """Flat table row: values and CI bounds."""
        return {
            "groups": self.n_groups_used,
            "groups_skipped": self.n_groups - self.n_groups_used,
            "pairs": self.n_pairs,
            **_est_cols("srcc_within", self.srcc),
            **_est_cols("pair_acc_within", self.pair_accuracy),
        }


@dataclass(frozen=True)
class PairwiseMeasures:
    """Judge vs human pairwise preferences.

    ``accuracy`` is over the pairs the humans decided (human ties are left out and counted in
    ``n_human_ties``); a judge tie on such a pair earns ``judge_tie_credit`` (one half).
    ``accuracy_judge_decided`` is the accuracy over the pairs both decided (None when there are none).
    ``judge_tie_rate`` and ``human_tie_rate`` are shares of all pairs.
    """

    n_pairs: int
    n_decided: int
    n_human_ties: int
    n_judge_ties: int
    accuracy: Estimate
    accuracy_judge_decided: float | None
    judge_tie_rate: float
    human_tie_rate: float
    judge_tie_credit: float
    tie_margin: float
    position_consistency: float | None
    n_boot: int

    def to_row(self) -> dict[str, Any]:
        """Flat table row."""
        return {
            "pairs": self.n_pairs,
            "decided": self.n_decided,
            **_est_cols("accuracy", self.accuracy),
            "acc_judge_decided": self.accuracy_judge_decided,
            "judge_tie_rate": self.judge_tie_rate,
            "human_tie_rate": self.human_tie_rate,
            "position_consistency": self.position_consistency,
        }


@dataclass(frozen=True)
class BestOfNMeasures:
    """Judge's pick among N candidates vs human votes.

    ``top1``: share of groups where the judge's pick is a human favourite (any of tied favourites
    counts). ``vote_share``: mean share of the votes the pick received. ``random_*``: the same for a
    uniformly random pick (expected values), ``oracle_vote_share``: the favourite's vote share.
    When the judge's own best score is tied, the credit is averaged over its tied candidates
    (the expected value of a random tie-break).
    """

    n_groups: int
    n_skipped: int
    top1: Estimate
    vote_share: Estimate
    random_top1: Estimate
    random_vote_share: Estimate
    oracle_vote_share: Estimate
    n_boot: int

    def to_row(self) -> dict[str, Any]:
        """Flat table row."""
        row: dict[str, Any] = {"groups": self.n_groups}
        for name in ("top1", "vote_share", "random_top1", "random_vote_share", "oracle_vote_share"):
            row.update(_est_cols(name, getattr(self, name)))
        return row


@dataclass(frozen=True)
class InstabilityMeasures:
    """Prediction instability over K repeats per item (None where no such repeats were given).

    ``level_flip_rate`` / ``winner_flip_rate``: share of items whose repeated levels / pairwise winners
    are not all equal (the BIQA-reasoning paper's instability). ``score_spread``: mean per-item SD.
    """

    level_flip_rate: float | None
    winner_flip_rate: float | None
    score_spread: float | None
    n_level_items: int
    n_winner_items: int
    n_score_items: int

    def to_row(self) -> dict[str, Any]:
        """Flat table row."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# Correlations


def _oriented(pred: ArrayLike, human: ArrayLike, higher_is_better: bool) -> tuple[FloatArray, FloatArray]:
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
    p, h = _oriented(pred, human, higher_is_better)
    return float(stats.spearmanr(p, h).statistic)


def krcc(pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True) -> float:
    """Kendall tau-b of predictions with human scores (DMOS: ``higher_is_better=False``)."""
    p, h = _oriented(pred, human, higher_is_better)
    return float(stats.kendalltau(p, h).statistic)


# ---------------------------------------------------------------------------------------------------
# Logistic mapping


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


def _direction_of(fit: LogisticFit, x: FloatArray) -> int:
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


def _fit(x: FloatArray, y: FloatArray, direction: int | None = None, maxfev: int = _MAXFEV) -> LogisticFit:
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


def _refit(
    x: FloatArray, y: FloatArray, full: LogisticFit, direction: int, full_direction: int
) -> LogisticFit | None:
    """A bootstrap refit: the full-data mapping's kind warm-started from it, held to the resample's own
    SRCC direction (a fresh, short fit when that differs from the full data's); None when it fails."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    if direction != full_direction:
        return _fit(x, y, direction, _MAXFEV_BOOT)
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
    fit = _fit(x, y)
    return fit, fit(x)


def _pearson(a: FloatArray, b: FloatArray) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _signed_plcc(mapping: LogisticFit, p: FloatArray, h: FloatArray) -> float:
    return _direction_of(mapping, p) * _pearson(mapping(p), h)


def plcc(
    pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True, fit: LogisticFit | None = None
) -> float:
    """Pearson correlation of the mapped predictions with the (oriented) human scores, signed by the
    mapping's direction: negative when the judge's scores fall as the human scores rise.

    ``fit`` reuses a mapping; by default the monotone one of :func:`logistic_fit` is fitted here.
    As the fit is least squares, the unsigned correlation is >= 0, so PLCC has the sign of SRCC.
    """
    p, h = _oriented(pred, human, higher_is_better)
    mapping = fit if fit is not None else _fit(p, h)
    return _signed_plcc(mapping, p, h)


def rmse(
    pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True, fit: LogisticFit | None = None
) -> float:
    """Root mean square error of the logistic-mapped predictions, in human-scale units."""
    p, h = _oriented(pred, human, higher_is_better)
    mapping = fit if fit is not None else _fit(p, h)
    return float(np.sqrt(np.mean((mapping(p) - h) ** 2)))


# ---------------------------------------------------------------------------------------------------
# Bootstrap helpers


def _percentile_ci(samples: FloatArray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - CI_LEVEL) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _estimate(value: float, samples: FloatArray) -> Estimate:
    low, high = _percentile_ci(samples)
    return Estimate(float(value), low, high)


def boot_indices(n: int, n_boot: int, seed: int) -> NDArray[np.intp]:
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n))


def mean_estimate(values: FloatArray, idx: NDArray[np.intp]) -> Estimate:
    if values.size == 0:
        return Estimate(math.nan, math.nan, math.nan)
    return _estimate(float(np.mean(values)), values[idx].mean(axis=1) if idx.size else np.empty(0))


def _rowwise_pearson(a: FloatArray, b: FloatArray) -> FloatArray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (a * b).sum(axis=1) / den
    return np.where(den > 0, out, np.nan)


def _est_cols(name: str, est: Estimate) -> dict[str, float]:
    return {name: est.value, f"{name}_lo": est.low, f"{name}_hi": est.high}


# ---------------------------------------------------------------------------------------------------
# MOS datasets


def _resampled_ranks(values: FloatArray, idx: np.ndarray) -> FloatArray:
    """Average ranks (as ``rankdata``) of ``values[idx]`` row by row, without sorting each resample.

    Dense ranks of the full sample are computed once; within a resample, an item's average rank is
    the count of smaller items plus half the ties (+1/2), found with one ``bincount`` per row: O(n)
    instead of O(n log n), which is what keeps 1,000 resamples of 10,000 rows fast.
    """
    _, dense = np.unique(values, return_inverse=True)
    levels = int(dense.max()) + 1 if dense.size else 0
    ranks = np.empty(idx.shape, dtype=np.float64)
    for row in range(idx.shape[0]):
        g = dense[idx[row]]
        counts = np.bincount(g, minlength=levels)
        below = np.cumsum(counts) - counts
        ranks[row] = below[g] + (counts[g] + 1) / 2.0
    return ranks


def mos_measures(
    pred: ArrayLike,
    mos: ArrayLike,
    *,
    higher_is_better: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    refit: bool | None = None,
) -> MOSMeasures:
    """SRCC, KRCC, PLCC and RMSE (after the monotone mapping) of a judge against MOS/DMOS, with 95 % CIs.

    The mapping is :func:`logistic_fit`'s (held to the direction of SRCC); PLCC is signed by it
    (:func:`plcc`). CIs: percentile bootstrap over items (``n_boot`` resamples, ``seed``).
    ``refit``: refit the mapping on every resample (warm-started from the full-data fit, held to the
    resample's own SRCC direction); None refits when ``n_boot * (n + 1500) <= REFIT_BUDGET``, else
    reuses the full-data mapping (``ci_refit`` says which).
    """
    p, h = _oriented(pred, mos, higher_is_better)
    n = p.size
    point_srcc = float(stats.spearmanr(p, h).statistic)
    direction = -1 if point_srcc < 0 else 1
    fit = _fit(p, h, direction)
    mapped = fit(p)
    point_krcc = float(stats.kendalltau(p, h).statistic)
    point_plcc = _signed_plcc(fit, p, h)
    point_rmse = float(np.sqrt(np.mean((mapped - h) ** 2)))

    idx = boot_indices(n, n_boot, seed)
    n_failed = 0
    do_refit = (n_boot * (n + 1500) <= REFIT_BUDGET) if refit is None else refit
    if n_boot:
        bp, bh = p[idx], h[idx]
        b_srcc = _rowwise_pearson(_resampled_ranks(p, idx), _resampled_ranks(h, idx))
        b_krcc = np.array([stats.kendalltau(bp[i], bh[i]).statistic for i in range(n_boot)], dtype=np.float64)
        if do_refit:
            signs = np.where(b_srcc < 0, -1, 1)
            refits = [_refit(bp[i], bh[i], fit, int(signs[i]), direction) for i in range(n_boot)]
            n_failed = sum(r is None for r in refits)
            bm = np.stack([(r or fit)(bp[i]) for i, r in enumerate(refits)])
            signs = np.array([_direction_of(r or fit, bp[i]) for i, r in enumerate(refits)], dtype=np.float64)
        else:
            bm = mapped[idx]
            signs = np.full(n_boot, float(_direction_of(fit, p)))
        b_plcc = signs * _rowwise_pearson(bm, bh)
        b_rmse = np.sqrt(np.mean((bm - bh) ** 2, axis=1))
    else:
        b_srcc = b_krcc = b_plcc = b_rmse = np.empty(0)
    return MOSMeasures(
        n=n,
        srcc=_estimate(point_srcc, b_srcc),
        krcc=_estimate(point_krcc, b_krcc),
        plcc=_estimate(point_plcc, b_plcc),
        rmse=_estimate(point_rmse, b_rmse),
        fit=fit,
        higher_is_better=higher_is_better,
        n_boot=n_boot,
        ci_refit=bool(do_refit and n_boot),
        n_refit_failed=n_failed,
    )


# ---------------------------------------------------------------------------------------------------
# Within-group agreement (MOS datasets with a group column)

_PAIR_BLOCK = 4_000_000
"""Pairs of one group are compared in blocks of about this many ordered pairs (memory stays small)."""


@dataclass(frozen=True)
class _GroupStats:
    """Per used group: SRCC, pairs with different human scores, the judge's credit and ties on them."""

    n_items: int
    n_abstained: int
    n_groups: int
    srcc: FloatArray
    pairs: FloatArray
    credit: FloatArray
    ties: FloatArray


def _group_inputs(
    pred: Predictions,
    human: HumanScores,
    groups: Sequence[str],
    higher_is_better: bool,
) -> tuple[FloatArray, FloatArray, NDArray[np.intp], int, int]:
    """Predictions and oriented human scores of the kept items, their group codes (first-seen order
    over all items), the number of groups (all items) and of dropped (abstained) items."""
    p = np.array([math.nan if v is None else float(v) for v in pred], dtype=np.float64).ravel()
    h = np.asarray(human, dtype=np.float64).ravel()
    names = list(groups)
    if not (p.size == h.size == len(names)):
        raise ValueError(f"lengths differ: {p.size} predictions, {h.size} human scores, {len(names)} groups")
    if not np.all(np.isfinite(h)):
        raise ValueError("human scores must be finite")
    if np.any(np.isinf(p)):
        raise ValueError("predictions must be finite (None or NaN for an abstention)")
    if any(g is None for g in names):
        raise ValueError("every item needs a group (None found)")
    keep = ~np.isnan(p)
    codes: dict[str, int] = {}
    all_codes = np.array([codes.setdefault(str(g), len(codes)) for g in names], dtype=np.intp)
    oriented = h[keep] if higher_is_better else -h[keep]
    return p[keep], oriented, all_codes[keep], len(codes), int((~keep).sum())


def _pair_counts(p: FloatArray, h: FloatArray) -> tuple[int, int, int]:
    """(pairs with different human scores, of them ordered as people do, of them tied by the judge)."""
    m = p.size
    pairs = agree = ties = 0
    step = max(1, _PAIR_BLOCK // max(m, 1))
    for start in range(0, m, step):
        dh = np.sign(h[start : start + step, None] - h[None, :])
        dp = np.sign(p[start : start + step, None] - p[None, :])
        differ = dh != 0
        pairs += int(differ.sum())
        agree += int((differ & (dp == dh)).sum())
        ties += int((differ & (dp == 0)).sum())
    return pairs // 2, agree // 2, ties // 2  # every unordered pair was seen as (i, j) and (j, i)


def _group_srcc(p: FloatArray, h: FloatArray) -> float:
    if np.ptp(p) == 0:
        return 0.0  # the judge scores the whole group equal: it orders nothing
    return float(np.corrcoef(stats.rankdata(p), stats.rankdata(h))[0, 1])


def _group_stats(
    pred: Predictions,
    human: HumanScores,
    groups: Sequence[str],
    higher_is_better: bool,
) -> _GroupStats:
    p, h, codes, n_groups, n_abstained = _group_inputs(pred, human, groups, higher_is_better)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=n_groups))[:-1]
    srcc_g: list[float] = []
    pairs_g: list[int] = []
    credit_g: list[float] = []
    ties_g: list[int] = []
    for members in np.split(order, bounds) if n_groups else []:
        gp, gh = p[members], h[members]
        if gp.size < 2 or np.ptp(gh) == 0:
            continue  # fewer than 2 items, or people rated them all the same: nothing to order
        pairs, agree, ties = _pair_counts(gp, gh)
        srcc_g.append(_group_srcc(gp, gh))
        pairs_g.append(pairs)
        credit_g.append(agree + 0.5 * ties)
        ties_g.append(ties)
    arrays = [np.asarray(v, dtype=np.float64) for v in (srcc_g, pairs_g, credit_g, ties_g)]
    return _GroupStats(int(p.size), n_abstained, n_groups, *arrays)


def _wg_srcc(srcc_g: FloatArray) -> float:
    return float(np.mean(srcc_g)) if srcc_g.size else math.nan


def _wg_pairwise(pairs_g: FloatArray, credit_g: FloatArray) -> float:
    total = float(pairs_g.sum())
    return float(credit_g.sum()) / total if total > 0 else math.nan


def within_group_srcc(
    pred: Predictions,
    human: HumanScores,
    groups: Sequence[str],
    *,
    higher_is_better: bool = True,
) -> float:
    """Mean over groups of the SRCC between predictions and human scores inside each group.

    Items with a None/NaN prediction are dropped; groups left with fewer than 2 items or whose human
    scores are all equal are skipped; a group the judge scores all equal counts 0. The mean is
    unweighted (each group counts once). NaN when no group is left. DMOS: ``higher_is_better=False``.
    See :class:`GroupedMeasures`.
    """
    return _wg_srcc(_group_stats(pred, human, groups, higher_is_better).srcc)


def within_group_pairwise(
    pred: Predictions,
    human: HumanScores,
    groups: Sequence[str],
    *,
    higher_is_better: bool = True,
) -> float:
    """Share of same-group pairs with different human scores that the judge orders as people do.

    Pooled over all such pairs of all groups; a pair the judge scores equal counts 0.5 (a coin toss).
    Items with a None/NaN prediction are dropped first. NaN when there is no such pair.
    See :class:`GroupedMeasures`.
    """
    st = _group_stats(pred, human, groups, higher_is_better)
    return _wg_pairwise(st.pairs, st.credit)


def grouped_measures(
    pred: Predictions,
    human: HumanScores,
    groups: Sequence[str],
    *,
    higher_is_better: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
) -> GroupedMeasures:
    """Within-group SRCC and pairwise accuracy with 95 % CIs from resampling whole groups.

    ``pred``: one prediction per item (None/NaN where the judge abstained: dropped and counted),
    ``human``: MOS/DMOS, ``groups``: each item's group name. The bootstrap draws the used groups
    ``n_boot`` times with replacement (:func:`boot_indices` over groups, ``seed``) and recomputes both
    measures on each draw. Definitions in :class:`GroupedMeasures`.
    """
    st = _group_stats(pred, human, groups, higher_is_better)
    used = int(st.srcc.size)
    idx = boot_indices(used, n_boot if used else 0, seed)
    if idx.size:
        b_srcc = st.srcc[idx].mean(axis=1)
        b_pair = st.credit[idx].sum(axis=1) / st.pairs[idx].sum(axis=1)
    else:
        b_srcc = b_pair = np.empty(0)
    return GroupedMeasures(
        n_items=st.n_items,
        n_abstained=st.n_abstained,
        n_groups=st.n_groups,
        n_groups_used=used,
        n_pairs=int(st.pairs.sum()),
        n_judge_ties=int(st.ties.sum()),
        srcc=_estimate(_wg_srcc(st.srcc), b_srcc),
        pair_accuracy=_estimate(_wg_pairwise(st.pairs, st.credit), b_pair),
        higher_is_better=higher_is_better,
        n_boot=n_boot,
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------------
# Pairwise preferences

_WINNERS = {"a": "A", "b": "B", "tie": "tie", "=": "tie", "none": "tie", "": "tie"}


def _winner(value: object) -> str:
    key = str(value).strip().lower()
    if key not in _WINNERS:
        raise ValueError(f"human winner must be 'A', 'B' or 'tie', got {value!r}")
    return _WINNERS[key]


def pairwise_accuracy(
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    human_winner: Sequence[str],
    *,
    tie_margin: float = 0.0,
    position_consistency: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> PairwiseMeasures:
    """Accuracy of the judge's preferences (score A vs score B) against the human majority winner.

    The judge ties when ``|a - b| <= tie_margin``; a judge tie counts as half right. Pairs the
    humans tied ("tie") are excluded from the accuracy and counted. ``position_consistency``
    (per-pair or per-run values, e.g. from A/B swapping) is passed through as its mean.
    The CI is a percentile bootstrap over the decided pairs.
    """
    a = np.asarray(pred_a, dtype=np.float64).ravel()
    b = np.asarray(pred_b, dtype=np.float64).ravel()
    winners = [_winner(w) for w in human_winner]
    if not (a.size == b.size == len(winners)):
        raise ValueError(f"lengths differ: {a.size} A scores, {b.size} B scores, {len(winners)} winners")
    if tie_margin < 0:
        raise ValueError(f"tie_margin must be >= 0, got {tie_margin}")
    diff = a - b
    judge_tie = np.abs(diff) <= tie_margin
    human = np.array(winners)
    decided = human != "tie"
    judge_pick = np.where(judge_tie, "tie", np.where(diff > 0, "A", "B"))
    credit = np.where(judge_tie, 0.5, (judge_pick == human).astype(np.float64))[decided]
    both = decided & ~judge_tie
    acc_both = float(np.mean(judge_pick[both] == human[both])) if both.any() else None
    n = int(a.size)
    idx = boot_indices(int(credit.size), n_boot if credit.size else 0, seed)
    pc = [float(v) for v in position_consistency] if position_consistency is not None else []
    return PairwiseMeasures(
        n_pairs=n,
        n_decided=int(decided.sum()),
        n_human_ties=int((~decided).sum()),
        n_judge_ties=int(judge_tie.sum()),
        accuracy=mean_estimate(credit, idx),
        accuracy_judge_decided=acc_both,
        judge_tie_rate=float(judge_tie.mean()) if n else math.nan,
        human_tie_rate=float((~decided).mean()) if n else math.nan,
        judge_tie_credit=0.5,
        tie_margin=float(tie_margin),
        position_consistency=float(np.mean(pc)) if pc else None,
        n_boot=n_boot,
    )


# ---------------------------------------------------------------------------------------------------
# Best-of-N


def best_of_n(
    pred_groups: Sequence[ArrayLike],
    vote_groups: Sequence[ArrayLike],
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> BestOfNMeasures:
    """How often the judge's best-scored candidate is the humans' favourite, and its vote share.

    Each group holds the judge's scores and the human votes for its N candidates (N may vary).
    Groups without votes are skipped (``n_skipped``). CIs: percentile bootstrap over groups.
    """
    if len(pred_groups) != len(vote_groups):
        raise ValueError(f"{len(pred_groups)} prediction groups but {len(vote_groups)} vote groups")
    top1, share, r_top1, r_share, oracle = [], [], [], [], []
    skipped = 0
    for g, (preds, votes) in enumerate(zip(pred_groups, vote_groups, strict=True)):
        s = np.asarray(preds, dtype=np.float64).ravel()
        v = np.asarray(votes, dtype=np.float64).ravel()
        if s.size != v.size or s.size == 0:
            raise ValueError(f"group {g}: {s.size} scores but {v.size} vote counts")
        if np.any(v < 0) or not np.all(np.isfinite(s)):
            raise ValueError(f"group {g}: votes must be >= 0 and scores finite")
        total = float(v.sum())
        if total <= 0:
            skipped += 1
            continue
        vshare = v / total
        fav = v == v.max()
        picks = s == s.max()
        top1.append(float(fav[picks].mean()))
        share.append(float(vshare[picks].mean()))
        r_top1.append(float(fav.mean()))
        r_share.append(float(vshare.mean()))
        oracle.append(float(vshare.max()))
    n = len(top1)
    idx = boot_indices(n, n_boot if n else 0, seed)
    arrays = [np.asarray(x, dtype=np.float64) for x in (top1, share, r_top1, r_share, oracle)]
    t1, vs, rt1, rvs, orc = (mean_estimate(x, idx) for x in arrays)
    return BestOfNMeasures(
        n_groups=n,
        n_skipped=skipped,
        top1=t1,
        vote_share=vs,
        random_top1=rt1,
        random_vote_share=rvs,
        oracle_vote_share=orc,
        n_boot=n_boot,
    )


# ---------------------------------------------------------------------------------------------------
# Instability


def instability(
    repeated_levels: Sequence[Sequence[Hashable]] | None,
    repeated_winners: Sequence[Sequence[str]] | None = None,
    repeated_scores: Sequence[Sequence[float]] | None = None,
) -> InstabilityMeasures:
    """Flip rates of repeated levels and winners and the mean spread of repeated scores.

    Uses :func:`srjudge.judges.vlm.stability.flip_rate` / ``mean_spread``; items with fewer than two
    repeats are left out, and a measure with no eligible items is None.
    """

    def eligible(rows: Sequence[Sequence[Any]] | None) -> int:
        return sum(len(r) >= 2 for r in rows) if rows is not None else 0

    n_lev, n_win, n_sc = eligible(repeated_levels), eligible(repeated_winners), eligible(repeated_scores)
    return InstabilityMeasures(
        level_flip_rate=flip_rate(repeated_levels) if repeated_levels is not None and n_lev else None,
        winner_flip_rate=flip_rate(repeated_winners) if repeated_winners is not None and n_win else None,
        score_spread=mean_spread(repeated_scores) if repeated_scores is not None and n_sc else None,
        n_level_items=n_lev,
        n_winner_items=n_win,
        n_score_items=n_sc,
    )
