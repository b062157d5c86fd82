"""The testbed experiment: does the output a judge picks still show the symbol the LR input showed?

Reproduces the set-up of the diffusion-SR selection paper (arXiv 2506.20832) on the digits-and-letters
testbed. For every test LR glyph, a stochastic SR backend (``diffusion``) makes N seeded samples and
each other backend (``bicubic``, optionally ``realesrgan``) one output; an independent referee reader
says which symbol each candidate shows. Every judge ranks the candidates of an item (with the LR input),
its top-1 pick and the fusion of its top-k are read by the referee, and the measures below are
computed per judge and per severity with 95 % bootstrap intervals over items.

Definitions (``threshold`` is the referee confidence that makes a reading count as confident, 0.5):

* **correct**: the referee's label equals the item's true class.
* **hallucinated**: the referee confidently (confidence >= threshold) reads a *different* symbol.
  Wrong but unconfident (or unreadable) outputs are neither correct nor hallucinated.
* **abstained**: the judge abstained on every candidate of the item: no pick; the item counts as
  not correct and not hallucinated (abstention is safe but not useful), and is counted.
* **random**: the expected value of a uniformly random pick, computed exactly as the mean over the
  item's candidates (no sampling noise). **oracle**: 1 when any candidate is correct.

Pure measure functions (:func:`judge_measures`, :func:`random_measures`, :func:`oracle_measures`,
:func:`candidate_measures`) take plain records; the I/O (candidate cache, readings, streamed picks)
lives in :func:`run_experiment` and its helpers. Everything computed is written as it is made, so an
interrupted run resumes and a re-run with other judges reuses candidates, readings and picks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from srjudge import atomic
from srjudge.bench.measures import Estimate, boot_indices, mean_estimate
from srjudge.errors import MissingWeightsError, SpecError, SrjudgeError
from srjudge.images.io import load_image, quantize_8bit, save_png
from srjudge.jsonl import open_for_append, read_jsonl
from srjudge.provenance import config_hash

if TYPE_CHECKING:
    from srjudge.judges.base import Judge
    from srjudge.readers.base import Reader
    from srjudge.sr.base import SRBackend

SCHEMA = "srjudge.testbed.experiment/1"
SEVERITY_NAMES: tuple[str, ...] = ("clean", "mild", "moderate", "severe")
"""Names of severity levels 0..3 (the testbed contract; ``build.SEVERITIES`` holds the same)."""
DEFAULT_JUDGES: tuple[str, ...] = ("trust", "tws", "lr-psnr", "readout:classifier")
DEFAULT_BACKENDS: tuple[str, ...] = ("diffusion", "bicubic")
BASELINE_JUDGES: tuple[str, ...] = ("lr-psnr", "lpips")
"""Metric picks always in the table: LR-consistency PSNR, and LPIPS (against the bicubic-upsampled LR,
never the HR) when its weights are configured; otherwise it is listed as 'needs weights'."""

Outcome = Literal["correct", "hallucinated", "unclear"]
Progress = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------------------
# Records and pure measures


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
            est = getattr(self, key)
            row[key] = None if est is None else _num(est.value)
            row[f"{key}_low"] = None if est is None else _num(est.low)
            row[f"{key}_high"] = None if est is None else _num(est.high)
        row["note"] = self.note
        return row


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


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


def random_measures(
    facts: Sequence[ItemFacts],
    *,
    severity: str = "all",
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> Measures:
    """A uniformly random pick: per item the exact expectation (mean over its candidates), then the mean."""
    acc, hall, tws = [], [], []
    for f in facts:
        correct, wrong = _candidate_flags(f, threshold)
        acc.append(float(correct.mean()))
        hall.append(float(wrong.mean()))
        values = [t for t in f.tws if t is not None]
        tws.append(float(np.mean(values)) if values else None)
    return Measures(
        name="random",
        kind="baseline",
        severity=severity,
        n=len(facts),
        abstained=0,
        top1_accuracy=_estimate(acc, n_boot, seed),
        fused_accuracy=None,
        hallucination=_estimate(hall, n_boot, seed),
        fused_hallucination=None,
        tws=_maybe_estimate(tws, n_boot, seed),
        n_boot=n_boot,
        note="expected value of a uniform pick (exact)",
    )


def oracle_measures(
    facts: Sequence[ItemFacts],
    *,
    severity: str = "all",
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> Measures:
    """The best any selector could do: 1 when some candidate is correct (0 hallucination then)."""
    acc, hall = [], []
    for f in facts:
        correct, wrong = _candidate_flags(f, threshold)
        acc.append(float(correct.max()))
        hall.append(float(correct.max() == 0 and wrong.min() == 1))
    return Measures(
        name="oracle",
        kind="baseline",
        severity=severity,
        n=len(facts),
        abstained=0,
        top1_accuracy=_estimate(acc, n_boot, seed),
        fused_accuracy=None,
        hallucination=_estimate(hall, n_boot, seed),
        fused_hallucination=None,
        tws=None,
        n_boot=n_boot,
        note="any candidate correct; hallucination only if every candidate is a confident wrong symbol",
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
            est: Estimate = getattr(self, key)
            row[key] = _num(est.value)
            row[f"{key}_low"] = _num(est.low)
            row[f"{key}_high"] = _num(est.high)
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
    return SEVERITY_NAMES[level] if 0 <= level < len(SEVERITY_NAMES) else f"level-{level}"


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


# ---------------------------------------------------------------------------------------------------
# Configuration and results


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of one run (what the CLI options map to)."""

    judges: tuple[str, ...] = DEFAULT_JUDGES
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    samples: int = 8
    top_k: int = 3
    fusion: str = "median"
    split: str = "test"
    limit: int | None = None
    n_boot: int = 1000
    seed: int = 0
    threshold: float = 0.5
    referee: str = "referee"
    tws: str = "tws"
    baselines: bool = True
    steps: int | None = None
    batch: int = 256

    def __post_init__(self) -> None:
        from srjudge.select.fusion import FUSE_METHODS

        if not self.judges and not self.baselines:
            raise SpecError("No judges to run: give --judges, e.g. 'trust,lr-psnr'.")
        if not self.backends:
            raise SpecError("No SR backends: give --backends, e.g. 'diffusion,bicubic'.")
        if len(set(self.judges)) != len(self.judges):
            raise SpecError(f"A judge is listed twice in {list(self.judges)}; list each once.")
        if len(set(self.backends)) != len(self.backends):
            raise SpecError(f"A backend is listed twice in {list(self.backends)}; list each once.")
        if self.samples < 1:
            raise SpecError(f"--samples {self.samples}: give at least 1 sample per stochastic backend.")
        if self.top_k < 1:
            raise SpecError(f"--top-k {self.top_k}: fuse at least the top 1 candidate.")
        if self.fusion not in FUSE_METHODS:
            raise SpecError(f"--fusion {self.fusion!r}: use one of {', '.join(FUSE_METHODS)}.")
        if self.split not in ("train", "val", "test"):
            raise SpecError(f"--split {self.split!r}: use train, val or test.")
        if self.limit is not None and self.limit < 1:
            raise SpecError(f"--limit {self.limit}: give a positive number of items (or leave it out).")
        if self.n_boot < 0:
            raise SpecError(f"--bootstrap {self.n_boot}: give 0 (no intervals) or more resamples.")
        if not 0.0 <= self.threshold <= 1.0:
            raise SpecError(f"threshold {self.threshold}: a referee confidence in [0, 1].")
        if self.batch < 1:
            raise SpecError(f"batch {self.batch}: give a positive batch size.")
        if self.steps is not None and self.steps < 1:
            raise SpecError(f"steps {self.steps}: give a positive number of sampling steps.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["judges"] = list(self.judges)
        data["backends"] = list(self.backends)
        return data


@dataclass(frozen=True)
class JudgeInfo:
    """A judge (or baseline) in the table: its spec, configuration, and whether it ran."""

    spec: str
    kind: str
    status: str
    config: Mapping[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    seconds: float = 0.0
    reused: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "status": self.status,
            "config": {k: _jsonable(v) for k, v in self.config.items()},
            "config_hash": self.config_hash,
            "seconds": round(self.seconds, 3),
            "reused_picks": self.reused,
            "message": self.message,
        }


@dataclass(frozen=True)
class ItemRecord:
    """Where an item's files are (for the report's image panels)."""

    item_id: str
    lr_path: Path | None
    candidate_files: tuple[Path, ...]


@dataclass(frozen=True)
class ExperimentResult:
    """Everything the report needs; serialises to JSON (``table.json``) with its provenance."""

    config: ExperimentConfig
    testbed: Mapping[str, Any]
    facts: tuple[ItemFacts, ...]
    picks: Mapping[str, Mapping[str, Pick]]
    judges: tuple[JudgeInfo, ...]
    rows: tuple[Measures, ...]
    candidates: tuple[CandidateMeasures, ...]
    records: Mapping[str, ItemRecord]
    timings: Mapping[str, float]
    counts: Mapping[str, int]
    referee: Mapping[str, Any]
    lr_scale: int = 4

    def settings(self) -> dict[str, Any]:
        from srjudge import __version__

        return {
            "schema": SCHEMA,
            "srjudge": __version__,
            "testbed": dict(self.testbed),
            "split": self.config.split,
            "items": len(self.facts),
            "backends": list(backend_specs(self.config)),
            "diffusion_steps": self.config.steps,
            "samples": self.config.samples,
            "top_k": self.config.top_k,
            "fusion": self.config.fusion,
            "seed": self.config.seed,
            "bootstrap": self.config.n_boot,
            "threshold": self.config.threshold,
            "referee": dict(self.referee),
            "tws": self.config.tws,
            "limit": self.config.limit,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "settings": self.settings(),
            "judges": [j.to_dict() for j in self.judges],
            "rows": [m.to_row() for m in self.rows],
            "candidates": [c.to_row() for c in self.candidates],
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "counts": dict(self.counts),
        }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


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
    for sev, group in groups:
        rows.append(random_measures(group, severity=sev, threshold=threshold, n_boot=n_boot, seed=seed))
    for sev, group in groups:
        rows.append(oracle_measures(group, severity=sev, threshold=threshold, n_boot=n_boot, seed=seed))
    for backend in dict.fromkeys(backend_name(b) for b in backends):
        for sev, group in groups:
            m = candidate_measures(
                group, backend, severity=sev, threshold=threshold, n_boot=n_boot, seed=seed
            )
            if m is not None:
                cands.append(m)
    return rows, cands


# ---------------------------------------------------------------------------------------------------
# I/O: streamed JSONL stores


def slug(text: str) -> str:
    """A file-name-safe form of a spec or item id, unique through a short hash."""
    return re.sub(r"[^A-Za-z0-9.+=-]+", "_", text)[:60] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]


