"""Running judges over a dataset: streamed scoring, resumable per-judge score files, measures, outputs.

Images are loaded one item at a time and dropped after scoring, so memory stays flat however
large the dataset. Every prediction is appended and flushed to ``OUT/scores/<judge>.jsonl`` as it
is made (keyed by item, repeat and the judge's config hash); a re-run reuses them and only scores
what is missing, and the files hold everything needed to regenerate the tables exactly.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.bench.datasets import BestOfNDataset, MOSDataset, PairwiseDataset
from srjudge.bench.store import JsonlStore, slug
from srjudge.errors import SrjudgeError
from srjudge.execute import Executor, ExecutorSpec, LocalExecutor, PerWorker
from srjudge.images.io import load_image
from srjudge.judges.base import Judge, Verdict
from srjudge.judges.per_worker import judge_handle
from srjudge.provenance import file_sha256

Progress = Callable[[str, int, int], None]


def judge_slug(spec: str) -> str:
    """A file-name-safe, collision-free name for a judge spec (its score file's name)."""
    return slug(spec, 80)


@dataclass
class JudgeResult:
    """Predictions of one judge and what they cost."""

    spec: str
    config_hash: str
    predictions: dict[str, list[float | None]] = field(default_factory=dict)
    extra: dict[str, list[Any]] = field(default_factory=dict)
    seconds: float = 0.0
    images: int = 0
    reused: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    def abstained(self) -> int:
        return sum(1 for values in self.predictions.values() for v in values if v is None)

    def cost_row(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images / self.seconds, 2)
            if self.seconds > 0 and self.images
            else None,
            "model_calls": self.summary.get("calls"),
            "cache_hits": self.summary.get("cache_hits"),
            "tokens": (self.summary.get("prompt_tokens") or 0) + (self.summary.get("completion_tokens") or 0)
            if self.summary
            else None,
            "reused_scores": self.reused,
        }


def _score(verdict: Verdict) -> float | None:
    return None if verdict.score is None or math.isnan(verdict.score) else float(verdict.score)


def _opt(path: Path | None) -> np.ndarray | None:
    return load_image(path) if path is not None else None


