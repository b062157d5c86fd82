"""The audit gatekeeper (audit_image): accept, retry with a knob, reject."""

from __future__ import annotations

import numpy as np

from srjudge.audit.gate import AuditPolicy, audit_image
from srjudge.judges.base import Judge, Verdict
from srjudge.provenance import Provenance
from srjudge.sr import classical
from srjudge.sr.base import SRBackend
from srjudge.sr.knobs import KNOBS


class _ScriptedJudge(Judge):
    """Scores by a rule on the image: lets the gatekeeper's decisions be tested exactly."""

    def __init__(self, rule) -> None:  # type: ignore[no-untyped-def]
        self.rule = rule
        self.spec = "scripted"
        self.config: dict[str, object] = {}

    def score(
        self, image: np.ndarray, *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> Verdict:
        score, tags, confidence = self.rule(image)
        return Verdict(
            judge="scripted",
            score=score,
            raw=score,
            provenance=Provenance("scripted", "0", "0"),
            tags=tuple(tags),
            confidence=confidence,
        )


class _Oversharpener(SRBackend):
    """A 'general' SR model that over-sharpens (halos): what the dehalo knob is for."""

    spec = "oversharpener"
    family = "general"

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        return classical.unsharp(classical.bicubic(lr, scale), 2.5, 2.0)


def test_gatekeeper_decisions(astronaut_lr: np.ndarray) -> None:
    backend: SRBackend = _Oversharpener()
    lr = astronaut_lr
    accept = audit_image(lr, backend, _ScriptedJudge(lambda im: (90.0, [], 0.9)))
    assert accept.decision == "accept" and len(accept.steps) == 1
    unsure = audit_image(lr, backend, _ScriptedJudge(lambda im: (10.0, ["ringing"], 0.2)))
    assert unsure.decision == "accept-low-confidence" and unsure.final is unsure.pure

    # The judge dislikes ringing until the dehalo knob has been applied.
    def halo_judge(image: np.ndarray) -> tuple[float, list[str], float]:
        fixed = not np.array_equal(image, backend.upscale(lr, scale=4))
        return (85.0, [], 0.9) if fixed else (60.0, ["ringing"], 0.9)

    retried = audit_image(lr, backend, _ScriptedJudge(halo_judge), policy=AuditPolicy(tau=80, retries=1))
    assert retried.decision == "accept-after-retry" and retried.final.knob == "dehalo"
    assert retried.final.value == KNOBS["dehalo"].step
    rejected = audit_image(
        lr, backend, _ScriptedJudge(lambda im: (50.0, ["ringing"], 0.9)), policy=AuditPolicy(retries=1)
    )
    assert rejected.decision == "reject" and "1 retry(ies) did not pass" in rejected.reason
    blocked = audit_image(
        lr,
        backend,
        _ScriptedJudge(lambda im: (95.0, ["semantic change"], 0.9)),
        policy=AuditPolicy(retries=0),
    )
    assert blocked.decision == "reject" and "no retries allowed" in blocked.reason
