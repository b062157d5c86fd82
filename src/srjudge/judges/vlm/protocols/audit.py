"""``audit`` (face-SR paper): a score 0-100, tags from a fixed vocabulary, a reason and a confidence.

Sampled answers are averaged; a tag is kept when at least half of the parsed samples give it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from srjudge.judges.base import Verdict
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.protocols.base import Outcome, PointwiseProtocol, ProtocolContext, register_protocol
from srjudge.vlm.request import Completion, Part, TextPart


@register_protocol(
    "audit",
    "Face-SR paper: score 0-100, tags from a fixed vocabulary, a reason, a confidence.",
    prompts=("audit",),
)
class AuditProtocol(PointwiseProtocol):
    def request(self, ctx: ProtocolContext, image: np.ndarray, lr: np.ndarray | None) -> Sequence[Part]:
        return [ctx.image(image), TextPart(ctx.template.render())]

    def parse(self, ctx: ProtocolContext, completion: Completion) -> dict[str, Any]:
        obj = parsing.extract_json_object(completion.text)
        return {
            "score": parsing.number_field(obj, "score", 0, 100),
            "tags": parsing.tags_field(obj, ctx.template.tags_vocabulary),
            "reason": parsing.string_field(obj, "reason", required=False),
            "confidence": parsing.number_field(obj, "confidence", 0, 1),
        }

    def verdict(self, ctx: ProtocolContext, outcome: Outcome) -> Verdict:
        if not outcome.readings:
            return ctx.abstain(outcome, "no audit could be read")
        scores = [r["score"] for r in outcome.readings]
        tag_votes = Counter(t for r in outcome.readings for t in r["tags"])
        tags = tuple(t for t, n in tag_votes.items() if n * 2 >= len(outcome.readings))
        return ctx.verdict(
            outcome.completions,
            score=float(np.mean(scores)),
            raw=float(np.mean(scores)),
            confidence=float(np.mean([r["confidence"] for r in outcome.readings])),
            tags=tags,
            rationale=outcome.readings[0]["reason"],
            components={
                "spread": statistics.pstdev(scores) if len(scores) > 1 else 0.0,
                "samples": float(len(scores)),
            },
        )