def run_judge(
    dataset: MOSDataset | PairwiseDataset | BestOfNDataset,
    judge: Judge,
    out_dir: Path,
    *,
    repeats: int = 1,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> JudgeResult:
    """Score every item ``repeats`` times (streamed, resumable) and time it.

    ``executor`` (default: this process) runs one item (all its repeats) per task; the score file gets
    its rows here, in item order, so it is the same whichever executor ran the items. An item whose
    work failed outside the judge (an unreadable file...) counts as an abstention and is not stored,
    so a re-run tries it again; ``extra["failed"]`` lists them.
    """
    config_hash = judge.provenance().config_hash
    scores = JsonlStore(out_dir / "scores" / f"{judge_slug(judge.spec)}.jsonl", config_hash)
    result = JudgeResult(judge.spec, config_hash)
    units: list[tuple[str, Any, tuple[str | None, ...]]]
    if isinstance(dataset, MOSDataset):
        kind, units = (
            "mos",
            [(str(i.image), i, files_digest_paths([i.image, i.lr, i.ref])) for i in dataset.items],
        )
    elif isinstance(dataset, PairwiseDataset):
        kind, units = (
            "pairwise",
            [(f"{i.a}|{i.b}", i, files_digest_paths([i.a, i.b, i.lr])) for i in dataset.items],
        )
    else:
        kind, units = (
            "best-of-n",
            [(g.group, g, files_digest_paths([g.lr, *g.candidates])) for g in dataset.groups],
        )
    work = BenchWork(judge_handle(judge), kind, repeats)
    tasks = (
        BenchTask(key, item, files, tuple(_stored(scores, key, r) for r in range(repeats)))
        for key, item, files in units
    )
    consistency: list[Any] = []
    started = time.perf_counter()
    try:
        outcomes = (executor or LocalExecutor(ExecutorSpec())).map(work, tasks)
        for n, outcome in enumerate(outcomes, 1):
            task = outcome.item
            if outcome.value is None:  # the work failed: an abstention, not stored (retried on a re-run)
                result.extra.setdefault("failed", []).append([task.key, outcome.error])
                rows = [_abstain(kind, task.item, str(outcome.error)) for _ in range(repeats)]
            else:
                rows = []
                for r, (row, new) in enumerate(outcome.value):
                    if new:
                        row = scores.put(f"{task.key}#{r}", row)
                        result.images += _images(kind, task.item)
                    else:
                        row = scores.get(f"{task.key}#{r}") or row
                        result.reused += 1
                    rows.append(row)
            _collect(kind, task, rows, result, consistency)
            if progress:
                progress(judge.spec, n, len(units))
    finally:
        scores.close()
    if kind == "pairwise":
        result.extra["position_consistency"] = consistency
    result.seconds = time.perf_counter() - started
    # With workers the model calls are counted in their judges, not this one: no figures beat wrong ones.
    local = executor is None or executor.spec.is_local
    result.summary = judge.summary() if local else {}
    return result


def files_digest(paths: Sequence[Path | None]) -> str:
    """One digest of the contents of an item's files: a file changed in place is a new item."""
    h = hashlib.sha256()
    for path in paths:
        h.update((file_sha256(path) if path is not None else "-").encode())
    return h.hexdigest()[:16]


def files_digest_paths(paths: Sequence[Path | None]) -> tuple[str | None, ...]:
    """The files an item's digest is made of (hashed in the worker: :func:`files_digest`)."""
    return tuple(str(p) if p is not None else None for p in paths)


def _stored(scores: JsonlStore, key: str, repeat: int) -> str | None:
    row = scores.get(f"{key}#{repeat}")
    return None if row is None else row.get("digest")


@dataclass(frozen=True)
class BenchTask:
    """One item of a bench dataset: its key, the item, its files and the digests of its stored rows."""

    key: str
    item: Any
    files: tuple[str | None, ...]
    stored: tuple[str | None, ...]
    """Per repeat: the digest of the row already in the score file (None: no row)."""


@dataclass(frozen=True)
class BenchWork:
    """One item, every repeat: (row, new) per repeat; a row stored with the same file contents is kept."""

    judge: PerWorker[Judge]
    kind: str
    repeats: int = 1

    def __call__(self, task: BenchTask) -> list[tuple[dict[str, Any], bool]]:
        digest = files_digest([Path(p) if p is not None else None for p in task.files])
        out: list[tuple[dict[str, Any], bool]] = []
        for repeat in range(self.repeats):
            if task.stored[repeat] == digest:
                out.append(({}, False))
                continue
            try:
                row = _compute(self.kind, self.judge.get().for_repeat(repeat), task.item)
            except SrjudgeError as exc:  # the judge cannot score this item: it abstains, and says why
                row = {**_abstain(self.kind, task.item, str(exc)), "error": str(exc)}
            row["digest"] = digest
            out.append((row, True))
        return out


def _compute(kind: str, judge: Judge, item: Any) -> dict[str, Any]:
    if kind == "mos":
        verdict = judge.score(load_image(item.image), lr=_opt(item.lr), hr=_opt(item.ref))
        return {"score": _score(verdict), "raw": verdict.raw, "tags": list(verdict.tags)}
    if kind == "pairwise":
        comparison = judge.compare(load_image(item.a), load_image(item.b), lr=_opt(item.lr))
        return {
            "a": _score(comparison.verdict_a),
            "b": _score(comparison.verdict_b),
            "winner": comparison.winner,
            "position_consistency": comparison.position_consistency,
        }
    images = [load_image(p) for p in item.candidates]
    lr = load_image(item.lr) if item.lr else None
    return {"scores": [_score(v) for v in judge.score_many(images, lr=lr)]}


def _abstain(kind: str, item: Any, _reason: str) -> dict[str, Any]:
    if kind == "mos":
        return {"score": None}
    if kind == "pairwise":
        return {"a": None, "b": None, "winner": "tie", "position_consistency": None}
    return {"scores": [None] * len(item.candidates)}


def _images(kind: str, item: Any) -> int:
    return {"mos": 1, "pairwise": 2}.get(kind) or len(item.candidates)


def _collect(
    kind: str, task: BenchTask, rows: list[dict[str, Any]], result: JudgeResult, consistency: list[Any]
) -> None:
    """The predictions (and winners, position consistency) of one item's rows."""
    if kind == "mos":
        result.predictions[task.key] = [row["score"] for row in rows]
    elif kind == "pairwise":
        result.predictions[task.key] = [v for row in rows for v in (row["a"], row["b"])]
        result.extra.setdefault("winners", []).append([row["winner"] for row in rows])
        consistency += [row.get("position_consistency") for row in rows]
    else:
        result.predictions[task.key] = [v for row in rows for v in row["scores"]]


def mean_prediction(values: Sequence[float | None]) -> float:
    """Mean over repeats that did not abstain; NaN when all abstained."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else math.nan


def check_repeats(repeats: int) -> int:
    if repeats < 1:
        raise SrjudgeError(f"--repeats must be at least 1, got {repeats}.")
    return repeats
