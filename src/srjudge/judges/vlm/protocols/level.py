"""``level`` (Q-Align): the expected level from the probabilities of the five level words.

The model is asked for one word (excellent, good, fair, poor, bad); the distribution over those words
at the answer's first token gives an expected level 1-5, mapped to 0-100. Continuous and stable: the
default protocol for ranking. Without logprobs the answer word counts as certain.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

from srjudge.judges.base import Verdict
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.parsing import LEVELS
from srjudge.judges.vlm.protocols.base import (
    Builder,
    Outcome,
    PointwiseProtocol,
    ProtocolContext,
    register_protocol,
)
from srjudge.vlm.prompts import PromptTemplate
from srjudge.vlm.request import ChatRequest, Completion, GenerationParams, Part, TextPart


def level_params(ctx: ProtocolContext) -> GenerationParams:
    """A three-token answer with the top 20 logprobs of its first token."""
    return ctx.params(max_tokens=3, top_logprobs=20)


def parse_level(completion: Completion) -> dict[str, float]:
    """Level word -> probability: from the first token's logprobs, else the answer word alone."""
    if completion.logprobs:
        return parsing.word_distribution(completion.logprobs[0].top, LEVELS)
    word = parsing.first_word(completion.text, LEVELS)
    return {w: 1.0 if w == word else 0.0 for w in LEVELS}


def ask_levels(ctx: ProtocolContext, builders: Sequence[Builder]) -> list[Outcome]:
    """Run level questions; a backend that reads next-token probabilities directly is asked for them."""
    direct = ctx.backend.has_logits
    return ctx.run(builders, parse_level, next_token_words=LEVELS if direct else None)


def level_verdict(
    ctx: ProtocolContext, outcome: Outcome, extra_tags: Sequence[str] = (), note: str = ""
) -> Verdict:
    """The verdict from level distributions: mean expected level, most likely word, entropy as confidence."""
    if not outcome.readings:
        return ctx.abstain(outcome, "no level could be read")
    dists: list[dict[str, float]] = outcome.readings
    mean = {w: float(np.mean([d[w] for d in dists])) for w in LEVELS}
    levels = [parsing.expected_level(d) for d in dists]
    level = float(np.mean(levels))
    from_logprobs = any(c.logprobs for c in outcome.completions)
    spread = statistics.pstdev(levels) * 25.0 if len(levels) > 1 else 0.0
    top = max(mean, key=lambda w: mean[w])
    source = "level-token probabilities" if from_logprobs else "the answer word (no logprobs returned)"
    return ctx.verdict(
        outcome.completions,
        score=parsing.level_to_score(level),
        raw=level,
        confidence=1.0 - parsing.normalised_entropy(mean),
        tags=(top, *extra_tags),
        rationale=f"expected level {level:.2f}/5 from {source}; most likely '{top}' ({mean[top]:.2f}){note}",
        components={
            **{f"p_{w}": mean[w] for w in LEVELS},
            "spread": spread,
            "samples": float(len(levels)),
        },
    )


@register_protocol(
    "level",
    "Q-Align (default): expected level from the probabilities of excellent/good/fair/poor/bad.",
    prompts=("level",),
)
class LevelProtocol(PointwiseProtocol):
    def request(self, ctx: ProtocolContext, image: np.ndarray, lr: np.ndarray | None) -> Sequence[Part]:
        return [ctx.image(image), TextPart(ctx.template.render())]

    def params(self, ctx: ProtocolContext) -> GenerationParams:
        return level_params(ctx)

    def parse(self, ctx: ProtocolContext, completion: Completion) -> dict[str, float]:
        return parse_level(completion)

    def ask(self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None) -> list[Outcome]:
        params = self.params(ctx)
        return ask_levels(
            ctx, [ctx.builder(ctx.template, self.request(ctx, image, lr), params) for image in images]
        )

    def verdict(self, ctx: ProtocolContext, outcome: Outcome) -> Verdict:
        return level_verdict(ctx, outcome)


def level_request(ctx: ProtocolContext, image: np.ndarray, template: PromptTemplate) -> ChatRequest:
    """The first attempt of the level question about one image (for diagnostics such as the logit lens)."""
    return ctx.request(template, [ctx.image(image), TextPart(template.render())], level_params(ctx), 0, 0)
