"""Judges turn candidate images (with an optional LR input and HR reference) into verdicts.

A :class:`Verdict` is a frozen record: a 0-100 score (higher is better) or an abstention with its
reason, the raw value, a confidence, tags, a rationale, named components and provenance.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from srjudge.errors import ImageError, SizeMismatchError
from srjudge.images.checks import as_image, as_optional_image, check_image, checked_inputs, inputs_checked
from srjudge.provenance import Provenance


@dataclass(frozen=True)
class Verdict:
    """One judgement of one image."""

    judge: str
    score: float | None
    raw: float | None
    provenance: Provenance
    confidence: float | None = None
    tags: tuple[str, ...] = ()
    rationale: str = ""
    components: Mapping[str, float] = field(default_factory=dict)
    abstain_reason: str | None = None
    raw_higher_is_better: bool = True
    accounting: Mapping[str, float | None] = field(default_factory=dict)
    contributions: Mapping[str, float] = field(default_factory=dict)
    """Signed additive terms behind the score (judges that have them: trust, fitted), for explanations."""

    @property
    def abstained(self) -> bool:
        return self.score is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "score": _json_number(self.score),
            "raw": _json_number(self.raw),
            "confidence": self.confidence,
            "tags": list(self.tags),
            "rationale": self.rationale,
            "components": {k: _json_number(v) for k, v in self.components.items()},
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "raw_higher_is_better": self.raw_higher_is_better,
            "accounting": dict(self.accounting),
            "contributions": {k: _json_number(v) for k, v in self.contributions.items()},
            "provenance": self.provenance.to_dict(),
        }


def _json_number(value: float | None) -> float | str | None:
    """JSON has no infinity: PSNR of identical images is written as the string 'inf'."""
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return round(float(value), 6)


def decisive_terms(first: Verdict, second: Verdict, *, top: int = 3) -> list[tuple[str, float]]:
    """Which additive terms put ``first`` ahead of ``second``: (term, difference), largest first.

    Empty when either verdict has no ``contributions`` (a judge without additive terms).
    """
    if not first.contributions or not second.contributions:
        return []
    terms = set(first.contributions) | set(second.contributions)
    deltas = [(t, first.contributions.get(t, 0.0) - second.contributions.get(t, 0.0)) for t in terms]
    deltas = [(t, d) for t, d in deltas if abs(d) >= 0.005]
    return sorted(deltas, key=lambda td: (-abs(td[1]), td[0]))[:top]


def explain_pick(first: Verdict, second: Verdict) -> str:
    """One line on why ``first`` ranks above ``second`` (the terms that decided, or the vetoes)."""
    why = [f"{term} {delta:+.2f}" for term, delta in decisive_terms(first, second)]
    vetoed = [t for t in second.tags if t in VETO_TAGS and t not in first.tags]
    if vetoed:
        why.insert(0, "runner-up vetoed (" + ", ".join(vetoed) + ")")
    return "; ".join(why)


VETO_TAGS = ("semantic-outlier", "semantic-change", "lr-contradiction", "identity-drift")


@dataclass(frozen=True)
class RankedItem:
    index: int
    rank: int | None
    verdict: Verdict


@dataclass(frozen=True)
class Ranking:
    """Candidates ordered best first; abstained candidates come last with ``rank`` None."""

    judge: str
    items: tuple[RankedItem, ...]

    @property
    def best(self) -> RankedItem:
        return self.items[0]

    def order(self) -> list[int]:
        return [item.index for item in self.items]

    def why_first(self) -> str:
        """Why rank 1 beat rank 2 (:func:`explain_pick`); empty with fewer than two ranked candidates."""
        ranked = [item for item in self.items if item.rank is not None]
        return explain_pick(ranked[0].verdict, ranked[1].verdict) if len(ranked) >= 2 else ""


@dataclass(frozen=True)
class Comparison:
    """A versus B. Pairwise VLM judges also report their votes and position consistency."""

    winner: Literal["A", "B", "tie"]
    verdict_a: Verdict
    verdict_b: Verdict
    margin: float
    votes: Mapping[str, int] = field(default_factory=dict)
    position_consistency: float | None = None
    abstain_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "margin": _json_number(self.margin),
            "votes": dict(self.votes),
            "position_consistency": self.position_consistency,
            "abstain_reason": self.abstain_reason,
            "a": self.verdict_a.to_dict(),
            "b": self.verdict_b.to_dict(),
        }


def _sort_key(item: tuple[int, Verdict]) -> tuple[int, float, float, int]:
    index, verdict = item
    if verdict.score is None:
        return (1, 0.0, 0.0, index)
    return (0, -verdict.score, -_signed_raw(verdict), index)


def _signed_raw(verdict: Verdict) -> float:
    """The raw value oriented so that larger is better: breaks ties of clipped 0-100 scores."""
    if verdict.raw is None or math.isnan(verdict.raw):
        return 0.0
    return verdict.raw if verdict.raw_higher_is_better else -verdict.raw


def make_ranking(judge: str, verdicts: Sequence[Verdict]) -> Ranking:
    ordered = sorted(enumerate(verdicts), key=_sort_key)
    items = []
    rank = 0
    for index, verdict in ordered:
        rank_value: int | None = None
        if not verdict.abstained:
            rank += 1
            rank_value = rank
        items.append(RankedItem(index=index, rank=rank_value, verdict=verdict))
    return Ranking(judge=judge, items=tuple(items))


def check_candidates(candidates: Sequence[np.ndarray], names: Sequence[str] | None = None) -> None:
    """Candidates of one LR input must all have the same size; name the odd ones out."""
    if not candidates:
        raise ValueError("no candidates to judge")
    labels = list(names) if names is not None else [f"candidate {i}" for i in range(len(candidates))]
    for image, label in zip(candidates, labels, strict=True):
        check_image(image, label)
    sizes = {c.shape[:2] for c in candidates}
    if len(sizes) > 1:
        listing = ", ".join(
            f"{label}: {c.shape[1]}x{c.shape[0]}" for c, label in zip(candidates, labels, strict=True)
        )
        raise SizeMismatchError(
            f"Candidates of one LR input must all have the same size; got {listing}. "
            "Re-run the SR step at one scale, or judge the groups separately."
        )


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _candidate_labels(count: int, names: Sequence[str] | None) -> list[str]:
    if names is not None and len(names) == count:
        return [str(n) for n in names]
    return [f"SR candidate {i}" for i in range(count)]


def _checks_images(method: _Method) -> _Method:
    """Wrap a judge entry point so that its images are checked once, on the way in.

    Every array is passed through :func:`~srjudge.images.checks.as_image` (uint8/uint16 scaled to
    float32, floats required in [0, 1], named in messages: "SR image", "SR candidate 2", "LR input",
    "HR reference"). Entry points called from inside another one (a judge built on other judges, a
    metric called by a judge) do not check again.
    """
    if getattr(method, "_checks_images", False) or getattr(method, "__isabstractmethod__", False):
        return method
    kind = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, first: Any, *args: Any, **kwargs: Any) -> Any:
        if inputs_checked():
            return method(self, first, *args, **kwargs)
        if kind == "score":
            first = as_image(first, "SR image")
        elif kind == "compare":
            first = as_image(first, "SR candidate A")
            args = (as_image(args[0], "SR candidate B"), *args[1:]) if args else args
            if "b" in kwargs:
                kwargs["b"] = as_image(kwargs["b"], "SR candidate B")
        else:
            if isinstance(first, np.ndarray) and first.ndim < 4:
                raise ImageError(
                    f"{kind} takes a list of H x W x 3 images; got one array of shape {first.shape}: "
                    "wrap it in a list, or judge it with score()."
                )
            first = list(first)
            labels = _candidate_labels(len(first), kwargs.get("names"))
            first = [as_image(image, label) for image, label in zip(first, labels, strict=True)]
        for key, label in (("lr", "LR input"), ("hr", "HR reference")):
            if key in kwargs:
                kwargs[key] = as_optional_image(kwargs[key], label)
        with checked_inputs():
            return method(self, first, *args, **kwargs)

    wrapper._checks_images = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


_ENTRY_POINTS = ("score", "score_many", "rank", "compare")


def declared_inputs(spec: str) -> tuple[bool, bool]:
    """(needs LR, needs HR) as the registry declares them for the judge or metric named by ``spec``;
    (False, False) for a name registered as neither."""
    from srjudge.judges.registry import JUDGES
    from srjudge.metrics import METRICS

    name = spec.split(":", 1)[0].strip().lower()
    if name in JUDGES:
        entry = JUDGES.get(name)
        return entry.needs_lr, entry.needs_hr
    if name in METRICS:
        info = METRICS.get(name).info
        return info.needs_lr, info.needs_hr
    return False, False


class Judge(ABC):
    """Base class: subclasses implement :meth:`score`; candidate-aware judges override :meth:`score_many`.

    The entry points (:meth:`score`, :meth:`score_many`, :meth:`rank`, :meth:`compare`, also where a
    subclass overrides them) check and convert their arrays once with
    :func:`~srjudge.images.checks.as_image`: H x W x 3, float in [0, 1] or uint8/uint16.
    """

    spec: str
    config: Mapping[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _ENTRY_POINTS:
            method = cls.__dict__.get(name)
            if callable(method):
                setattr(cls, name, _checks_images(method))

    def provenance(self) -> Provenance:
        return Provenance.of(self.spec, {"spec": self.spec, **self.config})

    def verdict(self, score: float, raw: float | None, **fields: Any) -> Verdict:
        """A verdict of this judge (its spec and provenance) with ``score`` and any other fields."""
        return Verdict(judge=self.spec, score=score, raw=raw, provenance=self.provenance(), **fields)

    def abstention(self, reason: str, **fields: Any) -> Verdict:
        """No score from this judge, and why (never a default score)."""
        return Verdict(
            judge=self.spec,
            score=None,
            raw=None,
            provenance=self.provenance(),
            abstain_reason=reason,
            **fields,
        )

    @property
    def needs_lr(self) -> bool:
        """True when the judge scores against the LR input, so ``lr=`` must be given (LR-consistency
        metrics, ``trust``, ``readout``, ``reward``). By default what the judge's registration declares:
        its :func:`~srjudge.judges.registry.register_judge` flags, or its metric's ``MetricInfo``."""
        return declared_inputs(self.spec)[0]

    @property
    def needs_hr(self) -> bool:
        """True when the judge compares with an HR reference, so ``hr=`` must be given (full-reference
        metrics such as ``psnr`` or ``lpips``); declared like :attr:`needs_lr`."""
        return declared_inputs(self.spec)[1]

    def summary(self) -> dict[str, Any]:
        """What the judge has cost so far (model calls, cache hits, tokens...); empty for judges that
        call no model."""
        return {}

    @abstractmethod
    def score(
        self, image: np.ndarray, *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> Verdict:
        """Judge one image."""

    def for_repeat(self, repeat: int) -> Judge:
        """The judge for repeat ``repeat`` of a stability run (``bench --repeats``).

        Deterministic judges return themselves; sampling judges return a copy with its own seed, so that
        repeats are independent draws rather than answers replayed from a cache.
        """
        return self

    @_checks_images
    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        """Judge several images; by default each on its own."""
        return [self.score(image, lr=lr, hr=hr) for image in images]

    @_checks_images
    def rank(
        self,
        candidates: Sequence[np.ndarray],
        *,
        lr: np.ndarray | None = None,
        hr: np.ndarray | None = None,
        names: Sequence[str] | None = None,
    ) -> Ranking:
        """Order candidates of one LR input, best first."""
        check_candidates(candidates, names)
        return make_ranking(self.spec, self.score_many(candidates, lr=lr, hr=hr))

    def compare_directly(self, a: np.ndarray, b: np.ndarray) -> Comparison | None:
        """A direct comparison where the judge has one; None means: compare the two scores."""
        return None

    @_checks_images
    def compare(
        self,
        a: np.ndarray,
        b: np.ndarray,
        *,
        lr: np.ndarray | None = None,
        hr: np.ndarray | None = None,
        tie_margin: float = 0.0,
    ) -> Comparison:
        """A versus B; a tie when the scores differ by at most ``tie_margin`` (or either abstains).

        Judges that can ask "which is better?" directly (a pairwise VLM) answer in :meth:`compare_directly`.
        """
        direct = self.compare_directly(a, b)
        if direct is not None:
            return direct
        va, vb = self.score_many([a, b], lr=lr, hr=hr)
        if va.score is None or vb.score is None:
            return Comparison("tie", va, vb, 0.0)
        margin = va.score - vb.score
        if margin == 0.0 and tie_margin == 0.0:
            raw_margin = _signed_raw(va) - _signed_raw(vb)
            if raw_margin != 0.0:
                return Comparison("A" if raw_margin > 0 else "B", va, vb, margin)
        if abs(margin) <= tie_margin:
            return Comparison("tie", va, vb, margin)
        return Comparison("A" if margin > 0 else "B", va, vb, margin)


class CandidateSetJudge(Judge):
    """A judge whose verdicts depend on the whole candidate set (consensus, a shared reference)."""

    def score(
        self, image: np.ndarray, *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> Verdict:
        return self.score_many([image], lr=lr, hr=hr)[0]

    @abstractmethod
    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        """Judge the candidates together."""
