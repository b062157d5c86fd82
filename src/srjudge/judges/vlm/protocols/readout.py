"""``readout`` (diffusion-SR selection paper): what text or digits each image shows.

Every candidate, and the LR input when given, is read as :mod:`srjudge.vlm.readout` reads (K samples,
a confidence-weighted majority per image). A candidate scores by agreement with the candidates'
consensus reading and with the LR input's reading; one that reads differently from the LR input is
tagged ``semantic-change``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from srjudge.judges.base import Verdict
from srjudge.judges.vlm.protocols.base import Outcome, PointwiseProtocol, ProtocolContext, register_protocol
from srjudge.vlm.readout import parse_readout, vote
from srjudge.vlm.request import Completion, GenerationParams, Part, TextPart

Reading = tuple[str, float]
"""(text without spaces, upper case; the model's confidence)."""


@register_protocol(
    "readout",
    "Diffusion-SR selection paper: read the text or digits; score by agreement with the "
    "candidates' consensus and the LR input's reading.",
    prompts=("readout",),
)
class ReadoutProtocol(PointwiseProtocol):
    def request(self, ctx: ProtocolContext, image: np.ndarray, lr: np.ndarray | None) -> Sequence[Part]:
        return [ctx.image(image), TextPart(ctx.template.render())]

    def params(self, ctx: ProtocolContext) -> GenerationParams:
        return ctx.params(json_schema=ctx.template.schema, max_tokens=64)

    def parse(self, ctx: ProtocolContext, completion: Completion) -> Reading:
        return parse_readout(completion.text)

    def read(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray]
    ) -> tuple[list[Outcome], list[Reading | None]]:
        """Read every image: its outcome and its majority reading (``None`` when nothing parsed)."""
        outcomes = self.ask(ctx, images, None)
        return outcomes, [vote(o.readings) for o in outcomes]

    def verdict(self, ctx: ProtocolContext, outcome: Outcome) -> Verdict:
        """A candidate read on its own: it agrees with itself (use :meth:`score` for a set)."""
        return self.score_readings(ctx, [outcome], [vote(outcome.readings)], None)[0]

    def score(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None
    ) -> list[Verdict]:
        outcomes, reads = self.read(ctx, [*images, *([lr] if lr is not None else [])])
        lr_read = reads[len(images)] if lr is not None else None
        return self.score_readings(ctx, outcomes[: len(images)], reads[: len(images)], lr_read)

    def score_readings(
        self,
        ctx: ProtocolContext,
        outcomes: Sequence[Outcome],
        reads: Sequence[Reading | None],
        lr_read: Reading | None,
    ) -> list[Verdict]:
        """Verdicts from the candidates' readings: agreement with their consensus and the LR reading."""
        tally: Counter[str] = Counter(r[0] for r in reads if r is not None)
        consensus = max(tally, key=lambda t: tally[t]) if tally else None
        verdicts = []
        for outcome, read in zip(outcomes, reads, strict=True):
            if read is None:
                verdicts.append(ctx.abstain(outcome, "no reading could be parsed"))
                continue
            text, conf = read
            checks = {"consensus": float(text == consensus)}
            if lr_read is not None:
                checks["lr"] = float(text == lr_read[0])
            agreement = float(np.mean(list(checks.values())))
            tags = ("semantic-change",) if checks.get("lr", 1.0) == 0.0 else ()
            lr_note = f"; the LR input reads '{lr_read[0]}'" if lr_read is not None else ""
            verdicts.append(
                ctx.verdict(
                    outcome.completions,
                    score=100.0 * agreement,
                    raw=agreement,
                    confidence=conf,
                    tags=tags,
                    rationale=f"reads '{text}'; candidates' consensus '{consensus}'{lr_note}",
                    components={**{f"agrees_{k}": v for k, v in checks.items()}, "reader_confidence": conf},
                )
            )
        return verdicts
