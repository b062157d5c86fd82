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
from srjudge.images.io import load_image
from srjudge.judges.base import Judge, Verdict
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
) -> JudgeResult:
    """Score every item ``repeats`` times (streamed, resumable) and time it."""
    config_hash = judge.provenance().config_hash
    scores = JsonlStore(out_dir / "scores" / f"{judge_slug(judge.spec)}.jsonl", config_hash)
    run = _Scoring(judge, scores, JudgeResult(judge.spec, config_hash), repeats, progress)
    started = time.perf_counter()
    try:
        if isinstance(dataset, MOSDataset):
            _run_mos(dataset, run)
        elif isinstance(dataset, PairwiseDataset):
            _run_pairwise(dataset, run)
        else:
            _run_best_of_n(dataset, run)
    finally:
        scores.close()
    result = run.result
    result.seconds = time.perf_counter() - started
    result.summary = judge.summary()
    return result


def files_digest(paths: Sequence[Path | None]) -> str:
    """One digest of the contents of an item's files: a file changed in place is a new item."""
    h = hashlib.sha256()
    for path in paths:
        h.update((file_sha256(path) if path is not None else "-").encode())
    return h.hexdigest()[:16]


@dataclass
class _Scoring:
    """One judge's pass over a dataset: its score file, its result, the repeats and the progress callback."""

    judge: Judge
    scores: JsonlStore
    result: JudgeResult
    repeats: int
    progress: Progress | None

    def rows(
        self,
        key: str,
        images: int,
        compute: Callable[[Judge], dict[str, Any]],
        abstain: Callable[[str], dict[str, Any]],
        digest: str,
    ) -> list[dict[str, Any]]:
        """One row per repeat of the item ``key`` (``compute`` gets the judge of that repeat)."""
        return [self._row(key, r, images, compute, abstain, digest) for r in range(self.repeats)]

    def _row(
        self,
        key: str,
        repeat: int,
        images: int,
        compute: Callable[[Judge], dict[str, Any]],
        abstain: Callable[[str], dict[str, Any]],
        digest: str,
    ) -> dict[str, Any]:
        """The stored prediction for repeat ``repeat`` of ``key`` made from the same file contents, or a
        new one (flushed at once); a judge error is an abstention."""
        key = f"{key}#{repeat}"
        row = self.scores.get(key)
        if row is not None and row.get("digest") == digest:
            self.result.reused += 1
            return row
        try:
            row = compute(self.judge.for_repeat(repeat))
        except SrjudgeError as exc:  # the judge cannot score this item: it abstains, and says why
            row = {**abstain(str(exc)), "error": str(exc)}
        row["digest"] = digest
        self.scores.put(key, row)
        self.result.images += images
        return row

    def done(self, n: int, total: int) -> None:
        if self.progress:
            self.progress(self.judge.spec, n, total)


def _run_mos(ds: MOSDataset, run: _Scoring) -> None:
    for n, item in enumerate(ds.items, 1):

        def compute(judge: Judge, item: Any = item) -> dict[str, Any]:
            verdict = judge.score(load_image(item.image), lr=_opt(item.lr), hr=_opt(item.ref))
            return {"score": _score(verdict), "raw": verdict.raw, "tags": list(verdict.tags)}

        digest = files_digest([item.image, item.lr, item.ref])
        rows = run.rows(str(item.image), 1, compute, lambda _: {"score": None}, digest)
        run.result.predictions[str(item.image)] = [row["score"] for row in rows]
        run.done(n, len(ds.items))


def _run_pairwise(ds: PairwiseDataset, run: _Scoring) -> None:
    consistency: list[Any] = []
    for n, item in enumerate(ds.items, 1):

        def compute(judge: Judge, item: Any = item) -> dict[str, Any]:
            comparison = judge.compare(load_image(item.a), load_image(item.b), lr=_opt(item.lr))
            return {
                "a": _score(comparison.verdict_a),
                "b": _score(comparison.verdict_b),
                "winner": comparison.winner,
                "position_consistency": comparison.position_consistency,
            }

        def abstain(_: str) -> dict[str, Any]:
            return {"a": None, "b": None, "winner": "tie", "position_consistency": None}

        digest = files_digest([item.a, item.b, item.lr])
        rows = run.rows(f"{item.a}|{item.b}", 2, compute, abstain, digest)
        run.result.predictions[f"{item.a}|{item.b}"] = [v for row in rows for v in (row["a"], row["b"])]
        run.result.extra.setdefault("winners", []).append([row["winner"] for row in rows])
        consistency += [row.get("position_consistency") for row in rows]
        run.done(n, len(ds.items))
    run.result.extra["position_consistency"] = consistency


def _run_best_of_n(ds: BestOfNDataset, run: _Scoring) -> None:
    for n, group in enumerate(ds.groups, 1):
        count = len(group.candidates)

        def abstain(_: str, count: int = count) -> dict[str, Any]:
            return {"scores": [None] * count}

        def compute(judge: Judge, group: Any = group) -> dict[str, Any]:
            images = [load_image(p) for p in group.candidates]
            lr = load_image(group.lr) if group.lr else None
            verdicts = judge.score_many(images, lr=lr)
            return {"scores": [_score(v) for v in verdicts]}

        digest = files_digest([group.lr, *group.candidates])
        rows = run.rows(group.group, count, compute, abstain, digest)
        run.result.predictions[group.group] = [v for row in rows for v in row["scores"]]
        run.done(n, len(ds.groups))


def mean_prediction(values: Sequence[float | None]) -> float:
    """Mean over repeats that did not abstain; NaN when all abstained."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else math.nan


def check_repeats(repeats: int) -> int:
    if repeats < 1:
        raise SrjudgeError(f"--repeats must be at least 1, got {repeats}.")
    return repeats
