"""VLM protocols: how a VLM judge asks its model about candidates and turns the answers into verdicts.

How to add a protocol
---------------------
Write one module in this package, ``protocols/<name>.py``, and its prompt,
``vlm/prompts/<id>.json`` (``id``, ``version``, ``user`` at least; see
:mod:`srjudge.vlm.prompts`). Nothing else changes: :data:`PROTOCOLS` imports every module of
this package the first time it is asked, so ``vlm:<backend>,model=...,protocol=<name>`` finds it::

    @register_protocol("sharpness", "Yes/no: is the image sharp?", prompts=("sharpness",))
    class Sharpness(PointwiseProtocol):
        def request(self, ctx, image, lr):          # the user turn: parts in order
            return [ctx.image(image), TextPart(ctx.template.render())]

        def parse(self, ctx, completion):           # raise ParseError to re-ask
            return parsing.first_word(completion.text, ("yes", "no"))

        def verdict(self, ctx, outcome):            # outcome.readings: one per parsed sample
            if not outcome.readings:
                return ctx.abstain(outcome, "no answer could be read")
            share = outcome.readings.count("yes") / len(outcome.readings)
            return ctx.verdict(outcome.completions, score=100 * share, raw=share, rationale="...")

A protocol is stateless. Each method gets the :class:`ProtocolContext` of the judge that calls it:
the judge's settings and prompt templates, and the shared machinery (the cached backend, samples,
retries with a format reminder, abstention, accounting, provenance). :class:`PointwiseProtocol`
asks one question per candidate (``request`` -> ``parse`` -> ``verdict``); a protocol whose
verdicts depend on the whole set (a tournament, a consensus) subclasses :class:`VLMProtocol` and
writes :meth:`~VLMProtocol.score` itself. The first prompt a protocol names is its main one, which
``prompt=/path.json`` replaces.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from srjudge.errors import SpecError
from srjudge.judges.base import Comparison, Verdict
from srjudge.judges.vlm.config import VLMJudgeConfig
from srjudge.judges.vlm.parsing import ParseError
from srjudge.provenance import Provenance
from srjudge.registry import Entry, OptionSchema, Registry
from srjudge.vlm.backends.base import CachedBackend, RunStats, VLMBackend
from srjudge.vlm.images import fit_longest_side
from srjudge.vlm.prompts import PromptTemplate
from srjudge.vlm.request import (
    ChatRequest,
    Completion,
    GenerationParams,
    ImagePart,
    Part,
)

T = TypeVar("T")
Builder = Callable[[int, int], ChatRequest]
"""(sample index, attempt) -> the request; attempts after the first carry the format reminder."""


@dataclass
class Outcome:
    """Per item: parsed readings (one per sample that parsed) and every completion paid for."""

    readings: list[Any] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProtocolContext:
    """What a protocol may use of the judge calling it: settings, templates and the shared machinery."""

    cfg: VLMJudgeConfig
    spec: str
    config: Mapping[str, Any]
    backend: VLMBackend
    client: CachedBackend
    stats: RunStats
    template: PromptTemplate
    """The main template: the protocol's first prompt, or the user's ``prompt=`` file."""
    templates: Mapping[str, PromptTemplate]
    """Every template by the prompt id the protocol declared (the main one included)."""

    # ------------------------------------------------------------------ requests
    def params(self, *, json_schema: Mapping[str, Any] | None = None, **overrides: Any) -> GenerationParams:
        """Generation parameters from the judge's settings (256 tokens unless ``max_tokens=``)."""
        base = GenerationParams(
            max_tokens=overrides.pop("max_tokens", 256),
            temperature=self.cfg.temperature,
            seed=self.cfg.seed,
            json_schema=json_schema,
            schema_name=self.template.id.replace("-", "_"),
        )
        return replace(base, **overrides)

    def image(self, image: np.ndarray) -> ImagePart:
        """The image as sent: its longest side fitted to ``max_side``."""
        fitted, _ = fit_longest_side(image, self.cfg.max_side)
        return ImagePart.of(fitted)

    def request(
        self,
        template: PromptTemplate,
        parts: Sequence[Part],
        params: GenerationParams,
        sample: int,
        attempt: int,
    ) -> ChatRequest:
        """One chat request: the template's system turn, the user parts, the retry hint after a failure."""
        return template.request(parts, params, sample=sample, attempt=attempt)

    def builder(self, template: PromptTemplate, parts: Sequence[Part], params: GenerationParams) -> Builder:
        """The request for one item, per (sample, attempt)."""

        def build(sample: int, attempt: int) -> ChatRequest:
            return self.request(template, parts, params, sample, attempt)

        return build

    def run(
        self,
        items: Sequence[Builder],
        parse: Callable[[Completion], T],
        *,
        samples: int | None = None,
        next_token_words: Sequence[str] | None = None,
    ) -> list[Outcome]:
        """Ask every item ``samples`` times; re-ask unparseable answers up to ``retries`` times.

        ``parse`` raises :class:`~srjudge.judges.vlm.parsing.ParseError` for an answer it cannot
        read; a refusal counts as one. With ``next_token_words`` the backend returns the
        distribution over those words at the answer's first token instead of generating.
        """
        k = samples or self.cfg.samples
        outcomes = [Outcome() for _ in items]
        pending = [(i, s) for i in range(len(items)) for s in range(k)]
        for attempt in range(self.cfg.retries + 1):
            if not pending:
                break
            requests = [items[i](s, attempt) for i, s in pending]
            if next_token_words is not None:
                completions = self.client.next_token_distribution(requests, next_token_words)
            else:
                completions = self.client.complete(requests)
            still = []
            for (i, s), completion in zip(pending, completions, strict=True):
                outcomes[i].completions.append(completion)
                try:
                    if completion.refusal:
                        raise ParseError(f"the model refused: {completion.refusal[:120]!r}")
                    outcomes[i].readings.append(parse(completion))
                except ParseError as exc:
                    outcomes[i].errors.append(str(exc))
                    still.append((i, s))
            pending = still
        return outcomes

    # ------------------------------------------------------------------ verdicts
    def accounting(self, completions: Sequence[Completion]) -> dict[str, float | None]:
        """Calls, cache hits, retries, tokens, latency and cost of these completions."""
        fresh = [c for c in completions if not c.cached]
        cost = [self.stats.cost(c) for c in completions]
        return {
            "calls": float(len(fresh)),
            "cache_hits": float(len(completions) - len(fresh)),
            "retries": float(sum(c.retries for c in fresh)),
            "prompt_tokens": float(sum(c.usage.prompt_tokens for c in fresh)),
            "completion_tokens": float(sum(c.usage.completion_tokens for c in fresh)),
            "latency_s": round(sum(c.latency_s for c in fresh), 6),
            "cost_usd": None
            if any(c is None for c in cost)
            else float(sum(c for c in cost if c is not None)),
        }

    def provenance(self) -> Provenance:
        return Provenance.of(self.spec, self.config)

    def verdict(self, completions: Sequence[Completion], **fields: Any) -> Verdict:
        """A verdict of this judge (spec, provenance) paid for by ``completions``."""
        return Verdict(
            judge=self.spec,
            provenance=self.provenance(),
            accounting=self.accounting(completions),
            **fields,
        )

    def abstain(self, outcome: Outcome, what: str) -> Verdict:
        """No score: ``what`` could not be read after every attempt; the last parse error says why."""
        reason = outcome.errors[-1] if outcome.errors else "no answer"
        return self.verdict(
            outcome.completions,
            score=None,
            raw=None,
            abstain_reason=f"{what}: {self.cfg.retries + 1} attempt(s) failed; last: {reason}",
        )


