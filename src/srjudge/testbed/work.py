"""The testbed experiment's units of work, runnable on any executor (:mod:`srjudge.execute`).

Three stages, each a picklable work object holding its judges, readers and SR backends as
:class:`~srjudge.execute.PerWorker` handles (built once per worker from their specs):

* :class:`CandidateWork`: make and cache the missing candidates of a chunk of items (the chunk is
  the unit, so that a diffusion backend samples a whole chunk in one batch, as locally);
* :class:`ReadingWork`: the referee's readings and the TWS of a chunk of items' candidates;
* :class:`PickWork`: every judge's ranking, top-1, fused top-k and its reading for one item.

Workers write candidate files themselves (atomically, per item); readings and picks come back to
the driver, which appends them to the run's JSONL stores in input order. The chunks are the same
whatever the executor, so the records are the same as with ``--executor local``.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge.errors import SrjudgeError
from srjudge.execute import PerWorker
from srjudge.images.io import load_image, quantize_8bit
from srjudge.testbed.results import ExperimentConfig, jsonable

if TYPE_CHECKING:
    from srjudge.judges.base import Judge
    from srjudge.readers.base import Reader
    from srjudge.sr.base import SRBackend


def reader_handle(reader: Reader) -> PerWorker[Reader]:
    """``reader`` for work objects: used as is in the driver, rebuilt once per worker from its spec."""
    from srjudge.readers import create_reader

    return PerWorker(
        f"reader:{reader.spec}", functools.partial(create_reader, str(reader.spec)), local=reader
    )


def read_images(reader: Reader, images: Sequence[np.ndarray]) -> list[tuple[str | None, float]]:
    """(label, confidence) per image, in one call of the reader."""
    readings = list(reader.read(list(images)))
    if len(readings) != len(images):
        raise SrjudgeError(f"the referee returned {len(readings)} readings for {len(images)} images")
    return [(r.label, float(r.confidence)) for r in readings]


def tws_values(tws_judge: Judge, images: Sequence[np.ndarray], lr: np.ndarray) -> list[float | None]:
    """The TWS of each image against the LR (each independently of the others)."""
    if not images:
        return []
    # TWS scores each image against the same reference (the bicubic-upsampled LR), independently of the
    # others, so scoring them together gives every image its own TWS.
    verdicts = tws_judge.score_many(list(images), lr=lr)
    return [None if v.score is None else round(float(v.score), 4) for v in verdicts]


def fused_image(
    images: Sequence[np.ndarray], topk: Sequence[int], scores: Sequence[float | None], method: str
) -> np.ndarray:
    """The fused top-k exactly as the run made it (also for the report's panels)."""
    from srjudge.select.fusion import fuse_scored

    return fuse_scored([images[i] for i in topk], [scores[i] for i in topk], method)  # type: ignore[arg-type]


def pick_row(
    judge: Judge,
    images: Sequence[np.ndarray],
    lr: np.ndarray,
    config: ExperimentConfig,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """One judge's record for one item (pick, top-k, order, scores, time) and its fused image."""
    from srjudge.images.resize import imresize

    hr = np.clip(imresize(lr, output_shape=images[0].shape[:2]), 0.0, 1.0) if judge.needs_hr else None
    started = time.perf_counter()
    ranking = judge.rank(images, lr=lr, hr=hr)
    seconds = time.perf_counter() - started
    scores: list[float | None] = [None] * len(images)
    for ranked in ranking.items:
        s = ranked.verdict.score
        scores[ranked.index] = None if s is None or not math.isfinite(s) else round(float(s), 6)
    order = [r.index for r in ranking.items if r.rank is not None]
    topk = order[: config.top_k]
    fused = fused_image(images, topk, scores, config.fusion) if topk else None
    row = {
        "pick": order[0] if order else None,
        "topk": topk,
        "order": order,
        "scores": scores,
        "abstained_candidates": len(images) - len(order),
        "seconds": round(seconds, 6),
    }
    return row, fused


@dataclass(frozen=True)
class ItemUnit:
    """One item as work sees it: its id, its LR array and (after the candidate stage) its files."""

    item_id: str
    lr: np.ndarray
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class CandidateWork:
    """Make the missing candidates of a chunk of items with every backend and cache them."""

    backends: tuple[PerWorker[SRBackend], ...]
    specs: tuple[str, ...]
    cache_root: Path
    samples: int
    seed: int
    scale: int
    testbed: str

    def __call__(self, chunk: Sequence[ItemUnit]) -> int:
        from srjudge.testbed.candidates import CandidateCache, check_output, wanted_entries

        cache = CandidateCache(self.cache_root)
        lrs = {u.item_id: u.lr for u in chunk}
        new: dict[str, dict[str, tuple[np.ndarray, Mapping[str, Any]]]] = {u.item_id: {} for u in chunk}
        made = 0
        for handle, spec in zip(self.backends, self.specs, strict=True):
            backend = handle.get()
            todo = []
            for u in chunk:
                index = cache.load_index(u.item_id)
                wanted = wanted_entries([backend], [spec], self.samples, self.seed, u.item_id, self.testbed)
                todo += [(u.item_id, e) for e in wanted if e.key() not in index]
            if not todo:
                continue
            images = backend.sample(
                [lrs[i] for i, _ in todo], scale=self.scale, seeds=[e.seed for _, e in todo]
            )
            for (item_id, entry), image in zip(todo, images, strict=True):
                check_output(image, lrs[item_id], self.scale, spec)
                record = {"backend": spec, "seed": entry.seed, "settings": jsonable(backend.settings())}
                new[item_id][entry.key()] = (quantize_8bit(image), record)
                made += 1
        for u in chunk:
            cache.store(u.item_id, new[u.item_id])
        return made


@dataclass(frozen=True)
class ReadingWork:
    """The referee's reading and the TWS of every candidate of a chunk of items (one reader call)."""

    reader: PerWorker[Reader]
    tws: PerWorker[Judge]

    def __call__(self, chunk: Sequence[ItemUnit]) -> list[dict[str, Any]]:
        images = {u.item_id: [load_image(p) for p in u.files] for u in chunk}
        flat = [im for u in chunk for im in images[u.item_id]]
        readings = iter(read_images(self.reader.get(), flat))
        rows = []
        for u in chunk:
            got = [next(readings) for _ in images[u.item_id]]
            rows.append(
                {
                    "labels": [lab for lab, _ in got],
                    "confidences": [round(c, 6) for _, c in got],
                    "tws": tws_values(self.tws.get(), images[u.item_id], u.lr),
                }
            )
        return rows


@dataclass(frozen=True)
class PickWork:
    """Every listed judge's record for one item, with its fused top-k read by the referee."""

    judges: tuple[tuple[str, PerWorker[Judge]], ...]
    reader: PerWorker[Reader]
    tws: PerWorker[Judge]
    config: ExperimentConfig

    def __call__(self, unit: tuple[ItemUnit, tuple[str, ...]]) -> dict[str, dict[str, Any]]:
        item, specs = unit
        images = [load_image(p) for p in item.files]
        rows: list[tuple[str, dict[str, Any], np.ndarray | None]] = []
        for spec, handle in self.judges:
            if spec in specs:
                row, fused = pick_row(handle.get(), images, item.lr, self.config)
                rows.append((spec, row, fused))
        fused_list = [f for _, _, f in rows if f is not None]
        fused_readings = iter(read_images(self.reader.get(), fused_list) if fused_list else [])
        fused_tws = iter(tws_values(self.tws.get(), fused_list, item.lr))
        out: dict[str, dict[str, Any]] = {}
        for spec, row, fused in rows:
            label, conf, ftws = None, 0.0, None
            if fused is not None:
                label, conf = next(fused_readings)
                ftws = next(fused_tws)
            row.update({"fused_label": label, "fused_confidence": round(conf, 6), "fused_tws": ftws})
            out[spec] = row
        return out
