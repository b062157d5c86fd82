"""The ``readout`` judge: its formula on hand-built distributions, ranking real glyphs with the bundled
classifier, abstention when the reader reads nothing or reads with confidence 0, spec errors."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import srjudge.judges.readout  # noqa: F401  (registers the judge until judges/__init__ imports it)
from srjudge.errors import SpecError, SrjudgeError, UnknownNameError
from srjudge.judges import create_judge
from srjudge.judges.readout import ReadoutJudge, readout_scores
from srjudge.readers.base import Reader, Reading
from srjudge.testbed.glyphs import FONT_FACES, Jitter, draw_glyph, sample_glyph_params
from srjudge.testbed.severity import degrade_glyph
from tests.judges.helpers import _jittered


def _plain(char: str, face: int = 0) -> np.ndarray:
    return draw_glyph(char, FONT_FACES[face], sample_glyph_params(np.random.default_rng(0), Jitter.none()))


def test_formula_on_hand_built_distributions() -> None:
    """score_i = (w_c <d_i, c> + w_lr <d_i, d_lr>) / (w_c + w_lr), c the confidence-weighted consensus."""
    # One-hot x confidence readings over 3 classes: class 0 (0.8), class 0 (0.6), class 1 (0.5).
    dists = np.array([[0.8, 0.0, 0.0], [0.6, 0.0, 0.0], [0.0, 0.5, 0.0]])
    lr = np.array([0.9, 0.0, 0.0])
    parts = readout_scores(dists, [0.8, 0.6, 0.5], lr)
    consensus = np.array([1.4, 0.5, 0.0]) / 1.9
    assert parts.consensus == pytest.approx(consensus)
    expected = [
        0.5 * 0.8 * 1.4 / 1.9 + 0.5 * 0.8 * 0.9,
        0.5 * 0.6 * 1.4 / 1.9 + 0.5 * 0.6 * 0.9,
        0.5 * 0.5 * 0.5 / 1.9,
    ]
    assert parts.scores == pytest.approx(expected)
    # Agreeing with consensus and LR outranks disagreeing; equal readings tie exactly.
    assert parts.scores[0] > parts.scores[1] > parts.scores[2]
    same = readout_scores(
        np.array([[0.7, 0.3], [0.7, 0.3], [0.1, 0.9]]), [0.7, 0.7, 0.9], np.array([0.6, 0.4])
    )
    assert same.scores[0] == same.scores[1]
    # Weights: LR only, and no LR reading (term dropped).
    lr_only = readout_scores(dists, [0.8, 0.6, 0.5], lr, w_consensus=0.0, w_lr=1.0)
    assert lr_only.scores == pytest.approx([0.72, 0.54, 0.0])
    no_lr = readout_scores(dists, [0.8, 0.6, 0.5], None)
    assert no_lr.agree_lr is None and no_lr.scores == pytest.approx(dists @ consensus)
    # A candidate that read nothing (zero row) gets NaN and does not enter the consensus.
    unread = readout_scores(np.vstack([dists, np.zeros(3)]), [0.8, 0.6, 0.5, 0.0], lr)
    assert np.isnan(unread.scores[3]) and unread.consensus == pytest.approx(consensus)


def test_classifier_readout_ranks_the_right_symbol_first() -> None:
    """Given the LR of a '3', two '3' samples outrank an '8'; identical samples tie; tags say why."""
    three, three_b, eight = _jittered("3", 1), _jittered("3", 2), _jittered("8", 3)
    lr, _ = degrade_glyph(three, severity=1, seed=5)
    judge = create_judge("readout:classifier")
    assert isinstance(judge, ReadoutJudge) and judge.spec == "readout:classifier"
    ranking = judge.rank([eight, three, three_b, three], lr=lr)
    assert set(ranking.order()[:3]) == {1, 2, 3} and ranking.order()[3] == 0
    verdicts = judge.score_many([eight, three, three_b, three], lr=lr)
    assert verdicts[1].score == verdicts[3].score
    assert "reads '3'" in verdicts[1].rationale and "consensus '3'" in verdicts[1].rationale
    assert "LR '3'" in verdicts[1].rationale
    assert verdicts[0].tags[0] == "reads:8" and "semantic-change" in verdicts[0].tags
    assert {"agree_consensus", "agree_lr", "reader_confidence"} <= set(verdicts[1].components)
    json.dumps(verdicts[0].to_dict())


def test_readout_abstains_when_the_reader_reads_nothing() -> None:
    """OCR reads nothing on blank paper: that candidate abstains with the reader's reason."""
    seven = draw_glyph(
        "7", FONT_FACES[0], sample_glyph_params(np.random.default_rng(0), Jitter.none()), size=64
    )
    blank = np.ones((64, 64, 3), np.float32)
    lr = np.clip(seven[::4, ::4], 0, 1)  # a crude 16x16 LR: the judge only needs an integer scale
    verdicts = create_judge("readout:ocr").score_many([seven, blank], lr=lr)
    assert verdicts[1].abstained and "read nothing" in (verdicts[1].abstain_reason or "")
    assert not verdicts[0].abstained and "reads '7'" in verdicts[0].rationale