class VLMProtocol(ABC):
    """A protocol: builds the requests, parses the answers, turns the outcomes into verdicts."""

    @abstractmethod
    def score(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None
    ) -> list[Verdict]:
        """One verdict per candidate (``images`` is never empty); ``lr`` is the LR input when given."""

    def compare(self, ctx: ProtocolContext, a: np.ndarray, b: np.ndarray) -> Comparison | None:
        """A versus B asked directly; ``None`` (the default) compares the two verdicts' scores."""
        return None


class PointwiseProtocol(VLMProtocol):
    """One question per candidate: :meth:`request`, :meth:`parse` and :meth:`verdict` per item."""

    @abstractmethod
    def request(self, ctx: ProtocolContext, image: np.ndarray, lr: np.ndarray | None) -> Sequence[Part]:
        """The user turn's parts for one candidate (images via :meth:`ProtocolContext.image`)."""

    @abstractmethod
    def parse(self, ctx: ProtocolContext, completion: Completion) -> Any:
        """One reading from one answer; raise :class:`~srjudge.judges.vlm.parsing.ParseError` to re-ask."""

    @abstractmethod
    def verdict(self, ctx: ProtocolContext, outcome: Outcome) -> Verdict:
        """The verdict from one candidate's readings (``ctx.abstain`` when there are none)."""

    def params(self, ctx: ProtocolContext) -> GenerationParams:
        """Generation parameters (default: the main template's JSON schema, 256 tokens)."""
        return ctx.params(json_schema=ctx.template.schema)

    def ask(self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None) -> list[Outcome]:
        """Every candidate's outcome: its requests sent, re-asked, parsed."""
        params = self.params(ctx)
        builders = [ctx.builder(ctx.template, self.request(ctx, image, lr), params) for image in images]
        return ctx.run(builders, lambda c: self.parse(ctx, c))

    def score(
        self, ctx: ProtocolContext, images: Sequence[np.ndarray], lr: np.ndarray | None
    ) -> list[Verdict]:
        return [self.verdict(ctx, outcome) for outcome in self.ask(ctx, images, lr)]


