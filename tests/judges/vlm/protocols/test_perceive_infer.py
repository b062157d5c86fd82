"""The perceive-infer protocol on recorded replies: contradictions between description and rating."""

from __future__ import annotations

import json
import math
from pathlib import Path

from srjudge.vlm.request import ChatRequest, Completion
from tests.judges.vlm.helpers import brightness, gray, judge, prompt_text
from vlm_replay import with_logprobs


def test_perceive_then_infer_flags_contradictions(tmp_path: Path) -> None:
    description = json.dumps({"content": "a cat", "distortions": [{"type": "blur", "severity": "severe"}]})

    def rule(request: ChatRequest) -> str | Completion:
        if request.template.startswith("perceive"):
            return description
        assert "blur (severe)" in prompt_text(request) and not brightness(request)  # text only
        return with_logprobs({" excellent": math.log(0.9), " good": math.log(0.1)})

    verdict = judge("perceive-infer", rule, tmp_path).score(gray(0.5))
    assert "contradiction" in verdict.tags and "blur" in verdict.tags
    assert verdict.components["contradiction"] == 1.0 and "a cat" in verdict.rationale
    assert verdict.accounting["calls"] == 2
