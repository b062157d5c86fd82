"""The pairwise protocol on recorded replies: both orders, position consistency, tournaments."""

from __future__ import annotations

from pathlib import Path

import pytest

from srjudge.errors import SpecError
from srjudge.vlm.request import ChatRequest
from tests.judges.vlm.helpers import brightness, gray, judge


def test_pairwise_runs_both_orders_and_reports_position_consistency(tmp_path: Path) -> None:
    def prefers_brighter(request: ChatRequest) -> str:
        first, second = brightness(request)
        return "first" if first > second else "second"

    j = judge("pairwise", prefers_brighter, tmp_path, samples=2, temperature=0.7)
    result = j.compare(gray(0.9), gray(0.1))
    assert result.winner == "A" and result.votes == {"A": 4, "B": 0, "tie": 0}
    assert result.position_consistency == 1.0
    assert len(j.backend.requests) == 4  # type: ignore[attr-defined]
    assert sorted(r.sample_index for r in j.backend.requests) == [0, 0, 1, 1]  # type: ignore[attr-defined]

    biased = judge("pairwise", lambda r: "first", tmp_path / "b").compare(gray(0.9), gray(0.1))
    assert biased.winner == "tie" and biased.position_consistency == 0.0


def test_pairwise_tournament_ranks_within_the_budget(tmp_path: Path) -> None:
    def prefers_brighter(request: ChatRequest) -> str:
        first, second = brightness(request)
        return "first" if first > second else "second"

    levels = [0.3, 0.9, 0.1, 0.6]
    for rank in ("bt", "copeland"):
        j = judge("pairwise", prefers_brighter, tmp_path / rank, rank=rank)
        assert j.rank([gray(v) for v in levels]).order() == [1, 3, 0, 2]
        assert len(j.backend.requests) == 12  # type: ignore[attr-defined]  (6 pairs x 2 orders)
    limited = judge("pairwise", prefers_brighter, tmp_path / "budget", budget=8)
    limited.rank([gray(v) for v in levels])
    assert len(limited.backend.requests) == 8  # type: ignore[attr-defined]
    with pytest.raises(SpecError, match="cannot rank 4 candidates"):
        judge("pairwise", prefers_brighter, tmp_path / "tiny", budget=2).rank([gray(v) for v in levels])
