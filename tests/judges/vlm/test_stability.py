"""Instability measures: flip rate and mean spread."""

from __future__ import annotations

import pytest

from srjudge.judges.vlm.stability import flip_rate, mean_spread


def test_instability_measures() -> None:
    assert flip_rate([["good", "good"], ["good", "fair"], ["bad", "bad", "bad"], ["fair"]]) == pytest.approx(
        1 / 3
    )
    assert mean_spread([[50, 50], [40, 60]]) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        flip_rate([["good"]])
