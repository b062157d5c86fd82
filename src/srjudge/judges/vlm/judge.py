"""VLM judges: ``vlm:<backend>,model=...,protocol=...`` with the seven protocols of the papers.

Protocols (``protocol=`` option):

- ``level`` (default; Q-Align): expected level from the probabilities of excellent/good/fair/
  poor/bad at the answer's first token. Continuous and stable: the default for ranking.
- ``audit`` (face-SR paper): score 0-100, tags from a fixed vocabulary, a reason, a confidence.
- ``pairwise`` (EvoQuality, Co-Instruct): A versus B in both orders, K samples per order,
  majority vote, position consistency; ranking by a tournament within a call budget,
  aggregated by Bradley-Terry (``rank=bt``) or Copeland (``rank=copeland``).
- ``lr-conditioned`` (RefReward-SR): the LR input is the reference; fidelity and realism apart.
- ``readout`` (diffusion-SR selection paper): what text or digits the image shows; a candidate
  scores by agreement with the candidates' consensus reading and with the LR input's reading.
- ``perceive-infer`` (BIQA-reasoning paper): describe content and distortions, then infer the
  level from the description alone; contradictions between the two are flagged.

Unparseable or refused answers are retried (``retries=``, with a format reminder), then the
verdict abstains and says why. There is never a random or default score.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.checks import check_lr_scale
from srjudge.judges.base import CandidateSetJudge, Comparison, Verdict
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.aggregate import bradley_terry, copeland, strength_to_score, tournament_pairs
from srjudge.judges.vlm.parsing import LEVELS, PREFERENCES, ParseError
from srjudge.judges.vlm.prompts import PROMPTS, PromptTemplate, load_prompt_file
from srjudge.provenance import Provenance
from srjudge.vlm.backends.base import CachedBackend, RunStats, VLMBackend, create_backend
from srjudge.vlm.cache import CompletionCache
from srjudge.vlm.images import DEFAULT_MAX_SIDE, fit_longest_side, plan_resize
from srjudge.vlm.request import (
    ChatMessage,
    ChatRequest,
    Completion,
    GenerationParams,
    ImagePart,
    Part,
    TextPart,
)

PROTOCOLS = ("level", "audit", "pairwise", "lr-conditioned", "readout", "perceive-infer")
_MAIN_TEMPLATE = {
    "level": "level",
    "audit": "audit",
    "pairwise": "pairwise",
    "lr-conditioned": "lr-conditioned",
    "readout": "readout",
    "perceive-infer": "perceive",
}
SEVERITY = {"slight": 1, "moderate": 2, "severe": 3}
# Seeds of stability repeats are this far apart, beyond any sample index within one repeat.
REPEAT_SEED_STRIDE = 10_000

T = TypeVar("T")


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


@dataclass(frozen=True)
class VLMJudgeConfig:
    """Everything that defines a VLM judge's answers (the backend's options included)."""

    backend: str
    backend_options: Mapping[str, str]
    protocol: str = "level"
    samples: int = 1
    temperature: float = 0.0
    retries: int = 2
    max_side: int = DEFAULT_MAX_SIDE
    cache: str | None = None
    prompt: str | None = None
    rank: str = "bt"
    budget: int | None = None
    fidelity_weight: float = 0.5
    seed: int = 0
    price_in: float | None = None
    price_out: float | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            import difflib

            close = difflib.get_close_matches(self.protocol, PROTOCOLS, n=1)
            hint = f" Did you mean: {close[0]}?" if close else ""
            raise SpecError(f"Unknown protocol {self.protocol!r}.{hint} Available: {', '.join(PROTOCOLS)}.")
        if self.samples < 1:
            raise SpecError(f"samples must be >= 1, got {self.samples}.")
        if self.retries < 0:
            raise SpecError(f"retries must be >= 0, got {self.retries}.")
        if self.temperature < 0:
            raise SpecError(f"temperature must be >= 0, got {self.temperature}.")
        if self.rank not in ("bt", "copeland"):
            raise SpecError(f"rank must be bt or copeland, got {self.rank!r}.")
        if not 0.0 <= self.fidelity_weight <= 1.0:
            raise SpecError(f"fidelity_weight must be in [0, 1], got {self.fidelity_weight}.")
        if self.budget is not None and self.budget < 1:
            raise SpecError(f"budget must be >= 1 model call, got {self.budget}.")

    def public(self) -> dict[str, Any]:
        """The configuration as it enters provenance (no secrets: keys live only in the environment)."""
        return {
            "backend": self.backend,
            "backend_options": dict(self.backend_options),
            "protocol": self.protocol,
            "samples": self.samples,
            "temperature": self.temperature,
            "retries": self.retries,
            "max_side": self.max_side,
            "prompt": self.prompt,
            "rank": self.rank,
            "budget": self.budget,
            "fidelity_weight": self.fidelity_weight,
            "seed": self.seed,
        }


@dataclass
class _Outcome:
    """Per item: parsed readings (one per sample that parsed) and every completion paid for."""

    readings: list[Any] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class VLMJudge(CandidateSetJudge):
    """A judge backed by a vision-language model; see the module docstring for the protocols."""

    def __init__(self, config: VLMJudgeConfig, backend: VLMBackend | None = None) -> None:
        self.cfg = config
        self.backend = (
            backend if backend is not None else create_backend(config.backend, config.backend_options)
        )
        cache = (
            None
            if (config.cache or "").lower() in ("off", "none", "false")
            else CompletionCache(config.cache)
        )
        self.stats = RunStats(price_in_per_mtok=config.price_in, price_out_per_mtok=config.price_out)
        self.client = CachedBackend(self.backend, cache, self.stats)
        main = _MAIN_TEMPLATE[config.protocol]
        self.template = load_prompt_file(config.prompt) if config.prompt else PROMPTS.get(main)
        self.templates: dict[str, PromptTemplate] = {main: self.template}
        if config.protocol == "perceive-infer":
            self.templates["infer"] = PROMPTS.get("infer")
        self.config: dict[str, Any] = {
            **config.public(),
            "identity": self.backend.identity(),
            "templates": sorted(t.ref for t in self.templates.values()),
        }
        model = self.backend.identity()["model"]
        self.spec = f"vlm:{config.backend},model={model},protocol={config.protocol}"
        self._repeats: dict[int, VLMJudge] = {}

    def for_repeat(self, repeat: int) -> VLMJudge:
        """Repeat ``repeat`` draws from seed ``seed + REPEAT_SEED_STRIDE * repeat``; stats are shared."""
        if repeat == 0:
            return self
        if repeat not in self._repeats:
            seed = self.cfg.seed + REPEAT_SEED_STRIDE * repeat
            clone = VLMJudge(replace(self.cfg, seed=seed), self.backend)
            clone.stats = self.stats
            clone.client = CachedBackend(self.backend, clone.client.cache, self.stats)
            clone.spec = self.spec
            self._repeats[repeat] = clone
        return self._repeats[repeat]

    # ------------------------------------------------------------------ requests
    def _params(self, *, json_schema: Mapping[str, Any] | None = None, **overrides: Any) -> GenerationParams:
        base = GenerationParams(
            max_tokens=overrides.pop("max_tokens", 256),
            temperature=self.cfg.temperature,
            seed=self.cfg.seed,
            json_schema=json_schema,
            schema_name=self.template.id.replace("-", "_"),
        )
        return replace(base, **overrides)

    def _request(
        self,
        template: PromptTemplate,
        parts: Sequence[Part],
        params: GenerationParams,
        sample: int,
        attempt: int,
    ) -> ChatRequest:
        messages = []
        if template.system:
            messages.append(ChatMessage.system(template.system))
        user = list(parts)
        if attempt > 0 and template.retry_hint:
            user.append(TextPart("\n" + template.retry_hint))
        messages.append(ChatMessage("user", tuple(user)))
        seed = None if params.seed is None else params.seed + sample
        return ChatRequest(
            messages=tuple(messages),
            params=replace(params, seed=seed),
            template=template.ref + (f"+retry{attempt}" if attempt else ""),
            sample_index=sample,
        )

    def _image(self, image: np.ndarray) -> ImagePart:
        fitted, _ = fit_longest_side(image, self.cfg.max_side)
        return ImagePart.of(fitted)

    def _run(
        self,
        items: Sequence[Callable[[int, int], ChatRequest]],
        parse: Callable[[Completion], T],
        *,
        samples: int | None = None,
        next_token_words: Sequence[str] | None = None,
    ) -> list[_Outcome]:
        """Ask every item ``samples`` times; re-ask unparseable answers up to ``retries`` times."""
        k = samples or self.cfg.samples
        outcomes = [_Outcome() for _ in items]
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

    def _accounting(self, completions: Sequence[Completion]) -> dict[str, float | None]:
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

    def _provenance(self) -> Provenance:
        return Provenance.of(self.spec, self.config)

    def _abstain(self, outcome: _Outcome, what: str) -> Verdict:
        reason = outcome.errors[-1] if outcome.errors else "no answer"
        return Verdict(
            judge=self.spec,
            score=None,
            raw=None,
            provenance=self._provenance(),
            abstain_reason=f"{what}: {self.cfg.retries + 1} attempt(s) failed; last: {reason}",
            accounting=self._accounting(outcome.completions),
        )

    # ------------------------------------------------------------------ level scoring
    def _level_parser(self, completion: Completion) -> dict[str, float]:
        if completion.logprobs:
            return parsing.word_distribution(completion.logprobs[0].top, LEVELS)
        word = parsing.first_word(completion.text, LEVELS)
        return {w: 1.0 if w == word else 0.0 for w in LEVELS}

    def _level(self, builders: Sequence[Callable[[int, int], ChatRequest]]) -> list[_Outcome]:
        direct = getattr(self.backend, "next_token_logprobs", None) is not None
        return self._run(builders, self._level_parser, next_token_words=LEVELS if direct else None)

    def _level_params(self) -> GenerationParams:
        return self._params(max_tokens=3, top_logprobs=20)

    def _level_verdict(self, outcome: _Outcome, extra_tags: Sequence[str] = (), note: str = "") -> Verdict:
        if not outcome.readings:
            return self._abstain(outcome, "no level could be read")
        dists: list[dict[str, float]] = outcome.readings
        mean = {w: float(np.mean([d[w] for d in dists])) for w in LEVELS}
        levels = [parsing.expected_level(d) for d in dists]
        level = float(np.mean(levels))
        from_logprobs = any(c.logprobs for c in outcome.completions)
        spread = statistics.pstdev(levels) * 25.0 if len(levels) > 1 else 0.0
        top = max(mean, key=lambda w: mean[w])
        source = "level-token probabilities" if from_logprobs else "the answer word (no logprobs returned)"
        return Verdict(
            judge=self.spec,
            score=parsing.level_to_score(level),
            raw=level,
            provenance=self._provenance(),
            confidence=1.0 - parsing.normalised_entropy(mean),
            tags=(top, *extra_tags),
            rationale=f"expected level {level:.2f}/5 from {source}; most likely '{top}' "
            f"({mean[top]:.2f}){note}",
            components={
                **{f"p_{w}": mean[w] for w in LEVELS},
                "spread": spread,
                "samples": float(len(levels)),
            },
            accounting=self._accounting(outcome.completions),
        )

    # ------------------------------------------------------------------ pointwise protocols
    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        """Judge the candidates; each verdict records how its image was resized for the model."""
        verdicts = self._score_many(images, lr)
        return [self._with_resize_note(v, image) for v, image in zip(verdicts, images, strict=True)]

    def _with_resize_note(self, verdict: Verdict, image: np.ndarray) -> Verdict:
        record = plan_resize(image.shape[1], image.shape[0], self.cfg.max_side)
        if not record.resized:
            return verdict
        note = f" [image sent as {record.describe()}, max_side={self.cfg.max_side}]"
        return replace(verdict, rationale=verdict.rationale + note)

    def _score_many(self, images: Sequence[np.ndarray], lr: np.ndarray | None) -> list[Verdict]:
        if not images:
            return []
        protocol = self.cfg.protocol
        if protocol == "pairwise":
            return self._tournament(images)
        if protocol == "readout":
            return self._readout(images, lr)
        if protocol == "lr-conditioned":
            if lr is None:
                raise SrjudgeError(
                    "The lr-conditioned protocol shows the LR input as the reference: give it (--lr)."
                )
            for image in images:
                check_lr_scale(image, lr, "SR candidate", "LR input")
            return self._lr_conditioned(images, lr)
        if protocol == "audit":
            return self._audit(images)
        if protocol == "perceive-infer":
            return self._perceive_infer(images)
        template = self.template
        params = self._level_params()
        builders = [
            self._builder(template, [self._image(img), TextPart(template.render())], params) for img in images
        ]
        return [self._level_verdict(o) for o in self._level(builders)]

    def _builder(
        self, template: PromptTemplate, parts: Sequence[Part], params: GenerationParams
    ) -> Callable[[int, int], ChatRequest]:
        def build(sample: int, attempt: int) -> ChatRequest:
            return self._request(template, parts, params, sample, attempt)

        return build

    def _audit(self, images: Sequence[np.ndarray]) -> list[Verdict]:
        template = self.template
        params = self._params(json_schema=template.schema)

        def parse(c: Completion) -> dict[str, Any]:
            obj = parsing.extract_json_object(c.text)
            return {
                "score": parsing.number_field(obj, "score", 0, 100),
                "tags": parsing.tags_field(obj, template.tags_vocabulary),
                "reason": parsing.string_field(obj, "reason", required=False),
                "confidence": parsing.number_field(obj, "confidence", 0, 1),
            }

        builders = [
            self._builder(template, [self._image(img), TextPart(template.render())], params) for img in images
        ]
        verdicts = []
        for outcome in self._run(builders, parse):
            if not outcome.readings:
                verdicts.append(self._abstain(outcome, "no audit could be read"))
                continue
            scores = [r["score"] for r in outcome.readings]
            tag_votes = Counter(t for r in outcome.readings for t in r["tags"])
            tags = tuple(t for t, n in tag_votes.items() if n * 2 >= len(outcome.readings))
            verdicts.append(
                Verdict(
                    judge=self.spec,
                    score=float(np.mean(scores)),
                    raw=float(np.mean(scores)),
                    provenance=self._provenance(),
                    confidence=float(np.mean([r["confidence"] for r in outcome.readings])),
                    tags=tags,
                    rationale=outcome.readings[0]["reason"],
                    components={
                        "spread": statistics.pstdev(scores) if len(scores) > 1 else 0.0,
                        "samples": float(len(scores)),
                    },
                    accounting=self._accounting(outcome.completions),
                )
            )
        return verdicts

    def _lr_conditioned(self, images: Sequence[np.ndarray], lr: np.ndarray) -> list[Verdict]:
        template = self.template
        params = self._params(json_schema=template.schema)
        lr_part = self._image(lr)

        def parse(c: Completion) -> dict[str, Any]:
            obj = parsing.extract_json_object(c.text)
            return {
                "fidelity": parsing.number_field(obj, "fidelity", 0, 100),
                "realism": parsing.number_field(obj, "realism", 0, 100),
                "reason": parsing.string_field(obj, "reason", required=False),
                "confidence": parsing.number_field(obj, "confidence", 0, 1),
            }

        builders = [
            self._builder(
                template,
                [
                    TextPart(template.user_before),
                    lr_part,
                    TextPart(template.user_between),
                    self._image(img),
                    TextPart(template.render()),
                ],
                params,
            )
            for img in images
        ]
        w = self.cfg.fidelity_weight
        verdicts = []
        for outcome in self._run(builders, parse):
            if not outcome.readings:
                verdicts.append(self._abstain(outcome, "no LR-conditioned rating could be read"))
                continue
            fidelity = float(np.mean([r["fidelity"] for r in outcome.readings]))
            realism = float(np.mean([r["realism"] for r in outcome.readings]))
            score = w * fidelity + (1.0 - w) * realism
            verdicts.append(
                Verdict(
                    judge=self.spec,
                    score=score,
                    raw=score,
                    provenance=self._provenance(),
                    confidence=float(np.mean([r["confidence"] for r in outcome.readings])),
                    tags=("low-fidelity",) if fidelity < 50 else (),
                    rationale=(
                        f"fidelity {fidelity:.0f}, realism {realism:.0f}: {outcome.readings[0]['reason']}"
                    ),
                    components={
                        "fidelity": fidelity,
                        "realism": realism,
                        "samples": float(len(outcome.readings)),
                    },
                    accounting=self._accounting(outcome.completions),
                )
            )
        return verdicts

    def _perceive_infer(self, images: Sequence[np.ndarray]) -> list[Verdict]:
        perceive = self.template
        infer = self.templates["infer"]
        params = self._params(json_schema=perceive.schema)

        def parse(c: Completion) -> dict[str, Any]:
            content, distortions = parse_perception(c.text)
            return {"content": content, "distortions": list(distortions)}

        builders = [
            self._builder(perceive, [self._image(img), TextPart(perceive.render())], params) for img in images
        ]
        perceived = self._run(builders, parse, samples=1)
        level_params = self._level_params()
        infer_builders: list[Callable[[int, int], ChatRequest]] = []
        index: list[int] = []
        for i, outcome in enumerate(perceived):
            if outcome.readings:
                reading = outcome.readings[0]
                text = infer_prompt_text(reading["content"], reading["distortions"], infer)
                infer_builders.append(self._builder(infer, [TextPart(text)], level_params))
                index.append(i)
        inferred = dict(zip(index, self._level(infer_builders), strict=True))
        verdicts = []
        for i, outcome in enumerate(perceived):
            if i not in inferred:
                verdicts.append(self._abstain(outcome, "no description could be read"))
                continue
            reading = outcome.readings[0]
            second = inferred[i]
            second.completions[:0] = outcome.completions
            worst = max((SEVERITY[s] for _, s in reading["distortions"]), default=0)
            listing = "; ".join(f"{t} ({s})" for t, s in reading["distortions"]) or "no visible distortions"
            verdict = self._level_verdict(
                second, note=f". Perceived: {reading['content']} Distortions: {listing}"
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

    def _read(self, images: Sequence[np.ndarray]) -> tuple[list[_Outcome], list[tuple[str, float] | None]]:
        """Read-out prompt per image: outcomes and the confidence-weighted majority (text, confidence)."""
        template = self.template
        params = self._params(json_schema=template.schema, max_tokens=64)

        def parse(c: Completion) -> tuple[str, float]:
            obj = parsing.extract_json_object(c.text)
            text = "".join(parsing.string_field(obj, "text", required=False).upper().split())
            return text, parsing.number_field(obj, "confidence", 0, 1)

        builders = [
            self._builder(template, [self._image(img), TextPart(template.render())], params) for img in images
        ]
        outcomes = self._run(builders, parse)

        def majority(readings: Sequence[tuple[str, float]]) -> tuple[str, float] | None:
            if not readings:
                return None
            votes: dict[str, float] = {}
            for text, conf in readings:
                votes[text] = votes.get(text, 0.0) + conf + 1e-6
            text = max(votes, key=lambda t: votes[t])
            return text, float(np.mean([c for t, c in readings if t == text]))

        return outcomes, [majority(o.readings) for o in outcomes]

    def read_texts(self, images: Sequence[np.ndarray]) -> list[tuple[str, float] | str]:
        """Per image, the read-out answer (text, confidence), or the reason nothing was read."""
        if self.cfg.protocol != "readout":
            raise SpecError(f"read_texts needs protocol=readout; this judge uses {self.cfg.protocol!r}.")
        outcomes, reads = self._read(images)
        return [
            read if read is not None else (o.errors[-1] if o.errors else "no answer")
            for o, read in zip(outcomes, reads, strict=True)
        ]

    def _readout(self, images: Sequence[np.ndarray], lr: np.ndarray | None) -> list[Verdict]:
        outcomes, reads = self._read([*images, *([lr] if lr is not None else [])])
        candidate_reads = reads[: len(images)]
        lr_read = reads[len(images)] if lr is not None else None
        tally: Counter[str] = Counter(r[0] for r in candidate_reads if r is not None)
        consensus = max(tally, key=lambda t: tally[t]) if tally else None
        verdicts = []
        for outcome, read in zip(outcomes[: len(images)], candidate_reads, strict=True):
            if read is None:
                verdicts.append(self._abstain(outcome, "no reading could be parsed"))
                continue
            text, conf = read
            checks = {"consensus": float(text == consensus)}
            if lr_read is not None:
                checks["lr"] = float(text == lr_read[0])
            agreement = float(np.mean(list(checks.values())))
            tags = ("semantic-change",) if checks.get("lr", 1.0) == 0.0 else ()
            lr_note = f"; the LR input reads '{lr_read[0]}'" if lr_read is not None else ""
            verdicts.append(
                Verdict(
                    judge=self.spec,
                    score=100.0 * agreement,
                    raw=agreement,
                    provenance=self._provenance(),
                    confidence=conf,
                    tags=tags,
                    rationale=f"reads '{text}'; candidates' consensus '{consensus}'{lr_note}",
                    components={**{f"agrees_{k}": v for k, v in checks.items()}, "reader_confidence": conf},
                    accounting=self._accounting(outcome.completions),
                )
            )
        return verdicts

    # ------------------------------------------------------------------ pairwise
    def _pair_outcomes(
        self, images: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]]
    ) -> list[_Outcome]:
        """For each pair, both orders: index 2p is (i, j), 2p + 1 is (j, i); readings are raw words."""
        template = self.template
        params = self._params(max_tokens=8)
        parts = [self._image(img) for img in images]
        builders = []
        for i, j in pairs:
            for a, b in ((i, j), (j, i)):
                builders.append(
                    self._builder(
                        template,
                        [
                            TextPart(template.user_before),
                            parts[a],
                            TextPart(template.user_between),
                            parts[b],
                            TextPart(template.render()),
                        ],
                        params,
                    )
                )
        return self._run(builders, lambda c: parsing.first_word(c.text, PREFERENCES))

    @staticmethod
    def _votes(forward: _Outcome, backward: _Outcome) -> tuple[dict[str, int], float | None]:
        """Votes for the first-listed item A (forward order) and the position consistency."""
        votes = {"A": 0, "B": 0, "tie": 0}
        for word in forward.readings:
            votes[{"first": "A", "second": "B", "tie": "tie"}[word]] += 1
        for word in backward.readings:
            votes[{"first": "B", "second": "A", "tie": "tie"}[word]] += 1
        pairs = min(len(forward.readings), len(backward.readings))
        if pairs == 0:
            return votes, None
        agree = 0
        for f, b in zip(forward.readings, backward.readings, strict=False):
            mapped = {"first": "second", "second": "first", "tie": "tie"}[b]
            agree += f == mapped
        return votes, agree / pairs

    def compare(
        self,
        a: np.ndarray,
        b: np.ndarray,
        *,
        lr: np.ndarray | None = None,
        hr: np.ndarray | None = None,
        tie_margin: float = 0.0,
    ) -> Comparison:
        if self.cfg.protocol != "pairwise":
            return super().compare(a, b, lr=lr, hr=hr, tie_margin=tie_margin)
        forward, backward = self._pair_outcomes([a, b], [(0, 1)])
        votes, consistency = self._votes(forward, backward)
        total = sum(votes.values())
        accounting = self._accounting([*forward.completions, *backward.completions])

        def side(share: float | None, label: str) -> Verdict:
            return Verdict(
                judge=self.spec,
                score=None if share is None else 100.0 * share,
                raw=share,
                provenance=self._provenance(),
                rationale=f"{label}: votes {votes}",
                accounting=accounting,
                abstain_reason=None if share is not None else "no preference could be read",
            )

        if total == 0:
            reason = (forward.errors + backward.errors or ["no answer"])[-1]
            return Comparison(
                "tie",
                side(None, "A"),
                side(None, "B"),
                0.0,
                votes,
                None,
                abstain_reason=f"no vote could be read: {reason}",
            )
        share_a = (votes["A"] + 0.5 * votes["tie"]) / total
        winner = (
            "A"
            if votes["A"] > votes["B"] and votes["A"] > votes["tie"]
            else ("B" if votes["B"] > votes["A"] and votes["B"] > votes["tie"] else "tie")
        )
        return Comparison(
            winner,  # type: ignore[arg-type]
            side(share_a, "A"),
            side(1.0 - share_a, "B"),
            margin=100.0 * (2 * share_a - 1.0),
            votes=votes,
            position_consistency=consistency,
        )

    def _tournament(self, images: Sequence[np.ndarray]) -> list[Verdict]:
        n = len(images)
        if n == 1:
            raise SrjudgeError("The pairwise protocol needs at least two candidates to compare.")
        calls_per_pair = 2 * self.cfg.samples
        all_pairs = n * (n - 1) // 2
        budget_pairs = all_pairs if self.cfg.budget is None else self.cfg.budget // calls_per_pair
        try:
            pairs = tournament_pairs(n, budget_pairs, seed=self.cfg.seed)
        except ValueError:
            raise SpecError(
                f"budget={self.cfg.budget} model calls cannot rank {n} candidates: each pair costs "
                f"{calls_per_pair} calls (both orders x {self.cfg.samples} samples); give at least "
                f"{math.ceil(n / 2) * calls_per_pair}."
            ) from None
        outcomes = self._pair_outcomes(images, pairs)
        results: list[tuple[int, int, float]] = []
        consistency: list[float] = []
        spent: list[list[Completion]] = [[] for _ in range(n)]
        for p, (i, j) in enumerate(pairs):
            forward, backward = outcomes[2 * p], outcomes[2 * p + 1]
            votes, cons = self._votes(forward, backward)
            for c in (*forward.completions, *backward.completions):
                spent[i].append(c)
                spent[j].append(c)
            results += [(i, j, 1.0)] * votes["A"] + [(i, j, 0.0)] * votes["B"] + [(i, j, 0.5)] * votes["tie"]
            if cons is not None:
                consistency.append(cons)
        if not results:
            reason = next((o.errors[-1] for o in outcomes if o.errors), "no answer")
            return [
                self._abstain(_Outcome(errors=[reason]), "no pairwise vote could be read") for _ in images
            ]
        if self.cfg.rank == "bt":
            strengths = bradley_terry(n, results)
            scores = strength_to_score(strengths)
            raws = strengths
        else:
            raws = copeland(n, results)
            scores = [100.0 * r for r in raws]
        games = Counter(x for i, j, _ in results for x in (i, j))
        wins: dict[int, float] = dict.fromkeys(range(n), 0.0)
        for i, j, w in results:
            wins[i] += w
            wins[j] += 1.0 - w
        mean_consistency = float(np.mean(consistency)) if consistency else None
        verdicts = []
        for k in range(n):
            verdicts.append(
                Verdict(
                    judge=self.spec,
                    score=scores[k],
                    raw=raws[k],
                    provenance=self._provenance(),
                    confidence=mean_consistency,
                    rationale=(
                        f"{self.cfg.rank} over {len(pairs)} pairs: {wins[k]:.1f} wins in {games[k]} votes; "
                        f"position consistency {mean_consistency if mean_consistency is not None else 'n/a'}"
                    ),
                    components={"wins": float(wins[k]), "votes": float(games[k]), "pairs": float(len(pairs))},
                    # Each pair's calls are shared by its two candidates; the run summary counts them once.
                    accounting=self._accounting(spent[k]),
                )
            )
        return verdicts

    # ------------------------------------------------------------------ diagnostics
    def logit_lens(self, image: np.ndarray) -> list[dict[str, float]]:
        """Level-word probabilities at every decoder layer for one image (``hf`` backend only).

        Shows whether a prediction rests on a few candidate tokens early on, as the BIQA-reasoning
        paper found.
        """
        lens = getattr(self.backend, "logit_lens", None)
        if lens is None:
            raise SrjudgeError("The logit lens reads hidden states: it needs the local 'hf' backend.")
        template = PROMPTS.get("level")
        request = self._request(
            template, [self._image(image), TextPart(template.render())], self._level_params(), 0, 0
        )
        return list(lens(request, LEVELS))

    def summary(self) -> dict[str, Any]:
        """Run summary: calls, cache hits, retries, tokens, latency and cost so far."""
        return {"judge": self.spec, **self.stats.to_dict()}
