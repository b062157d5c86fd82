"""The audit policy of the face-SR paper: the judge as validator and gatekeeper, not controller.

For one LR input: run the SR backend (the *pure* output) and judge it. Then

1. if the judge's confidence is below ``min_confidence``, accept the pure output unchanged
   (the paper's conservative policy: an unsure judge must not steer);
2. if the score reaches ``tau`` and no blocking tag is present, accept it;
3. otherwise pick one bounded knob that the tags suggest (per SR family), apply it, run again
   and judge the variant, at most ``retries`` times; accept the first variant that passes;
4. if none passes, reject (the outputs are still saved, with the reason).

Every step is recorded: knob, value, scores, tags, decision and reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize
from srjudge.judges.base import Judge, Verdict
from srjudge.sr.base import SRBackend
from srjudge.sr.knobs import KNOBS, apply_post, apply_pre, choose_knob

Decision = Literal["accept", "accept-low-confidence", "accept-after-retry", "reject", "abstain"]

TAG_ALIASES = {
    "jpeg-blocks": "blockiness",
    "semantic-outlier": "semantic change",
    "lr-inconsistent": "semantic change",
    "colour-shift": "colour shift",
    "color shift": "colour shift",
    "low-fidelity": "semantic change",
    "semantic-change": "semantic change",
    "identity-drift": "identity drift",
}
"""Judges' tags (trust, VLM protocols) in the audit vocabulary of the face-SR paper."""


def audit_tags(tags: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(TAG_ALIASES.get(t, t.replace("_", " ")) for t in tags))


@dataclass(frozen=True)
class AuditPolicy:
    tau: float = 80.0
    retries: int = 1
    min_confidence: float = 0.5
    blocking_tags: tuple[str, ...] = ("semantic change", "hallucinated detail", "identity drift")

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau <= 100.0:
            raise ValueError(f"tau must be in [0, 100], got {self.tau}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")

    def passes(self, verdict: Verdict) -> bool:
        blocked = set(audit_tags(verdict.tags)) & set(self.blocking_tags)
        return verdict.score is not None and verdict.score >= self.tau and not blocked


@dataclass(frozen=True)
class Step:
    """One judged output: the pure run (knob None) or a retry with one knob."""

    image: np.ndarray = field(repr=False)
    verdict: Verdict
    knob: str | None = None
    value: float | None = None

    def record(self) -> dict[str, Any]:
        return {
            "knob": self.knob,
            "value": self.value,
            "score": self.verdict.score,
            "confidence": self.verdict.confidence,
            "tags": list(self.verdict.tags),
            "rationale": self.verdict.rationale,
            "abstain_reason": self.verdict.abstain_reason,
        }


@dataclass(frozen=True)
class AuditDecision:
    decision: Decision
    reason: str
    pure: Step
    final: Step
    steps: tuple[Step, ...]

    @property
    def accepted(self) -> bool:
        return self.decision.startswith("accept")

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "pure": self.pure.record(),
            "final": self.final.record(),
            "steps": [s.record() for s in self.steps],
        }


def _run_knob(
    backend: SRBackend, lr: np.ndarray, pure: np.ndarray, scale: int, seed: int, knob: str, value: float
) -> np.ndarray:
    spec = KNOBS[knob]
    if spec.stage == "pre":
        return backend.upscale(apply_pre(knob, lr, value), scale=scale, seed=seed)
    if spec.stage == "post":
        return apply_post(knob, pure, lr, value)
    # rerun: scale_switch runs the model at the smaller native scale and finishes with bicubic
    native = int(spec.check(value))
    if native not in backend.scales or native >= scale:
        raise ValueError(f"{backend.spec} cannot run at x{native}")
    half = backend.upscale(lr, scale=native, seed=seed)
    return quantize_8bit(imresize(half, output_shape=(lr.shape[0] * scale, lr.shape[1] * scale)))


def audit_image(
    lr: np.ndarray,
    backend: SRBackend,
    judge: Judge,
    *,
    scale: int = 4,
    policy: AuditPolicy | None = None,
    hr: np.ndarray | None = None,
    seed: int = 0,
    baseline: np.ndarray | None = None,
) -> AuditDecision:
    """Run, judge, and accept / retry with a bounded knob / reject one LR input.

    ``baseline``: an output already made by ``backend`` (e.g. what ``select`` chose) to gate instead
    of running SR again; retries still go through ``backend``.
    """
    policy = policy or AuditPolicy()
    pure_image = baseline if baseline is not None else backend.upscale(lr, scale=scale, seed=seed)
    pure = Step(pure_image, judge.score(pure_image, lr=lr, hr=hr))
    steps = [pure]
    if pure.verdict.abstained:
        return AuditDecision(
            "abstain", f"the judge abstained: {pure.verdict.abstain_reason}", pure, pure, tuple(steps)
        )
    confidence = pure.verdict.confidence
    if confidence is not None and confidence < policy.min_confidence:
        return AuditDecision(
            "accept-low-confidence",
            f"judge confidence {confidence:.2f} < {policy.min_confidence:.2f}: baseline accepted unchanged",
            pure,
            pure,
            tuple(steps),
        )
    if policy.passes(pure.verdict):
        return AuditDecision(
            "accept", f"score {pure.verdict.score:.1f} >= tau {policy.tau:g}", pure, pure, tuple(steps)
        )
    current = pure
    tried: set[str] = set()
    for _ in range(policy.retries):
        choice = choose_knob(backend.family, audit_tags(current.verdict.tags), exclude=tried)
        if choice is None:
            break
        knob, value = choice
        tried.add(knob.name)
        try:
            image = _run_knob(backend, lr, pure.image, scale, seed, knob.name, value)
        except ValueError:
            continue
        step = Step(image, judge.score(image, lr=lr, hr=hr), knob.name, value)
        steps.append(step)
        current = step
        if policy.passes(step.verdict):
            return AuditDecision(
                "accept-after-retry",
                f"{knob.name}={value:g} raised the score to {step.verdict.score:.1f} >= tau {policy.tau:g}",
                pure,
                step,
                tuple(steps),
            )
    why = (
        f"score {pure.verdict.score:.1f} < tau {policy.tau:g}"
        if (pure.verdict.score or 0) < policy.tau
        else (f"blocking tags {sorted(set(audit_tags(pure.verdict.tags)) & set(policy.blocking_tags))}")
    )
    if len(steps) == 1:
        why += "; no bounded knob addresses its tags" if policy.retries else "; no retries allowed"
    else:
        why += f"; {len(steps) - 1} retry(ies) did not pass"
    best = max(steps, key=lambda s: s.verdict.score or -1.0)
    return AuditDecision("reject", why, pure, best, tuple(steps))
