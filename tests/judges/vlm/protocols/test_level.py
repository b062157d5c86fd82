"""The level protocol on recorded replies: expectation over the level words, the cache, no logprobs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from srjudge.vlm.request import ChatRequest, Completion
from tests.judges.vlm.helpers import brightness, gray, judge
from vlm_replay import with_logprobs


def test_level_scores_from_token_probabilities_and_the_cache(tmp_path: Path) -> None:
    def rule(request: ChatRequest) -> Completion:
        bright = brightness(request)[0]
        if bright > 0.5:
            return with_logprobs(
                {" excellent": math.log(0.6), " good": math.log(0.3), " fair": math.log(0.1)}
            )
        return with_logprobs({" poor": math.log(0.5), " bad": math.log(0.5)})

    j = judge("level", rule, tmp_path)
    good, bad = j.score_many([gray(0.8), gray(0.2)])
    assert good.raw == pytest.approx(0.6 * 5 + 0.3 * 4 + 0.1 * 3)
    assert good.score == pytest.approx((good.raw - 1) * 25)
    assert bad.raw == pytest.approx(1.5) and good.tags[0] == "excellent" and bad.score < good.score
    assert 0 < good.confidence < 1 and good.components["p_excellent"] == pytest.approx(0.6)
    assert good.accounting["calls"] == 1 and good.accounting["prompt_tokens"] == 120
    request = j.backend.requests[0]  # type: ignore[attr-defined]
    assert request.params.top_logprobs == 20 and request.template == "level@1"
    # A re-run is answered from the persistent cache: no new model calls.
    again = judge("level", rule, tmp_path)
    assert [v.score for v in again.score_many([gray(0.8), gray(0.2)])] == [good.score, bad.score]
    assert again.backend.requests == [] and again.stats.cache_hits == 2  # type: ignore[attr-defined]
    json.dumps(good.to_dict())


def test_level_without_logprobs_uses_the_answer_word_and_says_so(tmp_path: Path) -> None:
    verdict = judge("level", lambda r: "Fair.", tmp_path).score(gray(0.5))
    assert verdict.raw == 3.0 and "no logprobs" in verdict.rationale
