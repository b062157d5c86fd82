"""Agreement of a judge with human opinion, as the IQA community reports it (pure functions, no I/O).

Conventions (VQEG, IQA-PyTorch benchmark tables):

* Judge predictions are higher-is-better. When the human scale is DMOS (lower is better) pass
  ``higher_is_better=False``: the human scores are negated first, so a good judge always gets
  positive SRCC / KRCC / PLCC (RMSE is unchanged by the negation).
* MOS datasets (:func:`mos_measures`): SRCC and KRCC on the raw predictions, PLCC and RMSE after the
  monotone mapping of :mod:`srjudge.bench.fitting`; pairwise preferences (:func:`pairwise_accuracy`),
  best-of-N choices (:func:`best_of_n`) and instability over repeats (:func:`instability`). Agreement
  within groups is in :mod:`srjudge.bench.grouped`.
* 95 % confidence intervals are bootstrap percentile intervals (:mod:`srjudge.bench.bootstrap`): items
  (pairs, groups) are resampled with replacement ``n_boot`` times with a seeded generator, so the
  numbers are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from srjudge.bench.bootstrap import (
    Estimate,
    FloatArray,
    boot_indices,
    est_cols,
    estimate,
    mean_estimate,
    rowwise_pearson,
)
from srjudge.bench.fitting import (
    LogisticFit,
    direction_of,
    fit_monotone,
    oriented,
    refit_monotone,
    signed_plcc,
)
from srjudge.judges.vlm.stability import flip_rate, mean_spread

REFIT_BUDGET = 4_000_000
"""With ``refit=None``, the logistic is refitted per bootstrap resample when ``n_boot * (n + 1500)``
is at most this (a warm-started refit takes ~2-8 ms: a few seconds at most for 1000 resamples)."""


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
            row.update(est_cols(name, getattr(self, name)))
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
            **est_cols("accuracy", self.accuracy),
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
            row.update(est_cols(name, getattr(self, name)))
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
    p, h = oriented(pred, mos, higher_is_better)
    n = p.size
    point_srcc = float(stats.spearmanr(p, h).statistic)
    direction = -1 if point_srcc < 0 else 1
    fit = fit_monotone(p, h, direction)
    mapped = fit(p)
    point_krcc = float(stats.kendalltau(p, h).statistic)
    point_plcc = signed_plcc(fit, p, h)
    point_rmse = float(np.sqrt(np.mean((mapped - h) ** 2)))

    idx = boot_indices(n, n_boot, seed)
    n_failed = 0
    do_refit = (n_boot * (n + 1500) <= REFIT_BUDGET) if refit is None else refit
    if n_boot:
        bp, bh = p[idx], h[idx]
        b_srcc = rowwise_pearson(_resampled_ranks(p, idx), _resampled_ranks(h, idx))
        b_krcc = np.array([stats.kendalltau(bp[i], bh[i]).statistic for i in range(n_boot)], dtype=np.float64)
        if do_refit:
            signs = np.where(b_srcc < 0, -1, 1)
            refits = [refit_monotone(bp[i], bh[i], fit, int(signs[i]), direction) for i in range(n_boot)]
            n_failed = sum(r is None for r in refits)
            bm = np.stack([(r or fit)(bp[i]) for i, r in enumerate(refits)])
            signs = np.array([direction_of(r or fit, bp[i]) for i, r in enumerate(refits)], dtype=np.float64)
        else:
            bm = mapped[idx]
            signs = np.full(n_boot, float(direction_of(fit, p)))
        b_plcc = signs * rowwise_pearson(bm, bh)
        b_rmse = np.sqrt(np.mean((bm - bh) ** 2, axis=1))
    else:
        b_srcc = b_krcc = b_plcc = b_rmse = np.empty(0)
    return MOSMeasures(
        n=n,
        srcc=estimate(point_srcc, b_srcc),
        krcc=estimate(point_krcc, b_krcc),
        plcc=estimate(point_plcc, b_plcc),
        rmse=estimate(point_rmse, b_rmse),
        fit=fit,
        higher_is_better=higher_is_better,
        n_boot=n_boot,
        ci_refit=bool(do_refit and n_boot),
        n_refit_failed=n_failed,
    )


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
