"""Testbed items and their SR candidates: made in batches, cached on disk and keyed by everything that
made them (backend spec and settings, seed, the testbed's data digest)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge import atomic
from srjudge.bench.store import slug
from srjudge.errors import SrjudgeError
from srjudge.images.io import save_png
from srjudge.provenance import config_hash
from srjudge.testbed.results import ExperimentConfig

if TYPE_CHECKING:
    from srjudge.execute import Executor
    from srjudge.sr.base import SRBackend
    from srjudge.testbed.build import Manifest, TestbedItem

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Item:
    """One LR input of a run: its truth, and its LR image (loaded on demand)."""

    item_id: str
    label: str
    severity: int
    source: str
    lr_path: Path | None
    lr: Callable[[], np.ndarray]


def testbed_items(testbed: Path, split: str, limit: int | None) -> tuple[list[Item], dict[str, Any], int]:
    """The first ``limit`` items of ``split`` of a built testbed, its identity (for the settings) and its
    LR scale."""
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
        Item(
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


def _manifest_lr(manifest: Manifest, item: TestbedItem) -> np.ndarray:
    return np.asarray(manifest.lr(item), dtype=np.float32)


def _manifest_info(manifest: Manifest, testbed: Path) -> dict[str, Any]:
    """The testbed's identity for the settings: folder, data digest, seed, scale and HR size."""
    config = manifest.config.to_dict()
    identity = {k: config[k] for k in ("seed", "scale", "hr_size")}
    return {"folder": str(testbed), "digest": manifest.digest, **identity}


def item_seed(seed: int, item_id: str) -> int:
    """The first sample seed of an item: stable across runs, limits and orderings (depends on its id)."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF


@dataclass(frozen=True)
class CandidateKey:
    """What one candidate is made from: the backend spec, the seed (None: deterministic) and the
    settings hash; :meth:`key` names it in the cache."""

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


def wanted_entries(
    backends: Sequence[SRBackend], specs: Sequence[str], samples: int, seed: int, item_id: str, testbed: str
) -> list[CandidateKey]:
    """The candidates wanted for one item (its sample seeds start at :func:`item_seed`)."""
    return _entries(backends, specs, samples, item_seed(seed, item_id), testbed)


def _entries(
    backends: Sequence[SRBackend], specs: Sequence[str], samples: int, first_seed: int, testbed: str
) -> list[CandidateKey]:
    """The candidates wanted for one item; ``testbed`` (the testbed's data digest) goes into every key, so
    that a ``--out`` folder reused with a rebuilt testbed never serves outputs made from other LR images."""
    out: list[CandidateKey] = []
    for backend, spec in zip(backends, specs, strict=True):
        settings_hash = config_hash({"spec": spec, "testbed": testbed, **backend.settings()})
        out += [CandidateKey(spec, seed, settings_hash) for seed in backend.sample_seeds(samples, first_seed)]
    return out


def ensure_candidates(
    items: Sequence[Item],
    cache: CandidateCache,
    specs: Sequence[str],
    config: ExperimentConfig,
    *,
    scale: int,
    testbed: str,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> tuple[dict[str, list[tuple[CandidateKey, Path]]], int, int]:
    """Every item's candidates, made where missing (in batches) and cached; returns (sets, made, reused).

    ``testbed`` is the testbed's data digest: it is part of every cache key (see :func:`_entries`).
    """
    backends = _make_backends(specs)
    sets: dict[str, list[tuple[CandidateKey, Path]]] = {}
    missing: list[Item] = []
    reused = 0
    for item in items:
        index = cache.load_index(item.item_id)
        if not index:
            missing.append(item)
            continue
        wanted = _entries(backends, specs, config.samples, item_seed(config.seed, item.item_id), testbed)
        if all(e.key() in index for e in wanted):
            sets[item.item_id] = [(e, cache.folder(item.item_id) / index[e.key()]) for e in wanted]
            reused += len(wanted)
        else:
            missing.append(item)
    made = 0
    if missing:
        from srjudge.execute import create_executor
        from srjudge.sr.per_worker import backend_handle
        from srjudge.testbed.work import CandidateWork, ItemUnit

        work = CandidateWork(
            tuple(backend_handle(b) for b in backends), tuple(specs), cache.root, config.samples,
            config.seed, scale, testbed,
        )  # fmt: skip
        per_batch = max(1, config.batch // max(1, config.samples))
        chunks = [missing[i : i + per_batch] for i in range(0, len(missing), per_batch)]
        units = ([ItemUnit(it.item_id, it.lr()) for it in chunk] for chunk in chunks)
        done = 0
        failed: list[str] = []
        if progress:
            progress("candidates", 0, len(missing))
        for outcome in (executor or create_executor()).map(work, units):
            chunk = chunks[outcome.index]
            if outcome.error is not None:
                failed.append(f"{chunk[0].item_id}..{chunk[-1].item_id}: {outcome.error}")
                continue
            made += int(outcome.value or 0)
            for it in chunk:
                index = cache.load_index(it.item_id)
                wanted = wanted_entries(backends, specs, config.samples, config.seed, it.item_id, testbed)
                sets[it.item_id] = [(e, cache.folder(it.item_id) / index[e.key()]) for e in wanted]
            done += len(chunk)
            if progress:
                progress("candidates", done, len(missing))
        if failed:
            raise SrjudgeError(
                f"{len(failed)} chunk(s) of items got no candidates (the others are cached; a re-run "
                f"resumes): {'; '.join(failed[:3])}"
            )
    return {it.item_id: sets[it.item_id] for it in items}, made, reused


def check_output(image: np.ndarray, lr: np.ndarray, scale: int, spec: str) -> None:
    want = (lr.shape[0] * scale, lr.shape[1] * scale, 3)
    if image.shape != want:
        raise SrjudgeError(
            f"SR backend {spec!r} returned an image of shape {image.shape}, "
            f"expected {want} (x{scale} of the LR)."
        )
