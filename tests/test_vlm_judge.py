"""VLM judge protocols on recorded replies: scores, votes, retries, abstention, cache, accounting."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from srjudge.errors import SpecError, SrjudgeError
from srjudge.judges import create_judge
from srjudge.judges.vlm import VLMJudge, VLMJudgeConfig, config_from_spec
from srjudge.judges.vlm.aggregate import bradley_terry, copeland, tournament_pairs
from srjudge.judges.vlm.stability import flip_rate, mean_spread
from srjudge.spec import parse_spec
from srjudge.vlm.request import ChatRequest, Completion, ImagePart, TextPart
from vlm_replay import ReplayBackend, with_logprobs


def gray(level: float, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), level, dtype=np.float32)


def brightness(request: ChatRequest) -> list[float]:
    return [float(p.image.mean()) for m in request.messages for p in m.parts if isinstance(p, ImagePart)]


def prompt_text(request: ChatRequest) -> str:
    return " ".join(p.text for m in request.messages for p in m.parts if isinstance(p, TextPart))


def judge(protocol: str, rule, tmp_path: Path, **options) -> VLMJudge:  # type: ignore[no-untyped-def]
    config = VLMJudgeConfig(
        backend="replay",
        backend_options={"model": "recorded"},
        protocol=protocol,
        cache=str(tmp_path / "cache.sqlite"),
        **options,
    )
    return VLMJudge(config, backend=ReplayBackend(rule))


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


def test_lr_conditioned_shows_the_lr_first(tmp_path: Path) -> None:
    reply = '{"fidelity": 40, "realism": 90, "reason": "sharp but the text changed", "confidence": 0.6}'
    j = judge("lr-conditioned", lambda r: reply, tmp_path, fidelity_weight=0.75)
    lr = gray(0.2, 8)
    verdict = j.score(gray(0.7, 32), lr=lr)
    assert verdict.score == pytest.approx(0.75 * 40 + 0.25 * 90) and "low-fidelity" in verdict.tags
    parts = j.backend.requests[0].messages[-1].parts  # type: ignore[attr-defined]
    assert isinstance(parts[1], ImagePart) and parts[1].image.shape == (8, 8, 3)
    with pytest.raises(SrjudgeError, match="--lr"):
        j.score(gray(0.7))


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


def test_instability_measures() -> None:
    assert flip_rate([["good", "good"], ["good", "fair"], ["bad", "bad", "bad"], ["fair"]]) == pytest.approx(
        1 / 3
    )
    assert mean_spread([[50, 50], [40, 60]]) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        flip_rate([["good"]])


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
