"""VLMJudge on recorded replies: retries, refusals, samples, cache, accounting, spec, image size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srjudge.errors import SpecError
from srjudge.judges import create_judge
from srjudge.judges.vlm import config_from_spec
from srjudge.spec import parse_spec
from srjudge.vlm.request import ChatRequest, Completion, ImagePart
from tests.judges.vlm.helpers import brightness, gray, judge, prompt_text
from vlm_replay import with_logprobs


def test_unparseable_answers_are_retried_with_a_reminder_then_abstain(tmp_path: Path) -> None:
    good_json = '{"score": 81, "tags": ["ringing"], "reason": "halo", "confidence": 0.7}'

    def rule(request: ChatRequest) -> str:
        return good_json if "+retry1" in request.template else "Looks nice to me!"

    j = judge("audit", rule, tmp_path, retries=2)
    verdict = j.score(gray(0.5))
    assert verdict.score == 81 and verdict.tags == ("ringing",) and verdict.confidence == 0.7
    retry_request = j.backend.requests[1]  # type: ignore[attr-defined]
    assert "could not be read" in prompt_text(retry_request)
    assert retry_request.params.json_schema is not None
    assert verdict.accounting["calls"] == 2

    never = judge("audit", lambda r: '{"score": 81, "tags": ["jpeg"]', tmp_path / "b", retries=1)
    abstained = never.score(gray(0.5))
    assert abstained.score is None and abstained.abstained
    assert "2 attempt(s) failed" in abstained.abstain_reason and "truncated" in abstained.abstain_reason
    ranking = never.rank([gray(0.5), gray(0.6)])
    assert [i.rank for i in ranking.items] == [None, None]


def test_refusals_abstain(tmp_path: Path) -> None:
    refused = Completion(text="", model="recorded", refusal="I can't assist with that.")
    verdict = judge("audit", lambda r: refused, tmp_path, retries=0).score(gray(0.5))
    assert verdict.abstained and "refused" in verdict.abstain_reason


def test_repeated_samples_give_spread(tmp_path: Path) -> None:
    answers = {0: {" good": 0.0}, 1: {" fair": 0.0}, 2: {" good": 0.0}}
    j = judge("level", lambda r: with_logprobs(answers[r.sample_index]), tmp_path, samples=3, temperature=1.0)
    verdict = j.score(gray(0.5))
    assert verdict.components["samples"] == 3 and verdict.components["spread"] > 0
    assert {r.params.seed for r in j.backend.requests} == {0, 1, 2}  # type: ignore[attr-defined]


def test_prompt_version_enters_the_cache_key(tmp_path: Path) -> None:
    custom = tmp_path / "level.json"
    custom.write_text(
        json.dumps({"id": "level", "version": 7, "user": "Rate it: excellent, good, fair, poor or bad."})
    )
    rule = lambda r: with_logprobs({" good": 0.0})  # noqa: E731
    judge("level", rule, tmp_path).score(gray(0.5))
    j2 = judge("level", rule, tmp_path, prompt=str(custom))
    j2.score(gray(0.5))
    assert j2.backend.requests[0].template == "level@7"  # type: ignore[attr-defined]
    assert len(j2.backend.requests) == 1  # type: ignore[attr-defined]  (not answered from level@1's cache)


def test_cost_accounting_with_prices(tmp_path: Path) -> None:
    j = judge("level", lambda r: with_logprobs({" good": 0.0}), tmp_path, price_in=2.5, price_out=10.0)
    verdict = j.score(gray(0.5))
    assert verdict.accounting["cost_usd"] == pytest.approx((120 * 2.5 + 1 * 10.0) / 1e6)
    assert j.summary()["calls"] == 1 and j.summary()["cost_usd"] == pytest.approx(
        verdict.accounting["cost_usd"]
    )


def test_spec_parsing_and_errors() -> None:
    config = config_from_spec(
        parse_spec("vlm:openai,model=gpt-4o,protocol=audit,samples=3,base_url=http://127.0.0.1:9/v1")
    )
    assert config.protocol == "audit" and config.samples == 3
    assert dict(config.backend_options) == {"model": "gpt-4o", "base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(SpecError, match=r"protocl \(did you mean protocol\?\)"):
        create_judge("vlm:openai,model=x,protocl=level")
    with pytest.raises(SpecError, match="needs model"):
        create_judge("vlm:hf")
    with pytest.raises(SpecError, match="name their backend first"):
        create_judge("vlm:gemini,model=x")
    with pytest.raises(SpecError, match="Did you mean: pairwise"):
        create_judge("vlm:openai,model=x,protocol=pairwse")


def test_answers_already_paid_for_survive_a_later_failure(tmp_path: Path) -> None:
    from srjudge.vlm.backends import BackendError

    def rule(request: ChatRequest) -> Completion:
        if brightness(request)[0] < 0.5:
            raise BackendError("HTTP 400: the server refused the second image")
        return with_logprobs({" good": 0.0})

    j = judge("level", rule, tmp_path)
    with pytest.raises(BackendError, match="refused the second image"):
        j.score_many([gray(0.8), gray(0.2)])
    again = judge("level", rule, tmp_path)
    assert again.score(gray(0.8)).accounting["cache_hits"] == 1
    assert again.backend.requests == []  # type: ignore[attr-defined]


def test_large_images_are_downscaled_and_the_verdict_says_so(tmp_path: Path) -> None:
    j = judge("level", lambda r: with_logprobs({" good": 0.0}), tmp_path, max_side=64)
    verdict = j.score(gray(0.5, 200))
    sent = j.backend.requests[0].messages[-1].parts[0]  # type: ignore[attr-defined]
    assert isinstance(sent, ImagePart) and sent.image.shape == (64, 64, 3)
    assert "image sent as 200x200 -> 64x64, max_side=64" in verdict.rationale
    small = j.score(gray(0.5, 32))
    assert "image sent" not in small.rationale


def test_stability_repeats_are_new_draws_not_cache_replays(tmp_path: Path) -> None:
    """``for_repeat(r)`` samples with its own seed: a cached answer of repeat 0 is never reused for r > 0."""

    def rule(request: ChatRequest) -> Completion:
        # A "sampling" model whose answer depends on the request's seed.
        word = " good" if (request.params.seed or 0) < 10_000 else " poor"
        return with_logprobs({word: 0.0})

    j = judge("level", rule, tmp_path, temperature=1.0, seed=0)
    assert j.for_repeat(0) is j
    again = j.for_repeat(1)
    assert again is j.for_repeat(1) and again.stats is j.stats and again.spec == j.spec
    first, second = j.score(gray(0.5)), again.score(gray(0.5))
    seeds = [r.params.seed for r in j.backend.requests]  # type: ignore[attr-defined]
    assert seeds == [0, 10_000]
    assert j.stats.calls == 2 and j.stats.cache_hits == 0
    assert (first.tags[0], second.tags[0]) == ("good", "poor")
    assert create_judge("psnr").for_repeat(3).spec == "psnr"
