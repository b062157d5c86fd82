"""Reading a bench dataset's file (CSV or JSONL) and its ``dataset.json``, and the per-cell checks its
loaders share: every problem found is collected as a :class:`Problem` and reported at once in one
:class:`DatasetError`, with row numbers."""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srjudge.errors import SrjudgeError

DATASET_JSON = "dataset.json"
FORMATS = ("mos", "pairwise", "best-of-n")
DATA_SUFFIXES = (".csv", ".jsonl")
FORMAT_ALIASES = {
    "mos": "mos",
    "dmos": "mos",
    "pairwise": "pairwise",
    "pairs": "pairwise",
    "pair": "pairwise",
    "best-of-n": "best-of-n",
    "best_of_n": "best-of-n",
    "bestofn": "best-of-n",
    "best-of-N": "best-of-n",
}
_COLUMNS: dict[str, tuple[str, ...]] = {
    "mos": ("image", "score", "mos", "dmos", "ref", "lr", "group"),
    "pairwise": ("a", "b", "winner", "votes_a", "votes_b", "votes_tie", "lr"),
    "best-of-n": ("group", "lr", "candidate", "votes"),
}
_JSON_KEYS = ("format", "score", "higher_is_better", "name", "synthetic", "description", "file")
_MAX_PER_KIND = 100
"""At most this many messages of one kind are spelled out; the rest are counted."""


@dataclass(frozen=True)
class Problem:
    """One validation problem; ``row`` is the 1-based data row (0: the file or dataset.json)."""

    kind: str
    message: str
    row: int = 0


class DatasetError(SrjudgeError):
    """A dataset failed validation; ``problems`` lists every problem found."""

    def __init__(self, path: Path, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__(_format_problems(path, self.problems))


def _format_problems(path: Path, problems: Sequence[Problem]) -> str:
    n = len(problems)
    lines = [
        f"{path}: {n} problem{'s' if n != 1 else ''} in the dataset (rows count from 1, after the header):"
    ]
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for p in problems:
        if shown.get(p.kind, 0) < _MAX_PER_KIND:
            shown[p.kind] = shown.get(p.kind, 0) + 1
            where = f"row {p.row}: " if p.row else ""
            lines.append(f"  - {where}{p.message}")
        else:
            hidden[p.kind] = hidden.get(p.kind, 0) + 1
    for kind, count in hidden.items():
        lines.append(f"  - ... and {count:,} more problems of the kind {kind!r}")
    return "\n".join(lines)


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)


def read_csv_table(path: Path) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            path, [Problem("file", f"not UTF-8 text ({exc}); save the CSV as UTF-8.")]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise DatasetError(
            path, [Problem("file", "the file is empty; the first line must name the columns.")]
        )
    columns = [h.strip().lower() for h in header]
    table = Table(columns, [])
    width = len(columns)
    for cells in reader:
        if not cells or all(not c.strip() for c in cells):
            continue
        row = len(table.rows) + 1
        if len(cells) > width:
            table.problems.append(
                Problem("bad-row", f"{len(cells)} cells but the header names {width} columns.", row)
            )
        values = {c: (cells[i].strip() if i < len(cells) else "") for i, c in enumerate(columns)}
        table.rows.append(values)
    return table


def read_jsonl_table(path: Path) -> Table:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(path, [Problem("file", f"not UTF-8 text ({exc}).")]) from None
    columns: list[str] = []
    seen: set[str] = set()
    table = Table(columns, [])
    for line in lines:
        if not line.strip():
            continue
        row = len(table.rows) + 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            table.problems.append(Problem("bad-row", f"not valid JSON ({exc.msg}).", row))
            table.rows.append({})
            continue
        if not isinstance(obj, dict):
            table.problems.append(Problem("bad-row", "each line must be a JSON object.", row))
            table.rows.append({})
            continue
        values: dict[str, Any] = {}
        for key, value in obj.items():
            k = str(key).strip().lower()
            if k not in seen:
                seen.add(k)
                columns.append(k)
            values[k] = "" if value is None else (value.strip() if isinstance(value, str) else value)
        table.rows.append(values)
    if not table.rows and not table.problems:
        raise DatasetError(path, [Problem("file", "the file holds no rows.")])
    return table


