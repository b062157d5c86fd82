"""Judging image files: loads them (through :mod:`srjudge.images.io`) and calls a judge.

The ranking JSON written by ``srjudge rank`` is a stable, documented format (``RANKING_SCHEMA``):
later tools (selection, fusion, bench) read it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.images.io import DEFAULT_MAX_PIXELS, load_image
from srjudge.judges.base import Judge, Ranking, Verdict

RANKING_SCHEMA = "srjudge.ranking/1"
SCORES_SCHEMA = "srjudge.scores/1"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScoreRecord:
    path: str
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, **self.verdict.to_dict()}


def score_files(
    paths: Sequence[Path],
    judge: Judge,
    *,
    lr_path: Path | None = None,
    hr_path: Path | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
) -> list[ScoreRecord]:
    """Score each image on its own (with the same optional LR input and HR reference)."""
    lr = load_image(lr_path, max_pixels=max_pixels) if lr_path else None
    hr = load_image(hr_path, max_pixels=max_pixels) if hr_path else None
    records = []
    for i, path in enumerate(paths):
        image = load_image(path, max_pixels=max_pixels)
        records.append(ScoreRecord(str(path), judge.score(image, lr=lr, hr=hr)))
        if progress:
            progress(i + 1, len(paths))
    return records


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
