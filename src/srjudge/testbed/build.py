"""The on-disk glyph testbed: :func:`build_testbed` writes it (idempotent, resumable), :func:`load_manifest`
reads it back and verifies it.

Layout: ``hr/<id>.png``, ``lr/<id>.png``, ``items.jsonl`` (streamed, one row per item, with its
degradation record) and ``manifest.json`` (config, counts, data digest, environment), written last.
What the items are is defined in :mod:`srjudge.testbed.items`, how they are made in
:mod:`srjudge.testbed.arrays` and :mod:`srjudge.testbed.severity`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srjudge import atomic
from srjudge.degrade.ops import JPEG_ENCODER
from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.io import load_image, to_uint8
from srjudge.provenance import Provenance, config_hash
from srjudge.testbed.arrays import GeneratedItem, generate_items
from srjudge.testbed.items import SPLITS, ItemIdentity, TestbedConfig, item_specs
from srjudge.testbed.severity import SEVERITIES, SEVERITY_SPECS

MANIFEST_FORMAT = "srjudge-testbed"
MANIFEST_SCHEMA = 1


class TestbedError(SrjudgeError):
    """A testbed folder is missing, incomplete, changed, or was built with another config."""

    __test__ = False


@dataclass(frozen=True)
class TestbedItem(ItemIdentity):
    """One LR input of a built testbed (paths are absolute; ``record`` replays the LR from the HR).

    ``seed``: the item's degradation seed (0 for sklearn digits); the glyph's own seed and drawn
    parameters are in ``record['extra']['glyph']``. ``severity`` is 0 for sklearn digits (no synthetic
    degradation; ``source`` tells them apart).
    """

    __test__ = False

    lr_path: Path
    hr_path: Path | None
    record: dict[str, Any]
    lr_sha256: str = ""
    hr_sha256: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A built testbed: its folder, config, items in order, counts and data digest."""

    folder: Path
    config: TestbedConfig
    items: tuple[TestbedItem, ...]
    counts: dict[str, Any]
    digest: str
    version: str
    data: dict[str, Any] = field(default_factory=dict)

    def lr(self, item: TestbedItem) -> np.ndarray:
        """The item's LR image, float32 (8, 8, 3)."""
        return load_image(item.lr_path)

    def hr(self, item: TestbedItem) -> np.ndarray | None:
        """The item's HR image, float32 (32, 32, 3), or None for LR-only items."""
        return None if item.hr_path is None else load_image(item.hr_path)

    def select(
        self, *, split: str | None = None, source: str | None = None, severity: int | None = None
    ) -> tuple[TestbedItem, ...]:
        """Items matching every given filter, in manifest order."""
        return tuple(
            it
            for it in self.items
            if (split is None or it.split == split)
            and (source is None or it.source == source)
            and (severity is None or it.severity == severity)
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


def _row(gen: GeneratedItem, lr_sha: str, hr_sha: str | None) -> dict[str, Any]:
    s = gen.spec
    return {
        **s.identity(),
        "lr": f"lr/{s.id}.png",
        "hr": None if gen.hr is None else f"hr/{s.id}.png",
        "lr_sha256": lr_sha,
        "hr_sha256": hr_sha,
        "record": gen.record,
    }


def _row_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), allow_nan=False)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a float RGB image as 8-bit RGB PNG bytes (the same bytes srjudge's ``save_png`` writes)."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_split: dict[str, int] = {}
    nested: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows:
        by_split[r["split"]] = by_split.get(r["split"], 0) + 1
        sev = SEVERITIES[int(r["severity"])] if r["source"] == "font" else "none"
        inner = nested.setdefault(r["split"], {}).setdefault(r["source"], {})
        inner[sev] = inner.get(sev, 0) + 1
    return {"total": len(rows), "by_split": by_split, "by_split_source_severity": nested}


def _environment() -> dict[str, Any]:
    import cv2
    import PIL
    import sklearn  # type: ignore[import-untyped]
    from PIL import features

    return {
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "freetype": features.version("freetype2"),
        "opencv": cv2.__version__,
        "jpeg_encoder": JPEG_ENCODER,
        "scikit-learn": sklearn.__version__,
    }


ProgressFn = Callable[[int, int], None]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TestbedError(
            f"{path}: cannot read it as JSON ({exc}). Rebuild the testbed in a new folder."
        ) from None
    if not isinstance(data, dict):
        raise TestbedError(f"{path}: expected a JSON object. Rebuild the testbed in a new folder.")
    return data


def _read_rows(path: Path, *, repair: bool) -> list[dict[str, Any]]:
    """Complete rows of items.jsonl; a torn last line is cut off when ``repair`` (resume), else an error."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    good = 0
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                break
            if not isinstance(row, dict):
                break
            rows.append(row)
            good += len(raw)
    if good != path.stat().st_size:
        if not repair:
            raise TestbedError(
                f"{path}: line {len(rows) + 1} is incomplete or not JSON. Rebuild the testbed."
            )
        with path.open("r+b") as fh:
            fh.truncate(good)
    return rows


def _file_ok(path: Path, sha: str | None) -> bool:
    return sha is not None and path.is_file() and _sha(path.read_bytes()) == sha


def build_testbed(
    config: TestbedConfig, out_dir: str | os.PathLike[str], *, progress: ProgressFn | None = None
) -> Manifest:
    """Write the testbed of ``config`` to ``out_dir``; idempotent and resumable.

    A folder holding a (partial) build of another config is refused with a :class:`TestbedError`.
    Rows of ``items.jsonl`` are appended as items are written; on a rerun, rows whose PNGs exist with the
    recorded SHA-256 are kept, missing or damaged PNGs are rewritten, and the build continues after the
    last complete row. ``progress(done, total)`` is called as items are checked or written.
    """
    from srjudge import __version__

    if not isinstance(config, TestbedConfig):
        raise SpecError(f"build_testbed needs a TestbedConfig, got {type(config).__name__}")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise TestbedError(f"{folder}: exists and is not a folder; choose a folder path for the testbed.")
    manifest_path, state_path, items_path = (
        folder / "manifest.json",
        folder / "build.json",
        folder / "items.jsonl",
    )
    cfg = config.to_dict()
    for marker in (manifest_path, state_path):
        if marker.exists():
            other = _read_json(marker).get("config")
            if other != cfg:
                raise TestbedError(
                    f"{folder} holds a testbed built with a different config (hash "
                    f"{config_hash(other) if isinstance(other, dict) else '?'}, this one {config.hash()}). "
                    "Build into a new folder, or delete this one first."
                )
    if folder.is_dir() and not manifest_path.exists() and not state_path.exists() and any(folder.iterdir()):
        raise TestbedError(
            f"{folder} is not empty and holds no testbed build; build into a new or empty folder."
        )
    (folder / "hr").mkdir(parents=True, exist_ok=True)
    (folder / "lr").mkdir(parents=True, exist_ok=True)
    if not state_path.exists():
        atomic.write_bytes(state_path, json.dumps({"config": cfg, "version": __version__}, indent=2).encode())
    manifest_path.unlink(missing_ok=True)

    rows = _read_rows(items_path, repair=True)
    specs = list(item_specs(config))
    total = len(specs)
    if len(rows) > total:
        raise TestbedError(
            f"{items_path} has {len(rows)} rows, more than the {total} this config makes. Use a new folder."
        )
    for i, row in enumerate(rows):
        if row.get("id") != specs[i].id:
            raise TestbedError(
                f"{items_path}: row {i + 1} is {row.get('id')!r}, expected {specs[i].id!r}. Use a new folder."
            )
    # the indices whose files must be (re)made: rows present with damaged files, and all rows not yet written
    todo = [
        i
        for i, row in enumerate(rows)
        if not _file_ok(folder / row["lr"], row.get("lr_sha256"))
        or (row.get("hr") is not None and not _file_ok(folder / row["hr"], row.get("hr_sha256")))
    ]
    todo += list(range(len(rows), total))
    done = total - len(todo)
    by_id = {r["id"]: r for r in rows}
    if progress is not None:
        progress(done, total)
    with items_path.open("a", encoding="utf-8") as out:
        last_hr: tuple[np.ndarray | None, bytes | None] = (None, None)
        for gen in generate_items((specs[i] for i in todo), config):
            lr_png = png_bytes(gen.lr)
            if gen.hr is not None and gen.hr is not last_hr[0]:
                last_hr = (gen.hr, png_bytes(gen.hr))  # a glyph's severities share one HR array
            hr_png = None if gen.hr is None else last_hr[1]
            row = _row(gen, _sha(lr_png), None if hr_png is None else _sha(hr_png))
            (folder / row["lr"]).write_bytes(lr_png)
            if hr_png is not None:
                (folder / row["hr"]).write_bytes(hr_png)
            existing = by_id.get(gen.spec.id)
            if existing is None:
                out.write(_row_line(row) + "\n")
                out.flush()
                rows.append(row)
                by_id[row["id"]] = row
            elif existing != row:
                raise TestbedError(
                    f"item {gen.spec.id}: regenerating it gave different content than {items_path} records "
                    "(another library version?). Build into a new folder."
                )
            done += 1
            if progress is not None and (done % 256 == 0 or done == total):
                progress(done, total)
    digest = _digest(folder, rows)
    data = {
        "format": MANIFEST_FORMAT,
        "schema": MANIFEST_SCHEMA,
        "config": cfg,
        "config_hash": config.hash(),
        "counts": _counts(rows),
        "digest": digest,
        "items_file": "items.jsonl",
        "version": __version__,
        "provenance": Provenance.of("testbed-data", cfg).to_dict(),
        "severities": [s.to_dict() for s in SEVERITY_SPECS],
        "split_faces": {s: list(config.faces_of(s)) for s in SPLITS},
        "environment": _environment(),
    }
    atomic.write_bytes(manifest_path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    return _manifest(folder, data, rows)


def _digest(folder: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    """sha256 over the items in order: each row's JSON line, then its LR PNG bytes, then its HR PNG bytes."""
    h = hashlib.sha256()
    for row in rows:
        h.update(_row_line(row).encode() + b"\n")
        for key in ("lr", "hr"):
            rel = row.get(key)
            if rel is None:
                continue
            path = folder / rel
            if not path.is_file():
                raise TestbedError(f"{path}: missing. Rerun the build on this folder to restore it.")
            data = path.read_bytes()
            if _sha(data) != row.get(f"{key}_sha256"):
                raise TestbedError(
                    f"{path}: its content differs from the SHA-256 in items.jsonl (changed or damaged). "
                    "Rerun the build on this folder to restore it."
                )
            h.update(data)
    return "sha256:" + h.hexdigest()


def _manifest(folder: Path, data: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Manifest:
    config = TestbedConfig.from_dict(data["config"])
    items = tuple(
        TestbedItem(
            id=str(r["id"]),
            split=str(r["split"]),
            source=str(r["source"]),
            label=str(r["label"]),
            face=r.get("face"),
            seed=int(r["seed"]),
            severity=int(r["severity"]),
            lr_path=(folder / r["lr"]).resolve(),
            hr_path=None if r.get("hr") is None else (folder / r["hr"]).resolve(),
            record=dict(r["record"]),
            lr_sha256=str(r.get("lr_sha256", "")),
            hr_sha256=r.get("hr_sha256"),
        )
        for r in rows
    )
    return Manifest(
        folder=folder.resolve(),
        config=config,
        items=items,
        counts=dict(data["counts"]),
        digest=str(data["digest"]),
        version=str(data["version"]),
        data=dict(data),
    )


def load_manifest(folder: str | os.PathLike[str], *, verify: bool = True) -> Manifest:
    """Read a built testbed. With ``verify`` (default) every PNG is checked against its SHA-256 and the
    data digest is recomputed; any difference raises :class:`TestbedError` naming the file and the fix."""
    root = Path(folder)
    if not root.is_dir():
        raise TestbedError(f"{root}: no such folder. Build it first: srjudge testbed build --out {root}")
    path = root / "manifest.json"
    if not path.is_file():
        hint = (
            " (an interrupted build: rerun the build on this folder to finish it)"
            if (root / "build.json").exists() or (root / "items.jsonl").exists()
            else ""
        )
        raise TestbedError(
            f"{path}: missing{hint}. Build the testbed with: srjudge testbed build --out {root}"
        )
    data = _read_json(path)
    if data.get("format") != MANIFEST_FORMAT or data.get("schema") != MANIFEST_SCHEMA:
        raise TestbedError(
            f"{path}: not a {MANIFEST_FORMAT} manifest of schema {MANIFEST_SCHEMA} "
            f"(format={data.get('format')!r}, schema={data.get('schema')!r}). Rebuild with this srjudge."
        )
    missing = [k for k in ("config", "counts", "digest", "version", "items_file") if k not in data]
    if missing:
        raise TestbedError(f"{path}: missing field(s) {', '.join(missing)}. Rebuild the testbed.")
    items_path = root / str(data["items_file"])
    if not items_path.is_file():
        raise TestbedError(f"{items_path}: missing. Rerun the build on {root} to restore it.")
    rows = _read_rows(items_path, repair=False)
    if len(rows) != data["counts"].get("total"):
        raise TestbedError(
            f"{items_path}: holds {len(rows)} items, the manifest says {data['counts'].get('total')}. "
            f"Rerun the build on {root}."
        )
    if verify:
        digest = _digest(root, rows)
        if digest != data["digest"]:
            raise TestbedError(
                f"{root}: data digest {digest} does not match the manifest's {data['digest']} "
                "(items.jsonl or images were changed). Rerun the build on this folder, or rebuild it."
            )
    return _manifest(root, data, rows)
