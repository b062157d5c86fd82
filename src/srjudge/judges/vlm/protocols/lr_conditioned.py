"""``lr-conditioned`` (RefReward-SR): the LR input is the reference; fidelity and realism are rated apart.

The score is ``fidelity_weight * fidelity + (1 - fidelity_weight) * realism``; a candidate whose
fidelity is under 50 is tagged ``low-fidelity``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srjudge.errors import SrjudgeError
from srjudge.images.checks import check_lr_scale
from srjudge.judges.base import Verdict
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.protocols.base import Outcome, PointwiseProtocol, ProtocolContext, register_protocol
from srjudge.vlm.request import Completion, Part, TextPart

NEEDS_LR = "The lr-conditioned protocol shows the LR input as the reference: give it (--lr)."


@register_protocol(
    "lr-conditioned",
    "RefReward-SR: the LR input is the reference; fidelity and realism rated apart.",
    prompts=("lr-conditioned",),
    options={"fidelity_weight": (float, 0.5)},
    needs_lr=True,
)
class LRConditionedProtocol(PointwiseProtocol):
    def score(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None
    ) -> list[Verdict]:
        if lr is None:
            raise SrjudgeError(NEEDS_LR)
        for image in images:
            check_lr_scale(image, lr, "SR candidate", "LR input")
        return super().score(ctx, images, lr)

    def request(self, ctx: ProtocolContext, image: np.ndarray, lr: np.ndarray | None) -> Sequence[Part]:
        if lr is None:
            raise SrjudgeError(NEEDS_LR)
        template = ctx.template
        return [
            TextPart(template.user_before),
            ctx.image(lr),
            TextPart(template.user_between),
            ctx.image(image),
            TextPart(template.render()),
        ]

    def parse(self, ctx: ProtocolContext, completion: Completion) -> dict[str, Any]:
        obj = parsing.extract_json_object(completion.text)
        return {
            "fidelity": parsing.number_field(obj, "fidelity", 0, 100),
            "realism": parsing.number_field(obj, "realism", 0, 100),
            "reason": parsing.string_field(obj, "reason", required=False),
            "confidence": parsing.number_field(obj, "confidence", 0, 1),
        }

    def verdict(self, ctx: ProtocolContext, outcome: Outcome) -> Verdict:
        if not outcome.readings:
            return ctx.abstain(outcome, "no LR-conditioned rating could be read")
        w = ctx.cfg.fidelity_weight
        fidelity = float(np.mean([r["fidelity"] for r in outcome.readings]))
        realism = float(np.mean([r["realism"] for r in outcome.readings]))
        score = w * fidelity + (1.0 - w) * realism
        return ctx.verdict(
            outcome.completions,
            score=score,
            raw=score,
            confidence=float(np.mean([r["confidence"] for r in outcome.readings])),
            tags=("low-fidelity",) if fidelity < 50 else (),
            rationale=f"fidelity {fidelity:.0f}, realism {realism:.0f}: {outcome.readings[0]['reason']}",
            components={"fidelity": fidelity, "realism": realism, "samples": float(len(outcome.readings))},
        )
