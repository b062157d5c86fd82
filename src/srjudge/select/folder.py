"""Selection over many LR inputs: a folder with one sub-folder per LR input, or a manifest.

Layout: ``ROOT/<item>/lr.<ext>`` (required), optional ``hr.<ext>``, and the candidates either in
``ROOT/<item>/candidates/`` or as the other images of ``ROOT/<item>/`` (``srjudge generate``
writes exactly this). A manifest (CSV or JSONL, paths relative to it) has one row per candidate
with columns ``item``, ``lr``, ``candidate`` and optionally ``hr``.

Resumable: each item's ``selection.json`` records the judge's config hash and the settings; an
item whose record matches is skipped on a re-run, and ``selections.csv`` is appended and flushed
item by item, so an interruption loses at most the item in progress.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srjudge import atomic
from srjudge.errors import SrjudgeError
from srjudge.execute import Executor, ExecutorSpec, LocalExecutor, PerWorker
from srjudge.images.io import IMAGE_SUFFIXES, load_image, save_png
from srjudge.judges.base import Judge
from srjudge.judges.per_worker import judge_handle
from srjudge.judges.tws import TWSJudge
from srjudge.provenance import file_sha256
from srjudge.select.selection import Selection, select_best


@dataclass(frozen=True)
class Item:
    name: str
    lr: Path
    candidates: tuple[Path, ...]
    hr: Path | None = None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def manifest_candidates(folder: Path) -> list[Path] | None:
    """The candidates ``generate`` recorded in ``folder/manifest.json`` (None without a readable one)."""
    try:
        entries = json.loads((folder / "manifest.json").read_text())["candidates"]
        return [folder / str(e["file"]) for e in entries if (folder / str(e["file"])).is_file()]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return None


def items_from_folder(root: Path) -> list[Item]:
    """One item per sub-folder holding ``lr.<ext>``; errors list every malformed sub-folder at once.

    A sub-folder written by ``generate`` is read through its ``manifest.json``; others by their images.
    """
    if not root.is_dir():
        raise SrjudgeError(f"{root}: not a folder.")
    items, problems = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = _images_in(sub)
        lr = [f for f in files if f.stem.lower() == "lr"]
        hr = [f for f in files if f.stem.lower() == "hr"]
        if not lr:
            problems.append(f"{sub}: no lr.<png|jpg|...> file")
            continue
        cand_dir = sub / "candidates"
        manifest = manifest_candidates(sub)
        if manifest is not None:  # generate's record: its candidates, in its order
            candidates = manifest
        else:
            candidates = _images_in(cand_dir) if cand_dir.is_dir() else [f for f in files if f not in lr + hr]
        if len(candidates) < 1:
            problems.append(f"{sub}: no candidate images")
            continue
        items.append(Item(sub.name, lr[0], tuple(candidates), hr[0] if hr else None))
    if problems:
        raise SrjudgeError("Folder layout problems:\n  " + "\n  ".join(problems))
    if not items:
        raise SrjudgeError(
            f"{root}: no sub-folders with an lr image and candidates (see `srjudge select --help`)."
        )
    return items


def items_from_manifest(path: Path) -> list[Item]:
    """Rows (item, lr, candidate[, hr]) from CSV or JSONL, grouped by item; problems name their rows."""
    if not path.is_file():
        raise SrjudgeError(f"{path}: no such manifest.")
    base = path.parent
    rows: list[dict[str, str]]
    if path.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SrjudgeError(f"{path}:{n}: not valid JSON ({exc.msg}).") from None
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    problems: list[str] = []
    grouped: dict[str, dict[str, object]] = {}
    for n, row in enumerate(rows, 1):
        missing = [k for k in ("item", "lr", "candidate") if not row.get(k)]
        if missing:
            problems.append(f"row {n}: missing {', '.join(missing)}")
            continue
        entry = grouped.setdefault(row["item"], {"lr": row["lr"], "hr": row.get("hr"), "candidates": []})
        if entry["lr"] != row["lr"]:
            problems.append(
                f"row {n}: item {row['item']!r} has two LR inputs ({entry['lr']} and {row['lr']})"
            )
        cands = entry["candidates"]
        assert isinstance(cands, list)
        if row["candidate"] in cands:
            problems.append(f"row {n}: duplicate candidate {row['candidate']!r} for item {row['item']!r}")
        cands.append(row["candidate"])
        for key in ("lr", "candidate", "hr"):
            value = row.get(key)
            if value and not (base / value).is_file():
                problems.append(f"row {n}: {key} file {value!r} not found (relative to {base})")
    if problems:
        raise SrjudgeError(f"{path}: manifest problems:\n  " + "\n  ".join(problems))
    if not grouped:
        raise SrjudgeError(f"{path}: the manifest lists no items; it needs rows of item, lr, candidate[, hr]")
    return [
        Item(
            name,
            base / str(e["lr"]),
            tuple(base / c for c in e["candidates"]),  # type: ignore[attr-defined]
            base / str(e["hr"]) if e.get("hr") else None,
        )
        for name, e in grouped.items()
    ]


@dataclass
class FolderSummary:
    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chosen: dict[str, str] = field(default_factory=dict)
    """Item -> the chosen candidate's file name (new and resumed items)."""