class JsonlStore:
    """Append-only JSONL keyed by ``key``; lines of another configuration are ignored.

    Only an unterminated last line (a write cut by an interruption) is tolerated: it is dropped from
    the file and its entry is computed again. Any other unreadable line raises :class:`SrjudgeError`.
    """

    def __init__(self, path: Path, config_hash: str) -> None:
        self.path = path
        self.config_hash = config_hash
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for number, row in read_jsonl(path):
                if not isinstance(row, dict) or "key" not in row:
                    raise SrjudgeError(
                        f"{path} line {number} is not a JSON object with a 'key': fix or delete that line "
                        "(or delete the file to compute its entries again)."
                    )
                if row.get("config_hash") == config_hash:
                    self.rows[str(row["key"])] = row
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open_for_append(path)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def put(self, key: str, row: Mapping[str, Any]) -> dict[str, Any]:
        full = {"key": key, "config_hash": self.config_hash, **row}
        self.rows[key] = full
        self._handle.write(json.dumps(full) + "\n")
        self._handle.flush()
        return full

    def close(self) -> None:
        self._handle.close()


# ---------------------------------------------------------------------------------------------------
# I/O: the testbed, candidates and readings


@dataclass(frozen=True)
class _Item:
    item_id: str
    label: str
    severity: int
    source: str
    lr_path: Path | None
    lr: Callable[[], np.ndarray]


