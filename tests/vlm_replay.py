"""A replay backend for protocol tests: it answers with recorded replies chosen by a rule.

The protocol logic (votes in both orders, retries with a format reminder, abstention,
consensus of readings) is deterministic given the model's answers; replaying recorded answers
tests that logic exactly. The real backends are tested against a real tiny model and a real
HTTP server elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from srjudge.vlm.backends.base import ResultCallback, VLMBackend
from srjudge.vlm.request import ChatRequest, Completion, TokenLogprobs, Usage

Rule = Callable[[ChatRequest], str | Completion]


class ReplayBackend(VLMBackend):
    kind = "replay"

    def __init__(self, rule: Rule, model: str = "recorded") -> None:
        self.rule = rule
        self.model = model
        self.requests: list[ChatRequest] = []

    @property
    def model_id(self) -> str:
        return self.model

    def complete(
        self, requests: Sequence[ChatRequest], on_result: ResultCallback | None = None
    ) -> list[Completion]:
        out = []
        for index, request in enumerate(requests):
            self.requests.append(request)
            answer = self.rule(request)
            if isinstance(answer, str):
                answer = Completion(text=answer, model=self.model, usage=Usage(100, 10), latency_s=0.01)
            out.append(answer)
            if on_result is not None:
                on_result(index, answer)
        return out


def with_logprobs(top: dict[str, float], text: str = "") -> Completion:
    return Completion(
        text=text or max(top, key=lambda t: top[t]).strip(),
        model="recorded",
        logprobs=(TokenLogprobs(token=max(top, key=lambda t: top[t]), logprob=max(top.values()), top=top),),
        usage=Usage(120, 1),
        latency_s=0.02,
    )
