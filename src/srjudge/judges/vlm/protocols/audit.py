"""``audit`` (face-SR paper): a score 0-100, tags from a fixed vocabulary, a reason and a confidence.

The request is the paper's gatekeeper input (section 3.3): the LR input (when given), the SR output,
crops of the faces in the SR output (with the same faces cut from the LR upscaled with bicubic when
there are fewer than three) and a compact QA summary: identity cosine, NIQE, LPIPS against the HR
reference when one is given, the ``trust`` judge's artifact flags (:mod:`srjudge.judges.vlm.qa_summary`).
Every image goes through :meth:`~ProtocolContext.image` (``max_side``); labels sit between the images.

Sampled answers are averaged; a tag is kept when at least half of the parsed samples give it. The
tag ``identity-drift`` (the model saw another person's face) is in the vocabulary, and the audit
policy treats it as blocking. The summary's numbers are recorded in the verdict's components
(``qa_faces``, ``qa_identity``, ``qa_niqe``, ``qa_lpips``) and, in one line, in its rationale, also
when the verdict abstains.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from srjudge.judges.base import Verdict
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.protocols.base import Outcome, PointwiseProtocol, ProtocolContext, register_protocol
from srjudge.judges.vlm.qa_summary import AuditEvidence, qa_evidence
from srjudge.vlm.prompts import PromptTemplate
from srjudge.vlm.request import Completion, Part, TextPart

LABELS = {
    "user_single": "The super-resolved output to audit:",
    "user_faces": "Crops of the faces in the super-resolved output, largest face first:",
    "face_sr": "Face {face}, super-resolved output:",
    "face_lr": "Face {face}, LR input, bicubic:",
}
"""Labels a user's ``prompt=`` file may leave out (the built-in prompt has its own)."""


def _label(template: PromptTemplate, key: str, **fields: Any) -> str:
    text = template.extra.get(key)
    return (text if isinstance(text, str) else LABELS[key]).format(**fields)


def audit_parts(
    ctx: ProtocolContext, image: np.ndarray, lr: np.ndarray | None, evidence: AuditEvidence
) -> list[Part]:
    """The user turn: LR, SR, the labelled face crops, then the QA summary with the instructions."""
    template = ctx.template
    parts: list[Part] = []
    if lr is not None:
        parts += [TextPart(template.user_before), ctx.image(lr), TextPart(template.user_between)]
    else:
        parts.append(TextPart(_label(template, "user_single")))
    parts.append(ctx.image(image))
    if evidence.crops:
        parts.append(TextPart(_label(template, "user_faces")))
    for crop in evidence.crops:
        parts += [TextPart(_label(template, f"face_{crop.source}", face=crop.face)), ctx.image(crop.image)]
    summary = evidence.summary.to_text()
    if "{qa_summary}" not in template.user:
        parts.append(TextPart(summary))
    parts.append(TextPart(template.render(qa_summary=summary)))
    return [p for p in parts if not isinstance(p, TextPart) or p.text]


@register_protocol(
    "audit",
    "Face-SR paper: LR, SR, face crops and a QA summary in; score 0-100, tags from a fixed vocabulary, "
    "a reason, a confidence out.",
    prompts=("audit",),
)
class AuditProtocol(PointwiseProtocol):
    def score(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None
    ) -> list[Verdict]:
        return self.score_with_hr(ctx, images, lr, None)

    def score_with_hr(
        self,
        ctx: ProtocolContext,
        images: Sequence[np.ndarray],
        lr: np.ndarray | None,
        hr: np.ndarray | None,
    ) -> list[Verdict]:
        """As :meth:`score`, with the HR reference for the summary's identity and LPIPS lines."""
        evidence = [qa_evidence(image, lr=lr, hr=hr) for image in images]
        params = self.params(ctx)
        builders = [
            ctx.builder(ctx.template, audit_parts(ctx, image, lr, ev), params)
            for image, ev in zip(images, evidence, strict=True)
        ]
        outcomes = ctx.run(builders, lambda c: self.parse(ctx, c))
        return [
            self.with_evidence(self.verdict(ctx, outcome), ev)
            for outcome, ev in zip(outcomes, evidence, strict=True)
        ]

    def request(self, ctx: ProtocolContext, image: np.ndarray, lr: np.ndarray | None) -> Sequence[Part]:
        return audit_parts(ctx, image, lr, qa_evidence(image, lr=lr))

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

    @staticmethod
    def with_evidence(verdict: Verdict, evidence: AuditEvidence) -> Verdict:
        """The verdict with the QA summary's numbers in its components and one line in its rationale."""
        qa = f"QA: {evidence.summary.brief()}"
        rationale = f"{verdict.rationale} [{qa}]" if verdict.rationale else qa
        return replace(
            verdict, components={**verdict.components, **evidence.summary.components()}, rationale=rationale
        )