def _testbed_items(testbed: Path, split: str, limit: int | None) -> tuple[list[_Item], dict[str, Any], int]:
    from srjudge.testbed.build import load_manifest

    manifest = load_manifest(testbed)
    chosen = [it for it in manifest.items if it.split == split]
    if not chosen:
        splits = sorted({it.split for it in manifest.items})
        raise SrjudgeError(
            f"Testbed {testbed} has no {split!r} items (it has: {', '.join(splits) or 'none'})."
        )
    if limit is not None:
        chosen = chosen[:limit]
    items = [
        _Item(
            item_id=str(it.id),
            label=str(it.label),
            severity=int(it.severity),
            source=str(it.source),
            lr_path=Path(it.lr_path) if it.lr_path is not None else None,
            lr=functools.partial(_manifest_lr, manifest, it),
        )
        for it in chosen
    ]
    info = _manifest_info(manifest, testbed)
    return items, info, int(info.get("scale") or 4)


def _manifest_lr(manifest: Any, item: Any) -> np.ndarray:
    return np.asarray(manifest.lr(item), dtype=np.float32)


def _manifest_info(manifest: Any, testbed: Path) -> dict[str, Any]:
    """The testbed's identity for the settings: folder, data digest, seed and scale (whatever it records)."""
    info: dict[str, Any] = {"folder": str(testbed)}
    for name in ("digest", "data_digest"):
        value = getattr(manifest, name, None)
        if value:
            info["digest"] = str(value)
            break
    config = getattr(manifest, "config", None)
    if config is not None:
        cfg = config.to_dict() if hasattr(config, "to_dict") else config
        if isinstance(cfg, Mapping):
            for key in ("seed", "scale", "hr_size"):
                if key in cfg:
                    info[key] = _jsonable(cfg[key])
    if "digest" not in info:
        path = testbed / "manifest.json"
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            for key in ("digest", "data_digest"):
                if isinstance(data, dict) and data.get(key):
                    info["digest"] = str(data[key])
                    break
            else:
                info["digest"] = (
                    "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16] + " (manifest)"
                )
    return info