def write_selection(
    folder: Path,
    selection: Selection,
    images: Sequence[np.ndarray],
    *,
    item: str | None = None,
    fingerprint: dict[str, Any] | None = None,
    lr: Path | None = None,
) -> Path:
    """``chosen.png``, ``fused.png`` and ``selection.json`` (written last and atomically, so that a record
    only exists once its images do); single-image ``select`` and folder mode both write through here.

    When the LR sits beside generate's ``manifest.json``, each candidate's backend, settings and seed
    go into the record too.
    """
    save_png(folder / "chosen.png", images[selection.chosen])
    save_png(folder / "fused.png", selection.fused)
    payload: dict[str, Any] = selection.to_dict()
    if item is not None:
        payload["item"] = item
    if fingerprint is not None:
        payload["fingerprint"] = fingerprint
    manifest = lr.parent / "manifest.json" if lr is not None else None
    if manifest is not None and manifest.is_file():
        try:
            payload["candidates_provenance"] = json.loads(manifest.read_text()).get("candidates", [])
        except json.JSONDecodeError:
            payload["candidates_provenance"] = []
    return atomic.write_json(folder / "selection.json", payload)


def _inputs_digest(item: Item) -> str:
    """Digest of an item's LR, HR and candidate files (names and contents)."""
    h = hashlib.sha256()
    for path in (item.lr, item.hr, *item.candidates):
        h.update(f"{path.name if path else '-'}:{file_sha256(path) if path else '-'}\n".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class SelectOutcome:
    """What the work did for one item: selected now (with its ``selections.csv`` row) or resumed."""

    name: str
    chosen: str
    """The chosen candidate's file name."""
    row: tuple[str, ...] | None = None
    """The ``selections.csv`` row of a new selection; None when the item was already done."""


@dataclass(frozen=True)
class SelectWork:
    """Selecting for one item: writes its images and ``selection.json`` (atomically), returns the CSV row.

    Skips an item whose record holds the same fingerprint (settings and input contents).
    """

    judge: PerWorker[Judge]
    out_dir: Path
    fingerprint: tuple[tuple[str, Any], ...]
    top_k: int = 3
    fuse_method: str = "median"
    tws: PerWorker[TWSJudge] | None = None

    def __call__(self, item: Item) -> SelectOutcome:
        folder = self.out_dir / item.name
        record = folder / "selection.json"
        # the settings and the inputs' contents: an added, removed or changed candidate is a new choice
        item_fingerprint = {**dict(self.fingerprint), "inputs": _inputs_digest(item)}
        if record.exists():
            try:
                previous = json.loads(record.read_text())
            except json.JSONDecodeError:
                previous = {}
            if previous.get("fingerprint") == item_fingerprint:
                return SelectOutcome(item.name, Path(previous.get("chosen", {}).get("path", "?")).name)
        judge = self.judge.get()
        images = [load_image(p) for p in item.candidates]
        lr = load_image(item.lr)
        hr = load_image(item.hr) if item.hr else None
        selection = select_best(
            images,
            [str(p) for p in item.candidates],
            judge,
            lr=lr,
            hr=hr,
            top_k=self.top_k,
            fuse_method=self.fuse_method,
            tws=self.tws.get() if self.tws is not None else None,
            lr_name=str(item.lr),
            hr_name=str(item.hr) if item.hr else None,
        )
        write_selection(folder, selection, images, item=item.name, fingerprint=item_fingerprint, lr=item.lr)
        best = selection.result.ranking.best.verdict
        chosen = item.candidates[selection.chosen].name
        row = (
            item.name,
            chosen,
            f"{best.score:.4f}",
            f"{selection.tws_candidates[selection.chosen]:.2f}",
            f"{selection.tws_fused:.2f}",
            self.fuse_method,
            judge.spec,
        )
        return SelectOutcome(item.name, chosen, row)


def select_items(
    items: Iterable[Item],
    judge: Judge,
    out_dir: Path,
    *,
    top_k: int = 3,
    fuse_method: str = "median",
    tws: TWSJudge | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    executor: Executor | None = None,
) -> FolderSummary:
    """Select and fuse for every item; resumable; a bad item is reported and the run goes on.

    ``executor`` (default: this process) runs the items; each worker writes its items' images and
    ``selection.json`` atomically, and ``selections.csv`` gets its rows here, in item order, flushed
    one by one, so the run folder is the same whichever executor ran it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = {
        "judge": judge.spec,
        "config_hash": judge.provenance().config_hash,
        "top_k": top_k,
        "fuse": fuse_method,
    }
    work = SelectWork(
        judge_handle(judge),
        out_dir,
        tuple(fingerprint.items()),
        top_k,
        fuse_method,
        _tws_handle(tws) if tws is not None else None,
    )
    total = len(items) if isinstance(items, Sized) else 0
    summary = FolderSummary(out_dir)
    csv_path = out_dir / "selections.csv"
    new_file = not csv_path.exists()
    with csv_path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new_file:
            writer.writerow(["item", "chosen", "score", "chosen_tws", "fused_tws", "fuse", "judge"])
            handle.flush()
        for n, outcome in enumerate((executor or LocalExecutor(ExecutorSpec())).map(work, items), 1):
            name = outcome.item.name
            result = outcome.value
            if result is None:  # its error record: the run goes on
                summary.failed.append((name, str(outcome.error)))
            elif result.row is None:
                summary.skipped.append(name)
                summary.chosen[name] = result.chosen
            else:
                writer.writerow(list(result.row))
                handle.flush()
                summary.done.append(name)
                summary.chosen[name] = result.chosen
            if progress:
                progress(n, total, name)
    return summary


def _tws_handle(tws: TWSJudge) -> PerWorker[TWSJudge]:
    handle: PerWorker[Any] = judge_handle(tws)
    return handle