def read_meta(path: Path, problems: list[Problem]) -> dict[str, Any]:
    """dataset.json, checked key by key (an absent file is an empty declaration)."""
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(Problem("dataset-json", f"{path.name}: not valid JSON ({exc})."))
        return {}
    if not isinstance(meta, dict):
        problems.append(Problem("dataset-json", f"{path.name}: must hold one JSON object."))
        return {}
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key not in _JSON_KEYS:
            problems.append(
                Problem("unknown-key", f"{path.name}: unknown key {key!r}{_did_you_mean(key, _JSON_KEYS)}.")
            )
            continue
        if key == "format":
            fmt = FORMAT_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
            if fmt is None:
                problems.append(
                    Problem(
                        "dataset-json", f"{path.name}: format {value!r} is not one of {', '.join(FORMATS)}."
                    )
                )
                continue
            out[key] = fmt
        elif key == "score":
            if not isinstance(value, str) or value.strip().lower() not in ("mos", "dmos"):
                problems.append(
                    Problem("dataset-json", f'{path.name}: "score" must be "mos" or "dmos", got {value!r}.')
                )
                continue
            out[key] = value.strip().lower()
        elif key in ("higher_is_better", "synthetic"):
            if not isinstance(value, bool):
                problems.append(
                    Problem("dataset-json", f"{path.name}: {key!r} must be true or false, got {value!r}.")
                )
                continue
            out[key] = value
        else:
            if not isinstance(value, str):
                problems.append(
                    Problem("dataset-json", f"{path.name}: {key!r} must be a string, got {value!r}.")
                )
                continue
            out[key] = value
    return out


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_input(path: Path) -> Path:
    """The dataset file: the path itself, or the single CSV/JSONL in a folder."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, [Problem("file", "no such file or folder.")])
    if path.is_file():
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise DatasetError(path, [Problem("file", "a dataset is a .csv or .jsonl file (or its folder).")])
        return path
    meta_path = path / DATASET_JSON
    named: str | None = None
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8-sig"))
            if isinstance(meta, dict) and isinstance(meta.get("file"), str):
                named = meta["file"]
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    if named is not None:
        return path / named
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise DatasetError(
            path,
            [
                Problem(
                    "file",
                    f"the folder holds {what} dataset files; it must hold exactly one .csv or .jsonl "
                    f'(or name it in {DATASET_JSON} as "file").',
                )
            ],
        )
    return found[0]


class FileChecks:
    """Existence checks with a cache (LR and reference paths repeat across rows)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._exists: dict[str, bool] = {}
        self._paths: dict[str, Path] = {}

    def as_path(self, full: str) -> Path:
        """A Path for a checked path string, shared between rows that name the same file."""
        hit = self._paths.get(full)
        if hit is None:
            hit = self._paths[full] = Path(full)
        return hit

    def path(self, value: str) -> str:
        return os.path.normpath(os.path.join(self.root, os.path.expanduser(value)))

    def exists(self, full: str) -> bool:
        hit = self._exists.get(full)
        if hit is None:
            hit = os.path.isfile(full)
            self._exists[full] = hit
        return hit


def cell_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def number_cell(
    value: Any, column: str, row: int, problems: list[Problem], *, votes: bool = False
) -> float | None:
    """A finite float (votes also non-negative), or None after recording the problem."""
    if isinstance(value, bool):
        number = math.nan
        ok = False
    elif isinstance(value, int | float):
        number, ok = float(value), True
    else:
        text = cell_text(value).strip()
        if not text:
            problems.append(Problem("bad-value", f"{column} is empty.", row))
            return None
        try:
            number, ok = float(text), True
        except ValueError:
            number, ok = math.nan, False
    if not ok:
        problems.append(Problem("bad-value", f"{column} {cell_text(value)!r} is not a number.", row))
        return None
    if not math.isfinite(number):
        problems.append(Problem("bad-value", f"{column} is {number} (must be a finite number).", row))
        return None
    if votes and number < 0:
        problems.append(Problem("negative-votes", f"{column} is {number:g}; votes cannot be negative.", row))
        return None
    return number


def file_cell(
    value: Any, column: str, row: int, files: FileChecks, problems: list[Problem], *, required: bool
) -> str | None:
    text = cell_text(value).strip()
    if not text:
        if required:
            problems.append(Problem("missing-value", f"{column} is empty.", row))
        return None
    full = files.path(text)
    if not files.exists(full):
        problems.append(Problem("missing-file", f"{column} file {text!r} not found ({full}).", row))
    return full


def check_columns(fmt: str, columns: list[str], required: Sequence[str], problems: list[Problem]) -> None:
    allowed = _COLUMNS[fmt]
    for col in columns:
        if col not in allowed:
            problems.append(
                Problem(
                    "unknown-column",
                    f"unknown column {col!r} for a {fmt} dataset{_did_you_mean(col, allowed)}; "
                    f"known columns: {', '.join(allowed)}.",
                )
            )
    for col in required:
        if col not in columns:
            problems.append(Problem("missing-column", f"the {fmt} dataset needs a column {col!r}."))


def detect_format(columns: list[str]) -> str | None:
    cols = set(columns)
    mos_cols = {"image", "score", "mos", "dmos"} & cols
    if {"a", "b"} & cols:
        return "pairwise"
    if "candidate" in cols or ("group" in cols and not mos_cols):
        return "best-of-n"
    if mos_cols:
        return "mos"
    return None
