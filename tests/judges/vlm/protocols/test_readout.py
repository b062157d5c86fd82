"""The readout protocol on recorded replies: agreement with the consensus and the LR."""

from __future__ import annotations

import json
from pathlib import Path

from srjudge.vlm.request import ChatRequest
from tests.judges.vlm.helpers import brightness, gray, judge


def test_readout_scores_agreement_with_consensus_and_lr(tmp_path: Path) -> None:
    readings = {0.1: "3", 0.2: "3", 0.3: "8", 0.4: " 3 ", 0.5: "3"}  # 0.5 is the LR input

    def rule(request: ChatRequest) -> str:
        level = round(brightness(request)[0], 1)
        return json.dumps({"text": readings[level], "confidence": 0.9})

    verdicts = judge("readout", rule, tmp_path).score_many(
        [gray(v) for v in (0.1, 0.2, 0.3, 0.4)], lr=gray(0.5, 8)
    )
    assert [v.score for v in verdicts] == [100.0, 100.0, 0.0, 100.0]
    assert verdicts[2].tags == ("semantic-change",) and "reads '8'" in verdicts[2].rationale
