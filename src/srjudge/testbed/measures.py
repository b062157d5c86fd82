"""The testbed experiment's records and pure measures: what the referee reads, what each judge picks.

Definitions (``threshold`` is the referee confidence that makes a reading count as confident, 0.5):

* **correct**: the referee's label equals the item's true class.
* **hallucinated**: the referee confidently (confidence >= threshold) reads a *different* symbol.
  Wrong but unconfident (or unreadable) outputs are neither correct nor hallucinated.
* **abstained**: the judge abstained on every candidate of the item: no pick; the item counts as
  not correct and not hallucinated (abstention is safe but not useful), and is counted.
* **random**: the expected value of a uniformly random pick, computed exactly as the mean over the
  item's candidates (no sampling noise). **oracle**: 1 when any candidate is correct.

Every function here takes plain records (:class:`ItemFacts`, :class:`Pick`) and returns measures with
95 % bootstrap intervals over items; the I/O lives in :mod:`srjudge.testbed.experiment`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from srjudge.bench.bootstrap import Estimate, boot_indices, mean_estimate
from srjudge.testbed.severity import SEVERITIES

if TYPE_CHECKING:
    from srjudge.testbed.results import JudgeInfo

Outcome = Literal["correct", "hallucinated", "unclear"]


@dataclass(frozen=True)
class ItemFacts:
    """One test item: its truth, and what the referee reads in each of its candidates."""

    item_id: str
    truth: str
    severity: int
    source: str
    backends: tuple[str, ...]
    labels: tuple[str | None, ...]
    confidences: tuple[float, ...]
    tws: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.labels)
        if not n or len(self.backends) != n or len(self.confidences) != n or len(self.tws) not in (0, n):
            raise ValueError(
                f"item {self.item_id}: {len(self.backends)} backends, {n} labels, "
                f"{len(self.confidences)} confidences, {len(self.tws)} TWS values (need one each, >= 1)"
            )


@dataclass(frozen=True)
class Pick:
    """One judge's choice for one item: the top-1 candidate and the fused top-k, as the referee reads them."""

    item_id: str
    index: int | None
    label: str | None
    confidence: float
    topk: tuple[int, ...] = ()
    fused_label: str | None = None
    fused_confidence: float = 0.0
    tws: float | None = None
    fused_tws: float | None = None
    abstained_candidates: int = 0
    scores: tuple[float | None, ...] = ()

    @property
    def abstained(self) -> bool:
        return self.index is None


def outcome(label: str | None, confidence: float, truth: str, threshold: float = 0.5) -> Outcome:
    """Correct (label == truth), hallucinated (a confident different label) or unclear (anything else)."""
    if label is not None and label == truth:
        return "correct"
    if label is not None and confidence >= threshold:
        return "hallucinated"
    return "unclear"


@dataclass(frozen=True)
class Measures:
    """One row of the table: a judge (or baseline) on the items of one severity (or all)."""

    name: str
    kind: str
    severity: str
    n: int
    abstained: int
    top1_accuracy: Estimate
    fused_accuracy: Estimate | None
    hallucination: Estimate | None
    fused_hallucination: Estimate | None
    tws: Estimate | None
    n_boot: int
    note: str = ""

    def to_row(self) -> dict[str, Any]:
        """Flat columns: ``<measure>``, ``<measure>_low``, ``<measure>_high`` (None where undefined)."""
        row: dict[str, Any] = {
            "judge": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "n": self.n,
            "abstained": self.abstained,
        }
        for key in ("top1_accuracy", "fused_accuracy", "hallucination", "fused_hallucination", "tws"):
            row.update(_estimate_columns(key, getattr(self, key)))
        row["note"] = self.note
        return row


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def _estimate_columns(key: str, est: Estimate | None) -> dict[str, float | None]:
    """``<key>``, ``<key>_low``, ``<key>_high`` of an estimate (rounded; None where undefined)."""
    if est is None:
        return {key: None, f"{key}_low": None, f"{key}_high": None}
    return {key: _num(est.value), f"{key}_low": _num(est.low), f"{key}_high": _num(est.high)}


def _estimate(values: Sequence[float], n_boot: int, seed: int) -> Estimate:
    arr = np.asarray(values, dtype=np.float64)
    idx = boot_indices(arr.size, n_boot if arr.size else 0, seed)
    return mean_estimate(arr, idx)


def _maybe_estimate(values: Sequence[float | None], n_boot: int, seed: int) -> Estimate | None:
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    return _estimate(kept, n_boot, seed) if kept else None


