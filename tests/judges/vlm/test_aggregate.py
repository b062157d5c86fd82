"""Pairwise aggregation: Bradley-Terry, Copeland and tournament pairs on hand-made cases."""

from __future__ import annotations

import pytest

from srjudge.judges.vlm.aggregate import bradley_terry, copeland, tournament_pairs


def test_aggregation_on_hand_made_cases() -> None:
    # 0 beats 1 twice, 1 beats 2 twice, 0 beats 2 once: order 0 > 1 > 2 under both rules.
    outcomes = [(0, 1, 1.0), (0, 1, 1.0), (1, 2, 1.0), (1, 2, 1.0), (0, 2, 1.0)]
    bt = bradley_terry(3, outcomes)
    assert bt[0] > bt[1] > bt[2] and sum(bt) == pytest.approx(3.0)
    assert copeland(3, outcomes) == [1.0, 0.5, 0.0]
    assert copeland(2, [(0, 1, 1.0), (0, 1, 0.0)]) == [0.5, 0.5]  # a split pair is a tie
    pairs = tournament_pairs(6, 4, seed=1)
    assert len(pairs) == 4 and len({x for p in pairs for x in p}) == 6  # every candidate compared
    assert len(tournament_pairs(4, 100)) == 6
