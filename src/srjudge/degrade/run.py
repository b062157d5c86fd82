"""Folder runner: degrade many HR files into LR PNGs, JSON sidecar records and a run CSV.

Per image the seed is derived from the base seed and the file's relative name, so results do not
depend on processing order or on which other files are in the run. Outputs are written atomically
(PNG, then the sidecar that marks it complete, then a CSV row, flushed at once), so an interrupted run
keeps what it did and a rerun skips images whose sidecar matches.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from srjudge import atomic
from srjudge.degrade.core import check_scale, check_seed, degrade
from srjudge.degrade.pipelines import PIPELINES
from srjudge.degrade.record import DegradationRecord
from srjudge.errors import ImageError, SpecError
from srjudge.provenance import file_sha256

CSV_NAME = "degradations.csv"
"""The run table written in the output folder."""

BASE_COLUMNS = (
    "name",
    "source",
    "lr",
    "sidecar",
    "pipeline",
    "scale",
    "seed",
    "input_height",
    "input_width",
    "output_height",
    "output_width",
    "cropped",
)

OP_COLUMNS: dict[str, tuple[str, ...]] = {
    "blur": ("kernel", "size", "sigma_x", "sigma_y", "theta", "beta", "omega_c"),
    "resize": ("direction", "factor", "mode", "size"),
    "noise": ("type", "sigma", "scale", "gray"),
    "jpeg": ("quality",),
    "choice": ("order",),
    "bicubic": ("size",),
}

Status = Literal["written", "skipped", "failed"]


@dataclass(frozen=True)
class FolderItem:
    """One input file's outcome (``message`` says why when ``status`` is ``failed``)."""

    source: Path
    name: str
    seed: int
    lr_path: Path
    sidecar_path: Path
    status: Status
    message: str = ""


@dataclass(frozen=True)
class DegradeSummary:
    """What :func:`degrade_folder` did."""

    out_dir: Path
    csv_path: Path
    pipeline: str
    scale: int
    seed: int
    items: tuple[FolderItem, ...]

    @property
    def written(self) -> int:
        return sum(i.status == "written" for i in self.items)

    @property
    def skipped(self) -> int:
        return sum(i.status == "skipped" for i in self.items)

    @property
    def failed(self) -> tuple[FolderItem, ...]:
        return tuple(i for i in self.items if i.status == "failed")


ProgressCallback = Callable[[int, int, FolderItem], None]
"""Called after each image with (done so far, total, the item)."""