@dataclass(frozen=True, kw_only=True)
class ProtocolEntry(Entry):
    """A registered protocol: ``factory()`` makes it; ``prompts`` are the prompt ids it uses, main first."""

    prompts: tuple[str, ...]
    needs_lr: bool = False

    def create(self) -> VLMProtocol:
        protocol: VLMProtocol = self.factory()
        return protocol

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "prompts": list(self.prompts), "needs_lr": self.needs_lr}


PROTOCOLS: Registry[ProtocolEntry] = Registry(
    "VLM protocol", packages=("srjudge.judges.vlm.protocols",), entry_type=ProtocolEntry
)

P = TypeVar("P", bound=type[VLMProtocol])


def register_protocol(
    name: str,
    description: str,
    *,
    prompts: tuple[str, ...],
    options: OptionSchema | None = None,
    needs_lr: bool = False,
    aliases: tuple[str, ...] = (),
) -> Callable[[P], P]:
    """Register a protocol class under ``name``.

    ``prompts`` names the prompt templates it uses (ids of ``prompts/*.json``), the main one first.
    ``options`` lists the judge options only this protocol reads, for ``srjudge judges`` (they are
    options of the ``vlm`` judge, fields of :class:`~srjudge.judges.vlm.config.VLMJudgeConfig`).
    ``needs_lr``: the protocol cannot judge without the LR input (the judge's ``needs_lr``).
    """
    if not prompts:
        raise ValueError(f"protocol {name!r} names no prompt")
    decorate: Callable[[P], P] = PROTOCOLS.register(
        name, description, options=options, aliases=aliases, prompts=tuple(prompts), needs_lr=needs_lr
    )
    return decorate


def protocol_entry(name: str) -> ProtocolEntry:
    """The registered protocol ``name``; a :class:`SpecError` with a did-you-mean hint when unknown."""
    known = {key for entry in PROTOCOLS.entries() for key in (entry.name, *entry.aliases)}
    if name not in known:
        raise SpecError(PROTOCOLS.unknown_message(name))
    return PROTOCOLS.get(name)
