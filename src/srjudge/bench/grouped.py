"""Agreement within groups (MOS datasets with a group column): mean per-group SRCC and pairwise accuracy
over same-group pairs, with CIs from resampling whole groups."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from srjudge.bench.bootstrap import Estimate, FloatArray, boot_indices, est_cols, estimate

Predictions = Sequence[float | None] | NDArray[Any]
"""One judge prediction per item; None (or NaN) where the judge abstained."""
HumanScores = Sequence[float] | NDArray[Any]


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
            **est_cols("srcc_within", self.srcc),
            **est_cols("pair_acc_within", self.pair_accuracy),
        }


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
        srcc=estimate(_wg_srcc(st.srcc), b_srcc),
        pair_accuracy=estimate(_wg_pairwise(st.pairs, st.credit), b_pair),
        higher_is_better=higher_is_better,
        n_boot=n_boot,
        seed=seed,
    )
