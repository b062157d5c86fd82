"""The judge registry: ``create_judge(spec)`` builds any judge, and every metric is a judge too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from srjudge.errors import UnknownNameError
from srjudge.judges.base import Judge
from srjudge.metrics import METRICS
from srjudge.registry import Entry, OptionSchema, Registry
from srjudge.spec import Spec, parse_spec

JudgeFactory = Callable[[Spec], Judge]


@dataclass(frozen=True, kw_only=True)
class JudgeEntry(Entry):
    """A registered judge: ``factory(spec) -> Judge``, and which inputs it needs."""

    needs_lr: bool = False
    needs_hr: bool = False


JUDGES: Registry[JudgeEntry] = Registry("judge", packages=("srjudge.judges",), entry_type=JudgeEntry)


def register_judge(
    name: str,
    description: str,
    *,
    options: OptionSchema | None = None,
    needs_lr: bool = False,
    needs_hr: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[[JudgeFactory], JudgeFactory]:
    """Register a factory ``f(spec) -> Judge`` under ``name``, with its option schema."""
    return JUDGES.register(
        name, description, options=options, aliases=aliases, needs_lr=needs_lr, needs_hr=needs_hr
    )


def create_judge(spec: str | Spec) -> Judge:
    """Build a judge from a spec: a judge name (``trust``, ``tws:clip=/models/clip``) or any metric name."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.name in JUDGES:
        factory: JudgeFactory = JUDGES.get(parsed.name).factory
        return factory(parsed)
    if parsed.name in METRICS:
        from srjudge.judges.metric_judge import MetricJudge

        return MetricJudge.from_spec(parsed)
    raise UnknownNameError(JUDGES.unknown_message(parsed.name, also=METRICS.names()))


def list_judges() -> list[JudgeEntry]:
    """Registered judges (metrics are listed separately by :func:`srjudge.metrics.list_metrics`)."""
    return JUDGES.entries()
