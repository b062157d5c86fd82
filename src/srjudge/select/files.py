"""Judging image files: loads them (through :mod:`srjudge.images.io`) and calls a judge.

The ranking JSON written by ``srjudge rank`` is a stable, documented format (``RANKING_SCHEMA``):
later tools (selection, fusion, bench) read it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.errors import SrjudgeError
from srjudge.execute import Executor, ExecutorSpec, LocalExecutor, PerWorker, worker_lru
from srjudge.images.io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, load_image
from srjudge.judges.base import Judge, Ranking, Verdict
from srjudge.judges.per_worker import judge_handle

RANKING_SCHEMA = "srjudge.ranking/1"
SCORES_SCHEMA = "srjudge.scores/1"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScoreRecord:
    path: str
    verdict: Verdict
    lr: str | None = None
    hr: str | None = None
    error: str | None = None
    """Why the image could not be scored at all (unreadable...); its verdict is then an abstention."""

    def to_dict(self) -> dict[str, Any]:
        record = {"path": self.path, "lr": self.lr, "hr": self.hr, **self.verdict.to_dict()}
        if self.error is not None:
            record["error"] = self.error
        return record


def pair_references(
    inputs: Sequence[Path],
    reference: Path | None,
    *,
    what: str,
    option: str,
    pattern: str = "{stem}",
    one_for_all: bool = False,
) -> list[Path | None]:
    """The reference (HR or LR) of each input: a folder pairs by name, a single file needs consent.

    ``pattern`` names an input's reference from its stem, e.g. ``{stem}`` (the default: same name,
    any image suffix) or ``{stem}x4`` (BasicSR's LR names). One file for several inputs is refused
    unless ``one_for_all``: comparing a cat with an astronaut gives a number, not an answer.
    """
    if reference is None:
        return [None] * len(inputs)
    if reference.is_file():
        if len(inputs) > 1 and not one_for_all:
            raise SrjudgeError(
                f"{option} {reference} is one file but {len(inputs)} images were given: pass a folder to "
                f"pair them by name, or {option}-for-all to compare every image with this one file."
            )
        return [reference] * len(inputs)
    if not reference.is_dir():
        raise SrjudgeError(f"{option} {reference}: no such file or folder.")
    if "{stem}" not in pattern:
        raise SrjudgeError(f"The {what} name pattern {pattern!r} must contain {{stem}}, e.g. '{{stem}}x4'.")
    by_name: dict[str, list[Path]] = {}
    for file in reference.iterdir():
        if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
            by_name.setdefault(file.stem, []).append(file)
    pairs: list[Path | None] = []
    missing, ambiguous = [], []
    for path in inputs:
        name = pattern.format(stem=path.stem)
        found = by_name.get(name, [])
        if len(found) > 1:
            ambiguous.append(f"{name} ({', '.join(f.name for f in sorted(found))})")
        elif not found:
            missing.append(f"{path.name} -> {name}.*")
        pairs.append(found[0] if len(found) == 1 else None)
    if missing or ambiguous:
        lines = [f"{option} {reference}: cannot pair every image with its {what} by name ({pattern!r})."]
        if missing:
            more = " ..." if len(missing) > 10 else ""
            lines.append(f"  no {what} for {len(missing)}: " + ", ".join(missing[:10]) + more)
        if ambiguous:
            lines.append("  several files for: " + ", ".join(ambiguous[:10]))
        lines.append(f"  Rename the files, or give the pattern (e.g. --{what.lower()}-pattern '{{stem}}x4').")
        raise SrjudgeError("\n".join(lines))
    return pairs


@dataclass(frozen=True)
class ScoreItem:
    """One image to score, with its paired LR input and HR reference (paths)."""

    path: str
    lr: str | None = None
    hr: str | None = None


def _reference(path: str | None, max_pixels: int | None) -> np.ndarray | None:
    """A decoded LR/HR reference, shared by the items of a worker (one LR for many candidates)."""
    if path is None:
        return None
    stat = Path(path).stat()
    key = (path, stat.st_mtime_ns, stat.st_size, max_pixels)
    image: np.ndarray = worker_lru("references").get(key, lambda: load_image(path, max_pixels=max_pixels))
    return image


@dataclass(frozen=True)
class ScoreWork:
    """Scoring one image (the work of ``srjudge score`` on any executor)."""

    judge: PerWorker[Judge]
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __call__(self, item: ScoreItem) -> ScoreRecord:
        judge = self.judge.get()
        image = load_image(item.path, max_pixels=self.max_pixels)
        try:
            verdict = judge.score(
                image, lr=_reference(item.lr, self.max_pixels), hr=_reference(item.hr, self.max_pixels)
            )
        except SrjudgeError as exc:  # this image cannot be judged (too small, ...): say which, go on
            verdict = judge.abstention(f"{Path(item.path).name}: {exc}")
        return ScoreRecord(item.path, verdict, item.lr, item.hr)


def iter_score_files(
    paths: Iterable[Path],
    judge: Judge,
    *,
    lr_paths: Iterable[Path | None] | None = None,
    hr_paths: Iterable[Path | None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    executor: Executor | None = None,
) -> Iterator[ScoreRecord]:
    """:func:`score_files` streamed: one record per image, in input order, as the executor makes them.

    An image that cannot be read gets an abstained record whose ``error`` says why; the run goes on.
    """
    lrs = lr_paths if lr_paths is not None else itertools.repeat(None)
    hrs = hr_paths if hr_paths is not None else itertools.repeat(None)
    items = (
        ScoreItem(str(path), str(lr) if lr else None, str(hr) if hr else None)
        for path, lr, hr in zip(paths, lrs, hrs)  # noqa: B905  (LR/HR may repeat without end)
    )
    work = ScoreWork(judge_handle(judge), max_pixels)
    for outcome in (executor or LocalExecutor(ExecutorSpec())).map(work, items):
        if outcome.value is not None:
            yield outcome.value
        else:
            item = outcome.item
            reason = f"{Path(item.path).name}: {outcome.error}"
            yield ScoreRecord(item.path, judge.abstention(reason), item.lr, item.hr, error=outcome.error)


def score_files(
    paths: Sequence[Path],
    judge: Judge,
    *,
    lr_paths: Sequence[Path | None] | None = None,
    hr_paths: Sequence[Path | None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> list[ScoreRecord]:
    """Score each image on its own, with its own LR input and HR reference (see :func:`pair_references`).

    ``executor`` (default: this process, one image at a time) runs the images; the records are the
    same, in the same order, whichever executor runs them.
    """
    lrs = list(lr_paths) if lr_paths is not None else [None] * len(paths)
    hrs = list(hr_paths) if hr_paths is not None else [None] * len(paths)
    if not len(lrs) == len(hrs) == len(paths):
        raise ValueError("one LR and one HR entry (or None) per image")
    records = []
    stream = iter_score_files(
        paths, judge, lr_paths=lrs, hr_paths=hrs, max_pixels=max_pixels, executor=executor
    )
    for i, record in enumerate(stream):
        records.append(record)
        if progress:
            progress(i + 1, len(paths))
    return records


def mean_score(records: Sequence[ScoreRecord]) -> dict[str, Any]:
    """Mean raw value and mean 0-100 score over the records that did not abstain (pyiqa's summary line)."""
    scored = [r.verdict for r in records if not r.verdict.abstained and r.verdict.raw is not None]
    finite = [v for v in scored if np.isfinite(v.raw)]  # type: ignore[arg-type]
    return {
        "n": len(records),
        "scored": len(scored),
        "abstained": len(records) - len(scored),
        "mean_value": float(np.mean([v.raw for v in finite])) if finite else None,
        "mean_score": float(np.mean([v.score for v in scored])) if scored else None,
        "infinite_values": len(scored) - len(finite),
    }


@dataclass(frozen=True)
class RankResult:
    """A ranking of candidate files with the inputs it was made from."""

    ranking: Ranking
    paths: tuple[str, ...]
    lr: str | None
    hr: str | None

    def best_path(self) -> str:
        return self.paths[self.ranking.best.index]

    def to_dict(self) -> dict[str, Any]:
        """The stable ranking JSON (schema ``srjudge.ranking/1``), best candidate first."""
        first = self.ranking.items[0].verdict
        return {
            "schema": RANKING_SCHEMA,
            "judge": self.ranking.judge,
            "provenance": first.provenance.to_dict(),
            "lr": self.lr,
            "hr": self.hr,
            "candidates": [
                {
                    "rank": item.rank,
                    "path": self.paths[item.index],
                    "index": item.index,
                    "score": item.verdict.to_dict()["score"],
                    "raw": item.verdict.to_dict()["raw"],
                    "confidence": item.verdict.confidence,
                    "tags": list(item.verdict.tags),
                    "rationale": item.verdict.rationale,
                    "abstained": item.verdict.abstained,
                    "abstain_reason": item.verdict.abstain_reason,
                    "components": item.verdict.to_dict()["components"],
                }
                for item in self.ranking.items
            ],
        }


def rank_images(
    images: Sequence[np.ndarray],
    names: Sequence[str],
    judge: Judge,
    *,
    lr: np.ndarray | None = None,
    hr: np.ndarray | None = None,
    lr_name: str | None = None,
    hr_name: str | None = None,
) -> RankResult:
    ranking = judge.rank(images, lr=lr, hr=hr, names=names)
    return RankResult(ranking=ranking, paths=tuple(names), lr=lr_name, hr=hr_name)


def rank_files(
    paths: Sequence[Path],
    judge: Judge,
    *,
    lr_path: Path | None = None,
    hr_path: Path | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> RankResult:
    """Rank candidate files of one LR input, best first."""
    images = [load_image(p, max_pixels=max_pixels) for p in paths]
    lr = load_image(lr_path, max_pixels=max_pixels) if lr_path else None
    hr = load_image(hr_path, max_pixels=max_pixels) if hr_path else None
    return rank_images(
        images,
        [str(p) for p in paths],
        judge,
        lr=lr,
        hr=hr,
        lr_name=str(lr_path) if lr_path else None,
        hr_name=str(hr_path) if hr_path else None,
    )
