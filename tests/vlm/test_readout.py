"""The VLM read-out (srjudge.vlm.readout) with replayed answers."""

from __future__ import annotations

import pytest

from srjudge.vlm.answers import ParseError
from srjudge.vlm.backends import CachedBackend
from srjudge.vlm.prompts import PROMPTS
from srjudge.vlm.readout import READOUT_PROMPT, ReadoutSettings, parse_readout, read_out, vote
from srjudge.vlm.request import ChatRequest, Completion, TextPart
from tests.vlm.helpers import _image_index, _images
from vlm_replay import ReplayBackend


def test_the_builtin_prompt_is_the_readout_judge_prompt() -> None:
    """Reader and readout judge ask the same versioned question, so they share cached answers."""
    from srjudge.judges.vlm.protocols import PROTOCOLS

    assert READOUT_PROMPT is PROMPTS.get("readout") and READOUT_PROMPT.ref == "readout@1"
    assert "readout" in PROTOCOLS.get("readout").summary()["prompts"]


def test_parse_readout_reads_json_in_prose_and_rejects_bad_answers() -> None:
    assert parse_readout('{"text": " a 3 ", "confidence": 0.5}') == ("A3", 0.5)
    assert parse_readout('Sure: ```json\n{"text": "x", "confidence": "0.9"}\n```') == ("X", 0.9)
    assert parse_readout('{"confidence": 1}') == ("", 1.0)
    for bad, reason in [
        ("no json here", "no JSON object"),
        ('{"text": "A"}', "missing field 'confidence'"),
        ('{"text": "A", "confidence": 2}', "outside"),
        ('{"text": 3, "confidence": 0.5}', "not a string"),
        ("I'm sorry, I cannot help with that", "refused"),
        ('{"text": "A", "confidence": 0.5', "truncated"),
    ]:
        with pytest.raises(ParseError, match=reason):
            parse_readout(bad)


def test_vote_weights_by_confidence() -> None:
    assert vote([]) is None
    assert vote([("A", 0.9), ("B", 0.5), ("B", 0.3)]) == ("A", 0.9)
    assert vote([("A", 0.2), ("B", 0.5), ("B", 0.3)]) == ("B", pytest.approx(0.4))


def test_read_out_samples_reasks_with_the_reminder_and_says_why_nothing_was_read() -> None:
    images = _images(3)
    answers = {
        0: ['{"text": "7", "confidence": 0.8}'],
        1: ["garbage", '{"text": "b", "confidence": 0.6}'],  # read on the re-ask
        2: ["garbage", "still garbage", "more garbage"],
    }
    seen: dict[int, int] = {}

    def rule(request: ChatRequest) -> str | Completion:
        i = _image_index(request, images)
        k = seen.get(i, 0)
        seen[i] = k + 1
        if i == 0 and request.sample_index == 1:
            return Completion(text="", model="recorded", refusal="not allowed")
        return answers[i][min(k, len(answers[i]) - 1)]

    backend = ReplayBackend(rule)
    settings = ReadoutSettings(samples=2, retries=2, seed=5, temperature=0.5)
    outcomes = read_out(CachedBackend(backend, None), images, settings=settings)
    assert outcomes[0].answer == ("7", 0.8)
    assert outcomes[1].answer == ("B", 0.6)
    assert outcomes[2].answer is None and outcomes[2].reason.startswith("no JSON object in the answer")
    assert "the model refused: 'not allowed'" in outcomes[0].errors
    first = backend.requests[0]
    assert first.template == "readout@1" and first.sample_index == 0 and first.params.seed == 5
    assert first.params.max_tokens == 64 and first.params.json_schema == READOUT_PROMPT.schema
    assert first.params.schema_name == "readout" and first.messages[0].role == "system"
    assert [r.sample_index for r in backend.requests[:6]] == [0, 1, 0, 1, 0, 1]  # one batch, images in order
    retried = [r for r in backend.requests if r.template == "readout@1+retry1"]
    assert retried and all(r.params.seed == 5 + r.sample_index for r in retried)
    hint = retried[0].messages[-1].parts[-1]
    assert isinstance(hint, TextPart) and hint.text == "\n" + READOUT_PROMPT.retry_hint
    assert len(outcomes[2].completions) == 6  # 2 samples x (1 + 2 re-asks)
