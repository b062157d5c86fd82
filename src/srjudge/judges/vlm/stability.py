"""Prediction instability (BIQA-reasoning paper): how often repeated judgements of one item disagree."""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Sequence


def flip_rate(repeated: Sequence[Sequence[Hashable]]) -> float:
    """Share of items whose K repeated predictions (levels, or pairwise winners) are not all equal.

    This is the paper's prediction-instability rate (22.00 % before, 12.39 % after two-stage tuning).
    Items with fewer than two predictions are left out.
    """
    eligible = [r for r in repeated if len(r) >= 2]
    if not eligible:
        raise ValueError("flip rate needs items with at least two repeated predictions")
    return sum(len(set(r)) > 1 for r in eligible) / len(eligible)


def pairwise_flip_rate(repeated_winners: Sequence[Sequence[str]]) -> float:
    """Flip rate of pairwise winners ('A', 'B', 'tie'): a tie against a win counts as a flip."""
    return flip_rate(repeated_winners)


def mean_spread(repeated_scores: Sequence[Sequence[float]]) -> float:
    """Mean over items of the standard deviation of their repeated scores (population SD)."""
    spreads = [statistics.pstdev(s) for s in repeated_scores if len(s) >= 2]
    if not spreads:
        raise ValueError("spread needs items with at least two repeated scores")
    return float(sum(spreads) / len(spreads))


def level_of(score: float) -> str:
    """The level word nearest a 0-100 score (0 bad, 25 poor, 50 fair, 75 good, 100 excellent)."""
    words = ("bad", "poor", "fair", "good", "excellent")
    return words[min(4, max(0, math.floor(score / 25.0 + 0.5)))]