def derive_seed(base_seed: int, name: str) -> int:
    """A stable per-image seed from the base seed and the image's relative name (POSIX form)."""
    digest = hashlib.sha256(f"srjudge.degrade:{int(base_seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def csv_columns(pipeline: str) -> list[str]:
    """Header of the run CSV for ``pipeline``: base columns, then ``<step>_<param>`` columns."""
    entry = PIPELINES.get(pipeline)
    cols = list(BASE_COLUMNS)
    for name, op in entry.step_names:
        cols += [f"{name}_{p}" for p in OP_COLUMNS.get(op, ())]
    return cols


def csv_row(
    record: DegradationRecord, name: str, lr_path: Path, sidecar: Path, out_dir: Path
) -> dict[str, Any]:
    """The run-CSV row for one record (paths relative to the output folder)."""
    row: dict[str, Any] = {
        "name": name,
        "source": record.source or "",
        "lr": lr_path.relative_to(out_dir).as_posix(),
        "sidecar": sidecar.relative_to(out_dir).as_posix(),
        "pipeline": record.pipeline,
        "scale": record.scale,
        "seed": record.seed,
        "input_height": record.input_size[0],
        "input_width": record.input_size[1],
        "output_height": record.output_size[0],
        "output_width": record.output_size[1],
        "cropped": record.cropped,
    }
    row.update(record.flat())
    return row


def _relative_name(path: Path, root: Path | None) -> str:
    if root is None:
        return path.name
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ImageError(f"{path}: is not inside the root folder {root}.") from None


def _check_divisible(paths: list[Path], scale: int) -> None:
    """Fail before any work if some HR file's size is not a multiple of the scale (header read only)."""
    from PIL import Image

    bad = []
    for p in paths:
        try:
            with Image.open(p) as pil:
                w, h = pil.size
        except Exception:  # unreadable files are reported per image later
            continue
        if h % scale or w % scale:
            bad.append(f"{p} ({h}x{w})")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ImageError(
            f"{len(bad)} HR image(s) have a height or width that is not a multiple of scale {scale}: "
            f"{shown}. Crop them to a multiple, or pass crop=True (CLI: --crop) to trim the bottom/right "
            "edges and record the crop."
        )


def _read_record(path: Path) -> DegradationRecord | None:
    try:
        return DegradationRecord.from_json(path.read_text(encoding="utf-8"))
    except (OSError, SpecError, UnicodeDecodeError):
        return None


def _png_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as pil:
            w, h = pil.size
    except Exception:
        return None
    return h, w


def _matches(
    record: DegradationRecord | None,
    lr_path: Path,
    *,
    pipeline: str,
    scale: int,
    seed: int,
    digest: str,
    crop: bool,
) -> bool:
    """Whether existing outputs are what this run would write (same settings, same HR bytes)."""
    if record is None:
        return False
    same = (
        record.pipeline == pipeline
        and record.scale == scale
        and record.seed == seed
        and record.source_sha256 == digest
        and (crop or not record.cropped)
    )
    return same and _png_size(lr_path) == tuple(record.output_size)


def _read_old_rows(csv_path: Path) -> list[dict[str, str]]:
    if not csv_path.exists():
        return []
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def degrade_folder(
    hr_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    pipeline: str = "realesrgan",
    scale: int = 4,
    seed: int = 0,
    crop: bool = False,
    progress: ProgressCallback | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
) -> DegradeSummary:
    """Degrade HR files (or folders of them) into ``out_dir``: ``<stem>.png``, ``<stem>.json``, CSV.

    Each image's seed is :func:`derive_seed` (base ``seed``, relative name). The relative name is the
    file name, or the path under ``root`` when given (then subfolders are mirrored in ``out_dir``).
    Images whose sidecar already matches (same pipeline, scale, seed, crop setting and HR bytes) are
    skipped. Unreadable images are reported in the summary and the run goes on; an HR size that is not
    a multiple of ``scale`` stops the run before any work unless ``crop`` is set.
    """
    from srjudge.images.io import expand_image_paths, load_image, save_png

    entry_name = PIPELINES.get(pipeline).name
    scale, seed = check_scale(scale), check_seed(seed)
    out = Path(out_dir)
    root_path = Path(root) if root is not None else None
    items_in = [hr_paths] if isinstance(hr_paths, str | os.PathLike) else list(hr_paths)
    paths = expand_image_paths(items_in)

    jobs: list[tuple[Path, str, Path, Path]] = []
    claimed: dict[Path, Path] = {}
    inputs = {p.resolve() for p in paths}
    for p in paths:
        name = _relative_name(p, root_path)
        rel_stem = Path(name).with_suffix("")
        lr_path, sidecar = out / rel_stem.with_suffix(".png"), out / rel_stem.with_suffix(".json")
        if lr_path.resolve() in inputs:
            raise ImageError(
                f"{lr_path}: writing the LR image would overwrite an HR input; use another out_dir."
            )
        if lr_path in claimed:
            raise ImageError(f"{claimed[lr_path]} and {p} would both be written to {lr_path}; rename one.")
        claimed[lr_path] = p
        jobs.append((p, name, lr_path, sidecar))
    if not crop:
        _check_divisible(paths, scale)

    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / CSV_NAME
    columns = csv_columns(entry_name)
    total = len(jobs)
    items: list[FolderItem] = []
    todo: list[tuple[Path, str, Path, Path, int, str]] = []
    kept_rows: list[dict[str, Any]] = []

    # First pass: decide what can be skipped, so that its CSV rows are written before any new work.
    for p, name, lr_path, sidecar in jobs:
        image_seed = derive_seed(seed, name)
        digest = file_sha256(p)
        record = _read_record(sidecar) if sidecar.exists() else None
        ok = _matches(
            record, lr_path, pipeline=entry_name, scale=scale, seed=image_seed, digest=digest, crop=crop
        )
        if ok and record is not None:
            kept_rows.append(csv_row(record, name, lr_path, sidecar, out))
            items.append(FolderItem(p, name, image_seed, lr_path, sidecar, "skipped"))
        else:
            todo.append((p, name, lr_path, sidecar, image_seed, digest))

    this_run = {name for _, name, _, _ in jobs}
    other_rows = [r for r in _read_old_rows(csv_path) if r.get("name") not in this_run]
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        for row in [*other_rows, *kept_rows]:
            writer.writerow(row)
        fh.flush()
        for done, item in enumerate(items, start=1):
            if progress is not None:
                progress(done, total, item)

        for p, name, lr_path, sidecar, image_seed, digest in todo:
            try:
                hr = load_image(p)
                lr, record = degrade(hr, entry_name, scale, image_seed, crop=crop)
            except ImageError as exc:
                item = FolderItem(p, name, image_seed, lr_path, sidecar, "failed", str(exc))
            else:
                record = replace(record, source=name, source_sha256=digest, extra={"base_seed": seed})
                lr_path.parent.mkdir(parents=True, exist_ok=True)
                tmp_png = lr_path.with_name(f".{lr_path.stem}.tmp.png")
                save_png(tmp_png, lr)
                os.replace(tmp_png, lr_path)
                atomic.write_text(sidecar, record.to_json() + "\n")
                writer.writerow(csv_row(record, name, lr_path, sidecar, out))
                fh.flush()
                item = FolderItem(p, name, image_seed, lr_path, sidecar, "written")
            items.append(item)
            if progress is not None:
                progress(len(items), total, item)

    order = {name: i for i, (_, name, _, _) in enumerate(jobs)}
    items.sort(key=lambda it: order[it.name])
    return DegradeSummary(
        out_dir=out, csv_path=csv_path, pipeline=entry_name, scale=scale, seed=seed, items=tuple(items)
    )