def item_seed(seed: int, item_id: str) -> int:
    """The first sample seed of an item: stable across runs, limits and orderings (depends on its id)."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF


@dataclass(frozen=True)
class _Entry:
    backend: str
    seed: int | None
    settings_hash: str

    def key(self) -> str:
        return f"{self.backend}|{self.seed}|{self.settings_hash}"


class CandidateCache:
    """Candidates per item on disk: ``candidates/<item>/<n>.png`` and ``candidates.json`` (written last)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, item_id: str) -> Path:
        return self.root / slug(item_id)

    def load_index(self, item_id: str) -> dict[str, str]:
        path = self.folder(item_id) / "candidates.json"
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}
        entries = data.get("entries", []) if isinstance(data, dict) else []
        return {
            str(e["key"]): str(e["file"])
            for e in entries
            if isinstance(e, dict) and (self.folder(item_id) / str(e.get("file"))).is_file()
        }

    def store(self, item_id: str, images: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]]) -> None:
        """Add images (key -> image, record) to the item's folder; the index is rewritten atomically."""
        folder = self.folder(item_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "candidates.json"
        data: dict[str, Any] = {"item": item_id, "entries": []}
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                data = {"item": item_id, "entries": []}
        entries = [e for e in data.get("entries", []) if isinstance(e, dict)]
        used = {str(e.get("file")) for e in entries}
        known = {str(e.get("key")) for e in entries}
        for key, (image, record) in images.items():
            if key in known:
                continue
            n = len(entries)
            while f"{n:03d}.png" in used:
                n += 1
            name = f"{n:03d}.png"
            save_png(folder / name, image)
            used.add(name)
            entries.append({"key": key, "file": name, **record})
        data["entries"] = entries
        atomic.write_text(path, json.dumps(data, indent=1))


def _make_backends(specs: Sequence[str]) -> list[SRBackend]:
    from srjudge.sr.base import create_sr_backend

    return [create_sr_backend(s) for s in specs]


def _entries(
    backends: Sequence[SRBackend], specs: Sequence[str], samples: int, first_seed: int, testbed: str
) -> list[_Entry]:
    """The candidates wanted for one item; ``testbed`` (the testbed's data digest) goes into every key, so
    that a ``--out`` folder reused with a rebuilt testbed never serves outputs made from other LR images."""
    out: list[_Entry] = []
    for backend, spec in zip(backends, specs, strict=True):
        settings_hash = config_hash({"spec": spec, "testbed": testbed, **backend.settings()})
        if backend.stochastic:
            out += [_Entry(spec, first_seed + i, settings_hash) for i in range(samples)]
        else:
            out.append(_Entry(spec, None, settings_hash))
    return out


def _generate(
    backend: SRBackend, lrs: Sequence[np.ndarray], seeds: Sequence[int | None], *, scale: int
) -> list[np.ndarray]:
    """One output per (LR, seed); the batched ``sample`` API of a stochastic backend when it has one."""
    sample = getattr(backend, "sample", None)
    if backend.stochastic and callable(sample):
        out = np.asarray(sample(np.stack(lrs), [int(s or 0) for s in seeds]))
        return [out[i] for i in range(out.shape[0])]
    return [backend.upscale(lr, scale=scale, seed=s) for lr, s in zip(lrs, seeds, strict=True)]


def backend_specs(config: ExperimentConfig) -> tuple[str, ...]:
    """The backend specs of a run; ``steps`` goes into the ``diffusion`` specs (and so into the cache key)."""
    if config.steps is None:
        return config.backends
    from srjudge.spec import Spec, parse_spec

    out = []
    for text in config.backends:
        spec = parse_spec(text)
        if spec.name == "diffusion" and "steps" not in spec.options:
            spec = Spec(spec.name, spec.arg, {**spec.options, "steps": str(config.steps)})
        out.append(str(spec))
    if out == list(config.backends):
        raise SpecError(
            f"--steps {config.steps}: no diffusion backend in --backends {','.join(config.backends)}."
        )
    return tuple(out)


def ensure_candidates(
    items: Sequence[_Item],
    cache: CandidateCache,
    specs: Sequence[str],
    config: ExperimentConfig,
    *,
    scale: int,
    testbed: str,
    progress: Progress | None = None,
) -> tuple[dict[str, list[tuple[_Entry, Path]]], int, int]:
    """Every item's candidates, made where missing (in batches) and cached; returns (sets, made, reused).

    ``testbed`` is the testbed's data digest: it is part of every cache key (see :func:`_entries`).
    """
    backends: list[SRBackend] | None = None
    sets: dict[str, list[tuple[_Entry, Path]]] = {}
    missing: list[_Item] = []
    reused = 0
    for item in items:
        index = cache.load_index(item.item_id)
        if not index:
            missing.append(item)
            continue
        if backends is None:
            backends = _make_backends(specs)
        wanted = _entries(backends, specs, config.samples, item_seed(config.seed, item.item_id), testbed)
        if all(e.key() in index for e in wanted):
            sets[item.item_id] = [(e, cache.folder(item.item_id) / index[e.key()]) for e in wanted]
            reused += len(wanted)
        else:
            missing.append(item)
    made = 0
    if missing:
        if backends is None:
            backends = _make_backends(specs)
        per_batch = max(1, config.batch // max(1, config.samples))
        done = 0
        if progress:
            progress("candidates", 0, len(missing))
        for start in range(0, len(missing), per_batch):
            chunk = missing[start : start + per_batch]
            lrs = {it.item_id: it.lr() for it in chunk}
            new: dict[str, dict[str, tuple[np.ndarray, Mapping[str, Any]]]] = {it.item_id: {} for it in chunk}
            for backend, spec in zip(backends, specs, strict=True):
                todo: list[tuple[str, _Entry]] = []
                for it in chunk:
                    index = cache.load_index(it.item_id)
                    first = item_seed(config.seed, it.item_id)
                    wanted = _entries([backend], [spec], config.samples, first, testbed)
                    todo += [(it.item_id, e) for e in wanted if e.key() not in index]
                if not todo:
                    continue
                images = _generate(
                    backend,
                    [lrs[i] for i, _ in todo],
                    [e.seed for _, e in todo],
                    scale=scale,
                )
                for (item_id, entry), image in zip(todo, images, strict=True):
                    _check_output(image, lrs[item_id], scale, spec)
                    record = {"backend": spec, "seed": entry.seed, "settings": _jsonable(backend.settings())}
                    new[item_id][entry.key()] = (quantize_8bit(image), record)
                    made += 1
            for it in chunk:
                cache.store(it.item_id, new[it.item_id])
                index = cache.load_index(it.item_id)
                first = item_seed(config.seed, it.item_id)
                wanted = _entries(backends, specs, config.samples, first, testbed)
                sets[it.item_id] = [(e, cache.folder(it.item_id) / index[e.key()]) for e in wanted]
            done += len(chunk)
            if progress:
                progress("candidates", done, len(missing))
    return {it.item_id: sets[it.item_id] for it in items}, made, reused


def _check_output(image: np.ndarray, lr: np.ndarray, scale: int, spec: str) -> None:
    want = (lr.shape[0] * scale, lr.shape[1] * scale, 3)
    if image.shape != want:
        raise SrjudgeError(
            f"SR backend {spec!r} returned an image of shape {image.shape}, "
            f"expected {want} (x{scale} of the LR)."
        )


def _reader_info(reader: Any, spec: str) -> dict[str, Any]:
    info: dict[str, Any] = {"spec": str(getattr(reader, "spec", spec))}
    cfg = getattr(reader, "config", None)
    if isinstance(cfg, Mapping):
        info["config"] = {k: _jsonable(v) for k, v in cfg.items()}
    prov = getattr(reader, "provenance", None)
    if callable(prov):
        p = prov()
        info["provenance"] = p.to_dict() if hasattr(p, "to_dict") else _jsonable(p)
    info["hash"] = config_hash(info)
    return info


def _read(reader: Reader, images: Sequence[np.ndarray]) -> list[tuple[str | None, float]]:
    readings = list(reader.read(list(images)))
    if len(readings) != len(images):
        raise SrjudgeError(f"the referee returned {len(readings)} readings for {len(images)} images")
    return [(r.label, float(r.confidence)) for r in readings]


def _load(path: Path) -> np.ndarray:
    return load_image(path)


def _load_candidates(entries: Sequence[tuple[_Entry, Path]]) -> list[np.ndarray]:
    return [_load(p) for _, p in entries]


def _judge_needs_hr(judge: Judge) -> bool:
    metric = getattr(judge, "metric", None)
    if metric is not None:
        return bool(metric.info.needs_hr)
    from srjudge.judges.registry import JUDGES

    name = judge.spec.split(":", 1)[0]
    return name in JUDGES and JUDGES.get(name).needs_hr


def build_judges(config: ExperimentConfig) -> list[tuple[JudgeInfo, Judge | None]]:
    """The requested judges, then the metric baselines not already requested (LPIPS: 'needs weights')."""
    from srjudge.judges import create_judge

    out: list[tuple[JudgeInfo, Judge | None]] = []
    for spec in config.judges:
        judge = create_judge(spec)
        out.append(
            (JudgeInfo(judge.spec, "judge", "ok", judge.config, judge.provenance().config_hash), judge)
        )
    if config.baselines:
        have = {info.spec for info, _ in out} | set(config.judges)
        for spec in BASELINE_JUDGES:
            if spec in have:
                continue
            try:
                judge = create_judge(spec)
            except MissingWeightsError as exc:
                out.append((JudgeInfo(spec, "baseline", "needs weights", message=str(exc)), None))
                continue
            out.append(
                (JudgeInfo(judge.spec, "baseline", "ok", judge.config, judge.provenance().config_hash), judge)
            )
    return out


def _pick_row(
    judge: Judge,
    images: Sequence[np.ndarray],
    lr: np.ndarray,
    config: ExperimentConfig,
) -> tuple[dict[str, Any], np.ndarray | None]:
    from srjudge.images.resize import imresize
    from srjudge.select.fusion import fuse

    hr = np.clip(imresize(lr, output_shape=images[0].shape[:2]), 0.0, 1.0) if _judge_needs_hr(judge) else None
    started = time.perf_counter()
    ranking = judge.rank(images, lr=lr, hr=hr)
    seconds = time.perf_counter() - started
    scores: list[float | None] = [None] * len(images)
    for ranked in ranking.items:
        s = ranked.verdict.score
        scores[ranked.index] = None if s is None or not math.isfinite(s) else round(float(s), 6)
    order = [r.index for r in ranking.items if r.rank is not None]
    topk = order[: config.top_k]
    fused = None
    if topk:
        weights = [max(float(scores[i] or 0.0), 0.0) for i in topk]
        if config.fusion == "weighted" and sum(weights) <= 0:
            weights = [1.0] * len(topk)
        fused = fuse([images[i] for i in topk], config.fusion, weights)  # type: ignore[arg-type]
    row = {
        "pick": order[0] if order else None,
        "topk": topk,
        "order": order,
        "scores": scores,
        "abstained_candidates": len(images) - len(order),
        "seconds": round(seconds, 6),
    }
    return row, fused


def fused_image(
    images: Sequence[np.ndarray], topk: Sequence[int], scores: Sequence[float | None], method: str
) -> np.ndarray:
    """The fused top-k exactly as the run made it (for the report's panels)."""
    from srjudge.select.fusion import fuse

    weights = [max(float(scores[i] or 0.0), 0.0) for i in topk]
    if method == "weighted" and sum(weights) <= 0:
        weights = [1.0] * len(topk)
    return fuse([images[i] for i in topk], method, weights)  # type: ignore[arg-type]


def run_experiment(
    testbed: Path | str,
    config: ExperimentConfig,
    out_dir: Path | str,
    *,
    progress: Progress | None = None,
) -> ExperimentResult:
    """Generate (or reuse) candidates, read them, run every judge (streamed), and measure."""
    from srjudge.judges import create_judge
    from srjudge.readers import create_reader

    testbed = Path(testbed)
    out = Path(out_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    items, tb_info, scale = _testbed_items(testbed, config.split, config.limit)
    judges = build_judges(config)
    tws_judge = create_judge(config.tws)
    timings["setup"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cache = CandidateCache(out / "candidates")
    digest = str(tb_info.get("digest", ""))
    sets, made, reused = ensure_candidates(
        items, cache, backend_specs(config), config, scale=scale, testbed=digest, progress=progress
    )
    timings["candidates"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    reader = create_reader(config.referee)
    referee = _reader_info(reader, config.referee)
    facts = _ensure_readings(items, sets, reader, referee, tws_judge, config, out, progress, testbed=digest)
    timings["readings"] = time.perf_counter() - t0

    picks: dict[str, dict[str, Pick]] = {}
    infos: list[JudgeInfo] = []
    run = [(info, judge) for info, judge in judges if judge is not None]
    stores = {
        info.spec: JsonlStore(
            out / "picks" / f"{slug(info.spec)}.jsonl",
            config_hash(
                {
                    "judge": info.config_hash,
                    "backends": list(backend_specs(config)),
                    "samples": config.samples,
                    "seed": config.seed,
                    "top_k": config.top_k,
                    "fusion": config.fusion,
                    "referee": referee["hash"],
                    "tws": config.tws,
                    "testbed": digest,
                }
            ),
        )
        for info, _ in run
    }
    seconds = {info.spec: 0.0 for info, _ in run}
    reused_picks = {info.spec: 0 for info, _ in run}
    t0 = time.perf_counter()
    if progress:
        progress("judges", 0, len(items))
    try:
        for n, item in enumerate(items):
            todo = [(info, j) for info, j in run if stores[info.spec].get(item.item_id) is None]
            for info, _ in run:
                if stores[info.spec].get(item.item_id) is not None:
                    reused_picks[info.spec] += 1
            if todo:
                images = _load_candidates(sets[item.item_id])
                lr = item.lr()
                rows: list[tuple[JudgeInfo, dict[str, Any], np.ndarray | None]] = []
                for info, judge in todo:
                    started = time.perf_counter()
                    row, fused = _pick_row(judge, images, lr, config)
                    seconds[info.spec] += time.perf_counter() - started
                    rows.append((info, row, fused))
                fused_list = [f for _, _, f in rows if f is not None]
                fused_readings = iter(_read(reader, fused_list) if fused_list else [])
                fused_tws = iter(_tws_values(tws_judge, fused_list, lr))
                for info, row, fused in rows:
                    label, conf, ftws = None, 0.0, None
                    if fused is not None:
                        label, conf = next(fused_readings)
                        ftws = next(fused_tws)
                    row.update({"fused_label": label, "fused_confidence": round(conf, 6), "fused_tws": ftws})
                    stores[info.spec].put(item.item_id, row)
            if progress:
                progress("judges", n + 1, len(items))
    finally:
        for store in stores.values():
            store.close()
    timings["judges"] = time.perf_counter() - t0
    by_id = {f.item_id: f for f in facts}
    for info, _ in run:
        picks[info.spec] = {
            item.item_id: _pick_from_row(by_id[item.item_id], stores[info.spec].rows[item.item_id])
            for item in items
        }
    for info, _ in run:  # judge time as recorded with the picks, so a resumed run reports the full cost
        rows_of = stores[info.spec].rows
        seconds[info.spec] = sum(float(rows_of[it.item_id].get("seconds") or 0.0) for it in items)
    for info, _ in judges:
        if info.status == "ok":
            info = JudgeInfo(
                info.spec, info.kind, info.status, info.config, info.config_hash,
                seconds[info.spec], reused_picks[info.spec], info.message,
            )  # fmt: skip
        infos.append(info)

    t0 = time.perf_counter()
    rows_m, cand_m = measure_all(
        facts,
        picks,
        infos,
        config.backends,
        threshold=config.threshold,
        n_boot=config.n_boot,
        seed=config.seed,
    )
    timings["measures"] = time.perf_counter() - t0
    records = {
        item.item_id: ItemRecord(item.item_id, item.lr_path, tuple(p for _, p in sets[item.item_id]))
        for item in items
    }
    counts = {
        "items": len(items),
        "candidates": sum(len(s) for s in sets.values()),
        "candidates_made": made,
        "candidates_reused": reused,
    }
    return ExperimentResult(
        config=config,
        testbed=tb_info,
        facts=tuple(facts),
        picks=picks,
        judges=tuple(infos),
        rows=tuple(rows_m),
        candidates=tuple(cand_m),
        records=records,
        timings=timings,
        counts=counts,
        referee=referee,
        lr_scale=scale,
    )


def _tws_values(tws_judge: Judge, images: Sequence[np.ndarray], lr: np.ndarray) -> list[float | None]:
    if not images:
        return []
    # TWS scores each image against the same reference (the bicubic-upsampled LR), independently of the
    # others, so scoring them together gives every image its own TWS.
    verdicts = tws_judge.score_many(list(images), lr=lr)
    return [None if v.score is None else round(float(v.score), 4) for v in verdicts]


def _pick_from_row(f: ItemFacts, row: Mapping[str, Any]) -> Pick:
    index = row.get("pick")
    if index is None:
        return Pick(f.item_id, None, None, 0.0, abstained_candidates=int(row.get("abstained_candidates", 0)))
    i = int(index)
    return Pick(
        item_id=f.item_id,
        index=i,
        label=f.labels[i],
        confidence=f.confidences[i],
        topk=tuple(int(t) for t in row.get("topk", [])),
        fused_label=row.get("fused_label"),
        fused_confidence=float(row.get("fused_confidence") or 0.0),
        tws=f.tws[i] if f.tws else None,
        fused_tws=row.get("fused_tws"),
        abstained_candidates=int(row.get("abstained_candidates", 0)),
        scores=tuple(None if s is None else float(s) for s in row.get("scores", [])),
    )


def _ensure_readings(
    items: Sequence[_Item],
    sets: Mapping[str, Sequence[tuple[_Entry, Path]]],
    reader: Reader,
    referee: Mapping[str, Any],
    tws_judge: Judge,
    config: ExperimentConfig,
    out: Path,
    progress: Progress | None,
    *,
    testbed: str,
) -> list[ItemFacts]:
    """The referee's reading and the TWS of every candidate, cached in ``readings.jsonl`` (batched)."""
    store = JsonlStore(
        out / "readings.jsonl",
        config_hash(
            {"referee": referee["hash"], "tws": tws_judge.provenance().config_hash, "testbed": testbed}
        ),
    )
    try:
        todo = [
            it
            for it in items
            if (row := store.get(it.item_id)) is None
            or row.get("candidates") != [e.key() for e, _ in sets[it.item_id]]
        ]
        per_batch = max(1, config.batch // max(1, len(next(iter(sets.values()), []))))
        if progress and todo:
            progress("readings", 0, len(todo))
        for start in range(0, len(todo), per_batch):
            chunk = todo[start : start + per_batch]
            images = {it.item_id: _load_candidates(sets[it.item_id]) for it in chunk}
            flat = [im for it in chunk for im in images[it.item_id]]
            readings = iter(_read(reader, flat))
            for it in chunk:
                got = [next(readings) for _ in images[it.item_id]]
                tws = _tws_values(tws_judge, images[it.item_id], it.lr())
                store.put(
                    it.item_id,
                    {
                        "candidates": [e.key() for e, _ in sets[it.item_id]],
                        "labels": [lab for lab, _ in got],
                        "confidences": [round(c, 6) for _, c in got],
                        "tws": tws,
                    },
                )
            if progress:
                progress("readings", start + len(chunk), len(todo))
        facts = []
        for it in items:
            row = store.rows[it.item_id]
            facts.append(
                ItemFacts(
                    item_id=it.item_id,
                    truth=it.label,
                    severity=it.severity,
                    source=it.source,
                    backends=tuple(backend_name(e.backend) for e, _ in sets[it.item_id]),
                    labels=tuple(row["labels"]),
                    confidences=tuple(float(c) for c in row["confidences"]),
                    tws=tuple(row["tws"]),
                )
            )
        return facts
    finally:
        store.close()