def test_readout_spec_and_input_errors() -> None:
    """A reader must be named, weights must be valid, the LR is required, names get suggestions."""
    with pytest.raises(SpecError, match="names its reader"):
        create_judge("readout")
    with pytest.raises(SpecError, match="w_lr"):
        create_judge("readout:classifier,w_lr=-1")
    with pytest.raises(SpecError, match="not a valid float"):
        create_judge("readout:classifier,w_lr=abc")
    with pytest.raises(UnknownNameError, match="Did you mean: classifier"):
        create_judge("readout:clasifier")
    with pytest.raises(SrjudgeError, match="--lr"):
        create_judge("readout:classifier").score(_plain("3"))
    assert create_judge("readout:referee,w_lr=0.7").spec == "readout:referee,w_lr=0.7"


def test_vlm_readout_abstains_on_a_garbage_model(tiny_vlm: Path, tmp_path: Path) -> None:
    """readout:vlm,model=... builds the VLM reader (hf by default); garbage answers abstain with a reason."""
    spec = f"readout:vlm,model={tiny_vlm},retries=0,cache={tmp_path / 'c.sqlite'}"
    judge = create_judge(spec)
    assert judge.spec.startswith("readout:vlm,backend=hf,model=")
    assert create_judge(judge.spec).spec == judge.spec
    three = _jittered("3", 1)
    lr, _ = degrade_glyph(three, severity=0, seed=5)
    verdicts = judge.score_many([three, _jittered("3", 2)], lr=lr)
    assert all(v.abstained and "could not be read" in (v.abstain_reason or "") for v in verdicts)
    assert all("LR term dropped" in v.rationale for v in verdicts)


class _FixedReader(Reader):
    """A hand-made reader: returns the given readings (candidates first, then the LR), in order."""

    spec = "fixed"

    def __init__(self, readings: list[Reading]) -> None:
        self.config: dict[str, str] = {}
        self.readings = readings

    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        assert len(images) == len(self.readings)
        return list(self.readings)


def test_readout_abstains_on_a_label_read_with_confidence_zero() -> None:
    """A label with confidence 0 has no mass (its score is NaN): the judge abstains, trust gets no NaN."""
    three = _plain("3", face=0)
    lr, _ = degrade_glyph(three, severity=0, seed=1)
    readings = [Reading("3", 0.9), Reading("3", 0.0), Reading("8", 0.6), Reading("3", 0.0)]
    judge = ReadoutJudge(_FixedReader(readings))
    verdicts = judge.score_many([three, three, three], lr=lr)
    assert verdicts[1].abstained and verdicts[1].score is None and verdicts[1].raw is None
    assert "confidence 0" in (verdicts[1].abstain_reason or "")
    for v in (verdicts[0], verdicts[2]):
        assert v.score is not None and math.isfinite(v.score)
    assert verdicts[0].score is not None and verdicts[2].score is not None
    assert verdicts[0].score > verdicts[2].score
    assert "LR term dropped" in verdicts[0].rationale  # the LR reading has no mass either

    trust = create_judge("trust:readout=classifier")
    trust.readout = judge  # type: ignore[attr-defined]
    scored = trust.score_many([three, three, three], lr=lr)
    assert "readout" not in scored[1].components and scored[1].score is not None
    assert all(v.score is not None and math.isfinite(v.score) for v in scored)
    assert 0.0 <= scored[0].components["readout"] <= 1.0
