"""Agreement of a judge with human opinion, as the IQA community reports it (pure functions, no I/O).

Conventions (VQEG, IQA-PyTorch benchmark tables):

* Judge predictions are higher-is-better. When the human scale is DMOS (lower is better) pass
  ``higher_is_better=False``: the human scores are negated first, so a good judge always gets
  positive SRCC / KRCC / PLCC (RMSE is unchanged by the negation).
* SRCC and KRCC are computed on the raw predictions; PLCC and RMSE after the VQEG 5-parameter
  logistic mapping of the predictions onto the (oriented) human scale, fitted per judge.
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
    """

    kind: FitKind
    params: tuple[float, ...]

    def __call__(self, x: ArrayLike) -> FloatArray:
        """The mapping applied to predictions ``x``."""
        return _FUNCS[self.kind](np.asarray(x, dtype=np.float64), *self.params)


@dataclass(frozen=True)
class MOSMeasures:
    """Judge vs MOS/DMOS: rank and linear agreement with CIs, and the logistic fit used for PLCC/RMSE."""

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


def _linear_fit(x: FloatArray, y: FloatArray) -> LogisticFit:
    if np.ptp(x) == 0:
        return LogisticFit("linear", (0.0, float(np.mean(y))))
    slope, intercept = np.polyfit(x, y, 1)
    return LogisticFit("linear", (float(slope), float(intercept)))


def _fit(x: FloatArray, y: FloatArray) -> LogisticFit:
    """The 5-param logistic from the standard start, else the 4-param one, else a straight line."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return _linear_fit(x, y)
    spread = float(np.std(x))
    # b1: the human span (max(mos) for a MOS scale that starts at 0), b2: ~0.1 for predictions
    # spread like 0-100 scores (SD ~ 20), b3: mean prediction, b4: 0, b5: mean human score.
    p5 = (float(np.ptp(y)), 2.0 / spread, float(np.mean(x)), 0.0, float(np.mean(y)))
    p4 = (float(np.max(y)), float(np.min(y)), float(np.mean(x)), spread / 2.0)
    fit = _try_fit("5-param", x, y, p5, _MAXFEV) or _try_fit("4-param", x, y, p4, _MAXFEV)
    return fit if fit is not None else _linear_fit(x, y)


def _refit(x: FloatArray, y: FloatArray, full: LogisticFit) -> LogisticFit | None:
    """A bootstrap refit of the full-data mapping's kind, warm-started from it; None when it fails."""
    if full.kind == "linear":
        return _linear_fit(x, y) if np.ptp(x) > 0 else None
    return _try_fit(full.kind, x, y, full.params, _MAXFEV_BOOT)


def logistic_fit(pred: ArrayLike, mos: ArrayLike) -> tuple[LogisticFit, FloatArray]:
    """Fit the VQEG 5-parameter logistic from predictions to human scores; returns (fit, mapped predictions).

    Initial values: b1 = span of ``mos``, b2 = 2 / SD(pred) (0.1 for 0-100 scores), b3 = mean(pred),
    b4 = 0, b5 = mean(mos); up to 20,000 evaluations. If the fit fails, diverges (|b1| or
    |b4| * range(pred) over 10x the human span) or there are 5 items or fewer, the 4-parameter logistic
    is fitted instead, and failing that a straight line: ``fit.kind`` says which.
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


def plcc(
    pred: ArrayLike, human: ArrayLike, *, higher_is_better: bool = True, fit: LogisticFit | None = None
) -> float:
    """Pearson correlation of the logistic-mapped predictions with the (oriented) human scores.

    ``fit`` reuses a mapping; by default it is fitted here (:func:`logistic_fit`).
    """
    p, h = _oriented(pred, human, higher_is_better)
    mapping = fit if fit is not None else _fit(p, h)
    return _pearson(mapping(p), h)


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
    """SRCC, KRCC, PLCC and RMSE (after the logistic mapping) of a judge against MOS/DMOS, with 95 % CIs.

    CIs: percentile bootstrap over items (``n_boot`` resamples, ``seed``). ``refit``: refit the
    logistic on every resample (warm-started from the full-data fit); None refits when
    ``n_boot * (n + 1500) <= REFIT_BUDGET``, else reuses the full-data mapping (``ci_refit`` says which).
    """
    p, h = _oriented(pred, mos, higher_is_better)
    n = p.size
    fit = _fit(p, h)
    mapped = fit(p)
    point_srcc = float(stats.spearmanr(p, h).statistic)
    point_krcc = float(stats.kendalltau(p, h).statistic)
    point_plcc = _pearson(mapped, h)
    point_rmse = float(np.sqrt(np.mean((mapped - h) ** 2)))

    idx = boot_indices(n, n_boot, seed)
    n_failed = 0
    do_refit = (n_boot * (n + 1500) <= REFIT_BUDGET) if refit is None else refit
    if n_boot:
        bp, bh = p[idx], h[idx]
        b_srcc = _rowwise_pearson(_resampled_ranks(p, idx), _resampled_ranks(h, idx))
        b_krcc = np.array([stats.kendalltau(bp[i], bh[i]).statistic for i in range(n_boot)], dtype=np.float64)
        if do_refit:
            refits = [_refit(bp[i], bh[i], fit) for i in range(n_boot)]
            n_failed = sum(r is None for r in refits)
            bm = np.stack([(r or fit)(bp[i]) for i, r in enumerate(refits)])
        else:
            bm = mapped[idx]
        b_plcc = _rowwise_pearson(bm, bh)
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
