"""``perceive-infer`` (BIQA-reasoning paper): describe content and distortions, then infer the level.

Step 1 (prompt ``perceive``) asks for the content and each visible distortion with its severity;
step 2 (prompt ``infer``, no image) infers the level from that description alone, scored as in
``level``. A severe distortion with a high level, or none with a low one, is a contradiction: it is
tagged and halves the confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from srjudge.judges.base import Verdict
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.parsing import ParseError
from srjudge.judges.vlm.protocols.base import Builder, ProtocolContext, VLMProtocol, register_protocol
from srjudge.judges.vlm.protocols.level import ask_levels, level_params, level_verdict
from srjudge.vlm.prompts import PROMPTS, PromptTemplate
from srjudge.vlm.request import Completion, TextPart

SEVERITY = {"slight": 1, "moderate": 2, "severe": 3}


def parse_perception(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Read a perceive answer: (content, ((type, severity), ...)); ParseError where the protocol retries."""
    obj = parsing.extract_json_object(text)
    content = parsing.string_field(obj, "content")
    raw = obj.get("distortions", [])
    if not isinstance(raw, list):
        raise ParseError("field 'distortions' is not a list")
    distortions = []
    for d in raw:
        if not isinstance(d, dict):
            raise ParseError(f"distortion {d!r} is not an object")
        severity = parsing.string_field(d, "severity").lower()
        if severity not in SEVERITY:
            raise ParseError(f"severity {severity!r} is not slight, moderate or severe")
        distortions.append((parsing.string_field(d, "type"), severity))
    return content, tuple(distortions)


def infer_prompt_text(
    content: str, distortions: Sequence[tuple[str, str]], template: PromptTemplate | None = None
) -> str:
    """The infer step's prompt for a perceived (content, distortions), as the protocol sends it."""
    listing = "; ".join(f"{t} ({s})" for t, s in distortions) or "none visible"
    return (template or PROMPTS.get("infer")).render(content=content, distortions=listing)


@register_protocol(
    "perceive-infer",
    "BIQA-reasoning paper: describe content and distortions, then infer the level from the "
    "description alone; contradictions between the two are flagged.",
    prompts=("perceive", "infer"),
)
class PerceiveInferProtocol(VLMProtocol):
    def score(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None
    ) -> list[Verdict]:
        perceive = ctx.template
        infer = ctx.templates["infer"]
        params = ctx.params(json_schema=perceive.schema)

        def parse(c: Completion) -> dict[str, Any]:
            content, distortions = parse_perception(c.text)
            return {"content": content, "distortions": list(distortions)}

        builders = [
            ctx.builder(perceive, [ctx.image(img), TextPart(perceive.render())], params) for img in images
        ]
        perceived = ctx.run(builders, parse, samples=1)
        infer_params = level_params(ctx)
        infer_builders: list[Builder] = []
        index: list[int] = []
        for i, outcome in enumerate(perceived):
            if outcome.readings:
                reading = outcome.readings[0]
                text = infer_prompt_text(reading["content"], reading["distortions"], infer)
                infer_builders.append(ctx.builder(infer, [TextPart(text)], infer_params))
                index.append(i)
        inferred = dict(zip(index, ask_levels(ctx, infer_builders), strict=True))
        verdicts = []
        for i, outcome in enumerate(perceived):
            if i not in inferred:
                verdicts.append(ctx.abstain(outcome, "no description could be read"))
                continue
            reading = outcome.readings[0]
            second = inferred[i]
            second.completions[:0] = outcome.completions
            worst = max((SEVERITY[s] for _, s in reading["distortions"]), default=0)
            listing = "; ".join(f"{t} ({s})" for t, s in reading["distortions"]) or "no visible distortions"
            verdict = level_verdict(
                ctx, second, note=f". Perceived: {reading['content']} Distortions: {listing}"
            )
            if verdict.score is None:
                verdicts.append(verdict)
                continue
            level = verdict.raw or 0.0
            contradiction = (worst >= 3 and level >= 3.5) or (worst <= 1 and level <= 2.0)
            distortion_tags = tuple(t for t, s in reading["distortions"] if SEVERITY[s] >= 2)
            tags = (*verdict.tags, *distortion_tags, *(("contradiction",) if contradiction else ()))
            confidence = (verdict.confidence or 0.0) * (0.5 if contradiction else 1.0)
            verdicts.append(
                replace(
                    verdict,
                    tags=tags,
                    confidence=confidence,
                    components={
                        **verdict.components,
                        "worst_severity": float(worst),
                        "contradiction": 1.0 if contradiction else 0.0,
                    },
                )
            )
        return verdicts
