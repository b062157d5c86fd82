"""Making candidates for many LR inputs with one or more SR backends, with a manifest of every setting.

Layout (what ``srjudge select`` reads in folder mode): ``OUT/<name>/lr.png``,
``OUT/<name>/candidates/<backend>_s<seed>.png`` and ``OUT/<name>/manifest.json`` holding each
candidate's backend spec, settings and seed. Existing candidates are kept (resume).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srjudge import atomic
from srjudge.errors import SrjudgeError
from srjudge.execute import Executor, ExecutorSpec, LocalExecutor, PerWorker
from srjudge.images.io import load_image, save_png
from srjudge.sr.base import SRBackend
from srjudge.sr.per_worker import backend_handle

MANIFEST_SCHEMA = "srjudge.candidates/1"


def _slug(spec: str) -> str:
    """A file name for a backend spec: the whole spec (options included, so that two settings of one
    backend never share a file), with a path argument reduced to its last part."""
    name, _, options = spec.partition(",")
    text = name.replace(":", "-").split("/")[-1] + (f"-{options}" if options else "")
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "sr"


def _usable(file: Path, shape: tuple[int, int]) -> bool:
    """A kept candidate must read back whole and have this run's size (another scale is not kept)."""
    if not file.is_file():
        return False
    try:
        return load_image(file).shape[:2] == shape
    except SrjudgeError:  # cut or damaged by an interruption: made again
        return False


@dataclass(frozen=True)
class GenerateWork:
    """Every backend's candidates for one LR input, its ``lr.png`` and ``manifest.json`` (written
    atomically in the worker); returns the input's name and manifest entries."""

    backends: tuple[PerWorker[SRBackend], ...]
    out_dir: Path
    scale: int = 4
    samples: int = 1
    seed: int = 0

    def __call__(self, path: str) -> tuple[str, list[dict[str, Any]]]:
        source = Path(path)
        name = source.stem
        folder = self.out_dir / name
        lr = load_image(source)
        if not (folder / "lr.png").is_file() or not np.array_equal(load_image(folder / "lr.png"), lr):
            save_png(folder / "lr.png", lr)  # a resumed run leaves an unchanged input untouched
        entries: list[dict[str, Any]] = []
        for handle in self.backends:
            backend = handle.get()
            for sample_seed in backend.sample_seeds(self.samples, self.seed):
                suffix = "" if sample_seed is None else f"_s{sample_seed}"
                file = folder / "candidates" / f"{_slug(backend.spec)}{suffix}.png"
                if not _usable(file, (lr.shape[0] * self.scale, lr.shape[1] * self.scale)):
                    image = backend.upscale(lr, scale=self.scale, seed=sample_seed)
                    save_png(file, image)
                entries.append(
                    {
                        "file": str(file.relative_to(folder)),
                        "backend": backend.spec,
                        "family": backend.family,
                        "seed": sample_seed,
                        "scale": self.scale,
                        "settings": backend.settings(),
                    }
                )
        manifest = {"schema": MANIFEST_SCHEMA, "lr": "lr.png", "source": str(path), "candidates": entries}
        text = json.dumps(manifest, indent=2)
        target = folder / "manifest.json"
        if not target.is_file() or target.read_text() != text:
            atomic.write_text(target, text)
        return name, entries


def generate_folder(
    lr_paths: Sequence[Path],
    backends: Sequence[SRBackend],
    out_dir: Path,
    *,
    scale: int = 4,
    samples: int = 1,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    executor: Executor | None = None,
    failed: list[tuple[str, str]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Candidates for every LR input from every backend; returns the per-input manifests.

    ``executor`` (default: this process) runs one LR input per task; each backend is built once per
    worker. An input that fails is added to ``failed`` (name, reason) and the others go on; without
    ``failed`` the failures are raised together at the end as one :class:`SrjudgeError`.
    """
    if samples < 1:
        raise SrjudgeError(f"--samples must be at least 1, got {samples}.")
    names = [p.stem for p in lr_paths]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        listing = "; ".join(
            f"{name}: " + ", ".join(str(p) for p in lr_paths if p.stem == name) for name in clashes
        )
        raise SrjudgeError(
            f"LR inputs share file names, and each names its output folder ({listing}): "
            "rename them or generate them into separate --out folders."
        )
    out_dir.mkdir(parents=True, exist_ok=True)  # a path problem is the caller's, not one per item
    work = GenerateWork(tuple(backend_handle(b) for b in backends), out_dir, scale, samples, seed)
    manifests: dict[str, list[dict[str, Any]]] = {}
    errors: list[tuple[str, str]] = []
    pool = executor or LocalExecutor(ExecutorSpec())
    for n, outcome in enumerate(pool.map(work, (str(p) for p in lr_paths)), 1):
        name = Path(outcome.item).stem
        if outcome.value is None:
            errors.append((name, str(outcome.error)))
        else:
            manifests[name] = outcome.value[1]
        if progress:
            progress(n, len(lr_paths), name)
    if failed is not None:
        failed.extend(errors)
    elif errors:
        raise SrjudgeError("generate failed for " + "; ".join(f"{name}: {why}" for name, why in errors))
    return manifests
