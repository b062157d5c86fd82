"""Scoring files: references paired by name (with a pattern), and the mean over the scored ones."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from srjudge.errors import SrjudgeError
from srjudge.judges.base import Verdict
from srjudge.provenance import Provenance
from srjudge.select.files import ScoreRecord, mean_score, pair_references


def test_references_are_paired_by_name_with_a_pattern(tmp_path: Path) -> None:
    lr = tmp_path / "lr"
    lr.mkdir()
    for name in ("a_x4.png", "b_x4.jpg", "notes.txt"):
        (lr / name).write_bytes(b"")
    inputs = [Path("sr/a.png"), Path("sr/b.png")]
    pairs = pair_references(inputs, lr, what="LR", option="--lr", pattern="{stem}_x4")
    assert pairs == [lr / "a_x4.png", lr / "b_x4.jpg"]
    assert pair_references(inputs, None, what="LR", option="--lr") == [None, None]
    with pytest.raises(SrjudgeError, match=r"no LR for 1: c\.png -> c_x4\.\*"):
        pair_references([Path("c.png")], lr, what="LR", option="--lr", pattern="{stem}_x4")
    with pytest.raises(SrjudgeError, match="must contain"):
        pair_references(inputs, lr, what="LR", option="--lr", pattern="x4")
    one = lr / "a_x4.png"
    with pytest.raises(SrjudgeError, match="--lr-for-all"):
        pair_references(inputs, one, what="LR", option="--lr")
    assert pair_references(inputs, one, what="LR", option="--lr", one_for_all=True) == [one, one]


def _record(score: float | None, raw: float | None) -> ScoreRecord:
    verdict = Verdict(judge="psnr", score=score, raw=raw, provenance=Provenance("psnr", "0", "0"))
    return ScoreRecord("x.png", verdict)


def test_the_mean_leaves_out_abstentions_and_infinite_values() -> None:
    summary = mean_score(
        [_record(50.0, 30.0), _record(100.0, math.inf), _record(None, None), _record(0.0, 10.0)]
    )
    assert summary == {
        "n": 4,
        "scored": 3,
        "abstained": 1,
        "mean_value": 20.0,  # the finite raw values only
        "mean_score": 50.0,  # every score, an identical image's 100 included
        "infinite_values": 1,
    }
    assert mean_score([_record(None, None)])["mean_value"] is None
