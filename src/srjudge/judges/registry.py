"""The judge registry: ``create_judge(spec)`` builds any judge, and every metric is a judge too."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from srjudge.errors import UnknownNameError
from srjudge.judges.base import Judge
from srjudge.metrics import METRICS
from srjudge.registry import Registry
from srjudge.spec import Spec, parse_spec


@dataclass(frozen=True)
class JudgeEntry:
    name: str
    description: str
    factory: Callable[[Spec], Judge]
    needs_lr: bool = False
    needs_hr: bool = False


JUDGES: Registry[JudgeEntry] = Registry("judge")


def register_judge(
    name: str,
    description: str,
    *,
    needs_lr: bool = False,
    needs_hr: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[[Callable[[Spec], Judge]], Callable[[Spec], Judge]]:
    """Register a factory ``f(spec) -> Judge`` under ``name``."""

    def decorate(factory: Callable[[Spec], Judge]) -> Callable[[Spec], Judge]:
        JUDGES.add(name, JudgeEntry(name, description, factory, needs_lr, needs_hr), aliases=aliases)
        return factory

    return decorate


def create_judge(spec: str | Spec) -> Judge:
    """Build a judge from a spec: a judge name (``trust``, ``tws:clip=/models/clip``) or any metric name."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.name in JUDGES:
        return JUDGES.get(parsed.name).factory(parsed)
    if parsed.name in METRICS:
        from srjudge.judges.metric_judge import MetricJudge

        return MetricJudge.from_spec(parsed)
    known = sorted([*JUDGES.names(), *METRICS.names()])
    close = difflib.get_close_matches(parsed.name, known, n=3, cutoff=0.7)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownNameError(f"Unknown judge {parsed.name!r}.{hint} Available: {', '.join(known)}.")


def list_judges() -> list[JudgeEntry]:
    """Registered judges (metrics are listed separately by :func:`srjudge.metrics.list_metrics`)."""
    return [JUDGES.get(name) for name in JUDGES.names()]