def _check_pairs(facts: Sequence[ItemFacts], picks: Mapping[str, Pick]) -> None:
    missing = [f.item_id for f in facts if f.item_id not in picks]
    if missing:
        raise ValueError(f"no pick for {len(missing)} item(s), e.g. {missing[:3]}")


def judge_measures(
    name: str,
    facts: Sequence[ItemFacts],
    picks: Mapping[str, Pick],
    *,
    severity: str = "all",
    kind: str = "judge",
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> Measures:
    """Top-1 and fused-top-k accuracy and hallucination, pick TWS, over ``facts`` (bootstrap over items).

    Every measure uses the same seeded resamples of the items, so judges are compared on paired draws.
    """
    _check_pairs(facts, picks)
    top1, fused, hall, fused_hall, tws = [], [], [], [], []
    abstained = 0
    for f in facts:
        p = picks[f.item_id]
        if p.abstained:
            abstained += 1
            top1.append(0.0)
            hall.append(0.0)
            fused.append(0.0)
            fused_hall.append(0.0)
            continue
        top1.append(float(outcome(p.label, p.confidence, f.truth, threshold) == "correct"))
        hall.append(float(outcome(p.label, p.confidence, f.truth, threshold) == "hallucinated"))
        fo = outcome(p.fused_label, p.fused_confidence, f.truth, threshold)
        fused.append(float(fo == "correct"))
        fused_hall.append(float(fo == "hallucinated"))
        tws.append(p.tws)
    has_fused = any(p.topk for p in (picks[f.item_id] for f in facts))
    return Measures(
        name=name,
        kind=kind,
        severity=severity,
        n=len(facts),
        abstained=abstained,
        top1_accuracy=_estimate(top1, n_boot, seed),
        fused_accuracy=_estimate(fused, n_boot, seed) if has_fused else None,
        hallucination=_estimate(hall, n_boot, seed),
        fused_hallucination=_estimate(fused_hall, n_boot, seed) if has_fused else None,
        tws=_maybe_estimate(tws, n_boot, seed),
        n_boot=n_boot,
    )


def _candidate_flags(f: ItemFacts, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    results = [outcome(lab, c, f.truth, threshold) for lab, c in zip(f.labels, f.confidences, strict=True)]
    correct = np.array([r == "correct" for r in results], dtype=np.float64)
    wrong = np.array([r == "hallucinated" for r in results], dtype=np.float64)
    return correct, wrong


Baseline = Literal["random", "oracle"]

_BASELINE_NOTES: dict[str, str] = {
    "random": "expected value of a uniform pick (exact)",
    "oracle": "any candidate correct; hallucination only if every candidate is a confident wrong symbol",
}


def baseline_measures(
    name: Baseline,
    facts: Sequence[ItemFacts],
    *,
    severity: str = "all",
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> Measures:
    """A baseline row (no abstentions, no fusion) over ``facts``.

    ``random``: a uniformly random pick: per item the exact expectation (mean over its candidates), then
    the mean. ``oracle``: the best any selector could do: 1 when some candidate is correct (0
    hallucination then).
    """
    if name not in _BASELINE_NOTES:
        raise ValueError(f"unknown baseline {name!r}; use one of {', '.join(_BASELINE_NOTES)}")
    acc, hall, tws = [], [], []
    for f in facts:
        correct, wrong = _candidate_flags(f, threshold)
        if name == "random":
            acc.append(float(correct.mean()))
            hall.append(float(wrong.mean()))
            values = [t for t in f.tws if t is not None]
            tws.append(float(np.mean(values)) if values else None)
        else:
            acc.append(float(correct.max()))
            hall.append(float(correct.max() == 0 and wrong.min() == 1))
    return Measures(
        name=name,
        kind="baseline",
        severity=severity,
        n=len(facts),
        abstained=0,
        top1_accuracy=_estimate(acc, n_boot, seed),
        fused_accuracy=None,
        hallucination=_estimate(hall, n_boot, seed),
        fused_hallucination=None,
        tws=_maybe_estimate(tws, n_boot, seed) if name == "random" else None,
        n_boot=n_boot,
        note=_BASELINE_NOTES[name],
    )


@dataclass(frozen=True)
class CandidateMeasures:
    """What one backend's outputs show, on the items of one severity."""

    backend: str
    severity: str
    n_items: int
    n_candidates: int
    accuracy: Estimate
    wrong_symbol: Estimate
    items_with_wrong: Estimate
    items_disagreeing: Estimate

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "backend": self.backend,
            "severity": self.severity,
            "items": self.n_items,
            "candidates": self.n_candidates,
        }
        for key in ("accuracy", "wrong_symbol", "items_with_wrong", "items_disagreeing"):
            row.update(_estimate_columns(key, getattr(self, key)))
        return row


def candidate_measures(
    facts: Sequence[ItemFacts],
    backend: str,
    *,
    severity: str = "all",
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> CandidateMeasures | None:
    """Per-backend candidate accuracy and wrong-symbol rate (confident wrong readings), per-item averaged.

    ``items_with_wrong``: items where at least one of the backend's outputs is a confident wrong symbol;
    ``items_disagreeing``: items where its outputs are read as two or more different labels.
    None when the backend made no candidate for these items.
    """
    acc, wrong, any_wrong, disagree = [], [], [], []
    count = 0
    for f in facts:
        mask = np.array([b == backend for b in f.backends])
        if not mask.any():
            continue
        correct, confident_wrong = _candidate_flags(f, threshold)
        count += int(mask.sum())
        acc.append(float(correct[mask].mean()))
        wrong.append(float(confident_wrong[mask].mean()))
        any_wrong.append(float(confident_wrong[mask].max()))
        labels = {lab for lab, m in zip(f.labels, mask, strict=True) if m}
        disagree.append(float(len(labels) > 1))
    if not acc:
        return None
    return CandidateMeasures(
        backend=backend,
        severity=severity,
        n_items=len(acc),
        n_candidates=count,
        accuracy=_estimate(acc, n_boot, seed),
        wrong_symbol=_estimate(wrong, n_boot, seed),
        items_with_wrong=_estimate(any_wrong, n_boot, seed),
        items_disagreeing=_estimate(disagree, n_boot, seed),
    )


def severity_name(level: int) -> str:
    return SEVERITIES[level] if 0 <= level < len(SEVERITIES) else f"level-{level}"


def group_of(f: ItemFacts) -> str:
    """The table group of an item: its severity name for rendered glyphs, else its source.

    scikit-learn's handwritten digits are LR inputs as scanned (no degradation applied), so they form
    their own group rather than being counted as 'clean'.
    """
    return severity_name(f.severity) if f.source == "font" else f.source


def by_severity(facts: Sequence[ItemFacts]) -> list[tuple[str, list[ItemFacts]]]:
    """Groups in severity order, then other sources (sklearn digits), then ``all``; empty ones left out."""
    names = [severity_name(s) for s in sorted({f.severity for f in facts if f.source == "font"})]
    names += sorted({group_of(f) for f in facts} - set(names))
    groups = [(name, [f for f in facts if group_of(f) == name]) for name in names]
    return [*groups, ("all", list(facts))]


def backend_name(spec: str) -> str:
    """The backend name of a spec (``diffusion:/ckpt`` -> ``diffusion``), for per-backend grouping."""
    return spec.split(":", 1)[0].strip().lower()


def measure_all(
    facts: Sequence[ItemFacts],
    picks: Mapping[str, Mapping[str, Pick]],
    judges: Sequence[JudgeInfo],
    backends: Sequence[str],
    *,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[list[Measures], list[CandidateMeasures]]:
    """Table rows: each judge per severity, the random and oracle baselines, and per-backend candidates."""
    rows: list[Measures] = []
    cands: list[CandidateMeasures] = []
    groups = by_severity(facts)
    for info in judges:
        for sev, group in groups:
            if info.status != "ok":
                empty = Estimate(math.nan, math.nan, math.nan)
                rows.append(
                    Measures(
                        info.spec, info.kind, sev, 0, 0, empty, None, None, None, None, n_boot, info.status
                    )
                )
                continue
            rows.append(
                judge_measures(
                    info.spec,
                    group,
                    picks[info.spec],
                    severity=sev,
                    kind=info.kind,
                    threshold=threshold,
                    n_boot=n_boot,
                    seed=seed,
                )
            )
    for baseline in ("random", "oracle"):
        for sev, group in groups:
            rows.append(
                baseline_measures(
                    baseline, group, severity=sev, threshold=threshold, n_boot=n_boot, seed=seed
                )
            )
    for backend in dict.fromkeys(backend_name(b) for b in backends):
        for sev, group in groups:
            m = candidate_measures(
                group, backend, severity=sev, threshold=threshold, n_boot=n_boot, seed=seed
            )
            if m is not None:
                cands.append(m)
    return rows, cands
