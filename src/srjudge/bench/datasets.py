"""Human-opinion datasets for ``srjudge bench``: MOS, pairwise and best-of-N, loaded and validated.

Each dataset is a CSV (or JSONL) file plus its images; paths in the file are relative to the file's
folder. A ``dataset.json`` beside it declares the format, the name and, for MOS, the direction::

    {"format": "mos", "score": "dmos", "higher_is_better": false, "name": "...", "synthetic": false}

Formats and their columns:

* ``mos``: ``image``, ``score`` (or ``mos`` / ``dmos``, which also set the direction), optional
  ``ref`` (HR reference), ``lr`` and ``group`` (e.g. the LR input or scene the image was made from:
  ``srjudge bench`` then also reports agreement *within* groups). An empty group is no group; either
  every row has a group or none does.
* ``pairwise``: ``a``, ``b``, and either ``winner`` (a | b | tie) or ``votes_a``, ``votes_b`` (and
  optional ``votes_tie``); optional ``lr``.
* ``best-of-n``: ``group``, ``lr``, ``candidate``, ``votes`` (how many people chose it).

:func:`load_dataset` checks everything up front (files exist, no duplicates, numbers are numbers,
the direction is declared and consistent) and reports every problem at once, with row numbers, in
one :class:`DatasetError`. It never opens an image, so 10,000 rows load in well under a second.

:func:`make_synthetic` writes a small, clearly labelled SYNTHETIC dataset from scikit-image's bundled
photos whose "opinion" is a known monotone function of the degradation strength: a sanity check for
the bench, not a measure of agreement with people.
"""

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
from typing import Any, Literal

import numpy as np

from srjudge.errors import SrjudgeError

DATASET_JSON = "dataset.json"
FORMATS = ("mos", "pairwise", "best-of-n")
DATA_SUFFIXES = (".csv", ".jsonl")

_FORMAT_ALIASES = {
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


# ----------------------------------------------------------------------------------------------
# Data classes


@dataclass(frozen=True)
class MOSItem:
    """One rated image: its (mean) opinion score, and optionally its HR reference, LR input and group.

    ``group`` names the set of images that people compared with each other (typically the outputs of
    several SR methods for one LR input); None when the dataset has no group column.
    """

    image: Path
    score: float
    ref: Path | None
    lr: Path | None
    row: int
    group: str | None = None


@dataclass(frozen=True)
class MOSDataset:
    """Images with opinion scores; ``higher_is_better`` is False for DMOS."""

    name: str
    path: Path
    items: tuple[MOSItem, ...]
    higher_is_better: bool
    score_kind: str
    synthetic: bool
    description: str = ""

    def __len__(self) -> int:
        return len(self.items)

    @property
    def grouped(self) -> bool:
        """True when the items carry groups (validation makes it all of them or none)."""
        return any(item.group is not None for item in self.items)

    @property
    def groups(self) -> tuple[str | None, ...]:
        """Each item's group, in item order."""
        return tuple(item.group for item in self.items)


@dataclass(frozen=True)
class PairItem:
    """Two images compared by people, with the votes for each (and for 'no difference')."""

    a: Path
    b: Path
    votes_a: float
    votes_b: float
    votes_tie: float
    lr: Path | None
    row: int

    @property
    def human_winner(self) -> str:
        """'A' or 'B' when it has strictly the most votes, else 'tie'."""
        if self.votes_a > self.votes_b and self.votes_a > self.votes_tie:
            return "A"
        if self.votes_b > self.votes_a and self.votes_b > self.votes_tie:
            return "B"
        return "tie"


@dataclass(frozen=True)
class PairwiseDataset:
    """Pairwise preferences."""

    name: str
    path: Path
    items: tuple[PairItem, ...]
    synthetic: bool
    description: str = ""

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class BestOfNGroup:
    """One LR input, its N candidate outputs and how many people chose each."""

    group: str
    lr: Path
    candidates: tuple[Path, ...]
    votes: tuple[float, ...]
    rows: tuple[int, ...] = ()


@dataclass(frozen=True)
class BestOfNDataset:
    """Best-of-N choices, grouped by LR input."""

    name: str
    path: Path
    groups: tuple[BestOfNGroup, ...]
    synthetic: bool
    description: str = ""

    def __len__(self) -> int:
        return len(self.groups)


Dataset = MOSDataset | PairwiseDataset | BestOfNDataset


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


# ----------------------------------------------------------------------------------------------
# Reading the file


@dataclass
class _Table:
    columns: list[str]
    rows: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)


def _read_csv(path: Path) -> _Table:
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
    table = _Table(columns, [])
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


def _read_jsonl(path: Path) -> _Table:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(path, [Problem("file", f"not UTF-8 text ({exc}).")]) from None
    columns: list[str] = []
    seen: set[str] = set()
    table = _Table(columns, [])
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


def _read_meta(path: Path, problems: list[Problem]) -> dict[str, Any]:
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
            fmt = _FORMAT_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
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


def _resolve_input(path: Path) -> Path:
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


# ----------------------------------------------------------------------------------------------
# Validation helpers


class _Files:
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


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _number(
    value: Any, column: str, row: int, problems: list[Problem], *, votes: bool = False
) -> float | None:
    """A finite float (votes also non-negative), or None after recording the problem."""
    if isinstance(value, bool):
        number = math.nan
        ok = False
    elif isinstance(value, int | float):
        number, ok = float(value), True
    else:
        text = _text(value).strip()
        if not text:
            problems.append(Problem("bad-value", f"{column} is empty.", row))
            return None
        try:
            number, ok = float(text), True
        except ValueError:
            number, ok = math.nan, False
    if not ok:
        problems.append(Problem("bad-value", f"{column} {_text(value)!r} is not a number.", row))
        return None
    if not math.isfinite(number):
        problems.append(Problem("bad-value", f"{column} is {number} (must be a finite number).", row))
        return None
    if votes and number < 0:
        problems.append(Problem("negative-votes", f"{column} is {number:g}; votes cannot be negative.", row))
        return None
    return number


def _file(
    value: Any, column: str, row: int, files: _Files, problems: list[Problem], *, required: bool
) -> str | None:
    text = _text(value).strip()
    if not text:
        if required:
            problems.append(Problem("missing-value", f"{column} is empty.", row))
        return None
    full = files.path(text)
    if not files.exists(full):
        problems.append(Problem("missing-file", f"{column} file {text!r} not found ({full}).", row))
    return full


def _check_columns(fmt: str, columns: list[str], required: Sequence[str], problems: list[Problem]) -> None:
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


def _detect_format(columns: list[str]) -> str | None:
    cols = set(columns)
    mos_cols = {"image", "score", "mos", "dmos"} & cols
    if {"a", "b"} & cols:
        return "pairwise"
    if "candidate" in cols or ("group" in cols and not mos_cols):
        return "best-of-n"
    if mos_cols:
        return "mos"
    return None


# ----------------------------------------------------------------------------------------------
# Per-format loaders


def _load_mos(
    table: _Table, meta: dict[str, Any], files: _Files, problems: list[Problem]
) -> tuple[tuple[MOSItem, ...], bool, str]:
    score_cols = [c for c in ("score", "mos", "dmos") if c in table.columns]
    _check_columns("mos", table.columns, ["image"], problems)
    kind: str | None = meta.get("score")
    hib: bool | None = meta.get("higher_is_better")
    if kind is not None and hib is not None and hib != (kind == "mos"):
        problems.append(
            Problem(
                "direction",
                f'direction conflict: {DATASET_JSON} says "score": "{kind}" but "higher_is_better": '
                f"{str(hib).lower()} ({kind.upper()} is {'higher' if kind == 'mos' else 'lower'} is better).",
            )
        )
    if not score_cols:
        problems.append(
            Problem("missing-column", "the mos dataset needs a column 'score' (or 'mos' / 'dmos').")
        )
    elif len(score_cols) > 1:
        problems.append(
            Problem("direction", f"columns {', '.join(score_cols)}: give exactly one score column.")
        )
    score_col = score_cols[0] if score_cols else "score"
    if score_col in ("mos", "dmos"):
        col_hib = score_col == "mos"
        if kind is not None and kind != score_col:
            problems.append(
                Problem(
                    "direction",
                    f'direction conflict: {DATASET_JSON} says "score": "{kind}" '
                    f"but the column is {score_col!r}.",
                )
            )
        if hib is not None and hib != col_hib:
            problems.append(
                Problem(
                    "direction",
                    f'direction conflict: {DATASET_JSON} says "higher_is_better": {str(hib).lower()} '
                    f"but the column is {score_col!r} ({score_col.upper()} is "
                    f"{'higher' if col_hib else 'lower'} is better).",
                )
            )
        kind, hib = score_col, col_hib
    elif kind is not None:
        hib = kind == "mos" if hib is None else hib
    elif hib is not None:
        kind = "mos" if hib else "dmos"
    elif score_cols:
        problems.append(
            Problem(
                "direction",
                f"the score direction is not declared: add {DATASET_JSON} with "
                '"score": "mos" or "dmos" (or "higher_is_better"), or name the column mos or dmos.',
            )
        )
    items: list[MOSItem] = []
    seen: dict[str, int] = {}
    has_ref, has_lr = "ref" in table.columns, "lr" in table.columns
    has_group = "group" in table.columns
    with_group: list[int] = []
    without_group: list[int] = []
    for row, values in enumerate(table.rows, 1):
        if not values:
            continue
        group: str | None = None
        if has_group:
            group = _text(values.get("group")).strip() or None
            (with_group if group is not None else without_group).append(row)
        image = _file(values.get("image"), "image", row, files, problems, required=True)
        score = _number(values.get(score_col), score_col, row, problems) if score_cols else None
        ref = _file(values.get("ref"), "ref", row, files, problems, required=False) if has_ref else None
        lr = _file(values.get("lr"), "lr", row, files, problems, required=False) if has_lr else None
        if image is not None:
            first = seen.setdefault(image, row)
            if first != row:
                problems.append(
                    Problem(
                        "duplicate",
                        f"image {_text(values.get('image'))!r} already rated in row {first}.",
                        row,
                    )
                )
        if image is not None and score is not None:
            items.append(
                MOSItem(
                    files.as_path(image),
                    score,
                    files.as_path(ref) if ref else None,
                    files.as_path(lr) if lr else None,
                    row,
                    group,
                )
            )
    if with_group and without_group:
        problems.append(_mixed_groups(with_group, without_group))
    return tuple(items), bool(hib) if hib is not None else True, kind or "mos"


def _mixed_groups(with_group: list[int], without_group: list[int]) -> Problem:
    """One problem naming the rows on the rarer side (up to 20 of them) when only some rows have a group."""
    fewer, has = (without_group, "no") if len(without_group) <= len(with_group) else (with_group, "a")
    shown = ", ".join(str(r) for r in fewer[:20]) + (
        f" and {len(fewer) - 20} more" if len(fewer) > 20 else ""
    )
    which = f"row {shown} has" if len(fewer) == 1 else f"rows {shown} have"
    return Problem(
        "group",
        f"only some rows have a group ({len(with_group)} with, {len(without_group)} without): {which} "
        f"{has} group. Give every row a group, or leave the column out (an empty group is no group).",
        fewer[0],
    )


_WINNERS = {"a": (1.0, 0.0, 0.0), "b": (0.0, 1.0, 0.0), "tie": (0.0, 0.0, 1.0), "equal": (0.0, 0.0, 1.0)}


def _load_pairwise(table: _Table, files: _Files, problems: list[Problem]) -> tuple[PairItem, ...]:
    cols = set(table.columns)
    has_winner = "winner" in cols
    has_votes = bool({"votes_a", "votes_b"} & cols)
    required = ["a", "b"]
    if has_votes:
        required += ["votes_a", "votes_b"]
    _check_columns("pairwise", table.columns, required, problems)
    if has_winner and has_votes:
        problems.append(Problem("bad-column", "give either 'winner' or 'votes_a'/'votes_b', not both."))
    elif not has_winner and not has_votes:
        problems.append(
            Problem(
                "missing-column", "the pairwise dataset needs 'winner' (a|b|tie) or 'votes_a' and 'votes_b'."
            )
        )
    has_lr = "lr" in cols
    items: list[PairItem] = []
    seen: dict[frozenset[str], int] = {}
    for row, values in enumerate(table.rows, 1):
        if not values:
            continue
        a = _file(values.get("a"), "a", row, files, problems, required=True)
        b = _file(values.get("b"), "b", row, files, problems, required=True)
        lr = _file(values.get("lr"), "lr", row, files, problems, required=False) if has_lr else None
        votes: tuple[float, float, float] | None = None
        if has_winner and not has_votes:
            w = _text(values.get("winner")).strip().lower()
            votes = _WINNERS.get(w)
            if votes is None:
                problems.append(Problem("bad-value", f"winner {w!r} must be a, b or tie.", row))
        elif has_votes:
            va = _number(values.get("votes_a"), "votes_a", row, problems, votes=True)
            vb = _number(values.get("votes_b"), "votes_b", row, problems, votes=True)
            raw_tie = values.get("votes_tie")
            vt: float | None = 0.0
            if raw_tie is not None and _text(raw_tie).strip() != "":
                vt = _number(raw_tie, "votes_tie", row, problems, votes=True)
            if va is not None and vb is not None and vt is not None:
                if va + vb + vt <= 0:
                    problems.append(Problem("bad-value", "the pair has no votes at all.", row))
                else:
                    votes = (va, vb, vt)
        if a is not None and b is not None:
            if a == b:
                problems.append(
                    Problem("duplicate", f"a and b are the same image {_text(values.get('a'))!r}.", row)
                )
                continue
            first = seen.setdefault(frozenset((a, b)), row)
            if first != row:
                problems.append(
                    Problem(
                        "duplicate",
                        f"the pair {_text(values.get('a'))!r} / {_text(values.get('b'))!r} "
                        f"already appears in row {first} (pairs are unordered).",
                        row,
                    )
                )
                continue
            if votes is not None:
                items.append(
                    PairItem(
                        files.as_path(a), files.as_path(b), *votes, files.as_path(lr) if lr else None, row
                    )
                )
    return tuple(items)


def _load_best_of_n(table: _Table, files: _Files, problems: list[Problem]) -> tuple[BestOfNGroup, ...]:
    _check_columns("best-of-n", table.columns, ["group", "lr", "candidate", "votes"], problems)
    order: list[str] = []
    members: dict[str, list[tuple[int, str | None, str | None, float | None]]] = {}
    for row, values in enumerate(table.rows, 1):
        if not values:
            continue
        group = _text(values.get("group")).strip()
        if not group:
            problems.append(Problem("missing-value", "group is empty.", row))
        lr = _file(values.get("lr"), "lr", row, files, problems, required=True)
        cand = _file(values.get("candidate"), "candidate", row, files, problems, required=True)
        votes = _number(values.get("votes"), "votes", row, problems, votes=True)
        if not group:
            continue
        if group not in members:
            order.append(group)
            members[group] = []
        members[group].append((row, lr, cand, votes))
    groups: list[BestOfNGroup] = []
    for name in order:
        rows = members[name]
        row_list = ", ".join(str(r[0]) for r in rows)
        ok = True
        if len(rows) < 2:
            problems.append(
                Problem(
                    "group",
                    f"group {name!r} has {len(rows)} candidate; best-of-N needs at least 2.",
                    rows[0][0],
                )
            )
            ok = False
        lrs = {r[1] for r in rows if r[1] is not None}
        if len(lrs) > 1:
            problems.append(
                Problem(
                    "group",
                    f"group {name!r} (rows {row_list}) has {len(lrs)} different LR images; "
                    "a group shares one LR.",
                    rows[0][0],
                )
            )
            ok = False
        seen: dict[str, int] = {}
        for row, _, cand, _ in rows:
            if cand is None:
                continue
            first = seen.setdefault(cand, row)
            if first != row:
                problems.append(
                    Problem("duplicate", f"group {name!r}: candidate already listed in row {first}.", row)
                )
                ok = False
        if any(r[1] is None or r[2] is None or r[3] is None for r in rows):
            ok = False
        elif sum(r[3] or 0.0 for r in rows) <= 0:
            problems.append(
                Problem("bad-value", f"group {name!r} (rows {row_list}) has no votes at all.", rows[0][0])
            )
            ok = False
        if ok:
            groups.append(
                BestOfNGroup(
                    group=name,
                    lr=Path(str(rows[0][1])),
                    candidates=tuple(Path(str(r[2])) for r in rows),
                    votes=tuple(float(r[3] or 0.0) for r in rows),
                    rows=tuple(r[0] for r in rows),
                )
            )
    return tuple(groups)


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Load and validate a MOS, pairwise or best-of-N dataset (its CSV/JSONL file, or its folder).

    Every problem found is reported at once in one :class:`DatasetError` (an ``SrjudgeError``).
    """
    file = _resolve_input(Path(path))
    if not file.is_file():
        raise DatasetError(file, [Problem("file", "no such dataset file.")])
    problems: list[Problem] = []
    meta = _read_meta(file.parent / DATASET_JSON, problems)
    table = _read_csv(file) if file.suffix.lower() == ".csv" else _read_jsonl(file)
    problems.extend(table.problems)
    fmt = meta.get("format") or _detect_format(table.columns)
    if fmt is None:
        problems.append(
            Problem(
                "format",
                f"cannot tell the format from the columns ({', '.join(table.columns) or 'none'}); "
                f'declare it in {DATASET_JSON} as "format": one of {", ".join(FORMATS)}.',
            )
        )
        raise DatasetError(file, problems)
    files = _Files(str(file.parent.absolute()))
    name = str(meta.get("name") or file.stem)
    synthetic = bool(meta.get("synthetic", False))
    description = str(meta.get("description", ""))
    dataset: Dataset
    if fmt == "mos":
        items, hib, kind = _load_mos(table, meta, files, problems)
        dataset = MOSDataset(name, file, items, hib, kind, synthetic, description)
    elif fmt == "pairwise":
        dataset = PairwiseDataset(name, file, _load_pairwise(table, files, problems), synthetic, description)
    else:
        dataset = BestOfNDataset(name, file, _load_best_of_n(table, files, problems), synthetic, description)
    if fmt != "mos" and ("score" in meta or "higher_is_better" in meta):
        problems.append(
            Problem("dataset-json", f'"score" and "higher_is_better" apply to mos datasets, not {fmt}.')
        )
    if not problems and len(dataset) == 0:
        problems.append(Problem("file", "the dataset has no rows."))
    if problems:
        problems.sort(key=lambda p: p.row)
        raise DatasetError(file, problems)
    return dataset


# ----------------------------------------------------------------------------------------------
# Synthetic datasets

SYNTHETIC_PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "cat", "horse", "coins")
SyntheticKind = Literal["mos", "pairwise", "best-of-n"]
_HR_SIZE = 128
_SCALE = 4


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    if sigma <= 0:
        return image.astype(np.float32)
    return gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0)).astype(np.float32)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    from srjudge.images.io import to_uint8

    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as pil:
        return (np.asarray(pil.convert("RGB"), dtype=np.float32) / np.float32(255.0)).astype(np.float32)


def _downscale(hr: np.ndarray) -> np.ndarray:
    from srjudge.images.io import quantize_8bit
    from srjudge.images.resize import imresize

    h, w = hr.shape[:2]
    return quantize_8bit(imresize(hr, output_shape=(h // _SCALE, w // _SCALE)))


def _degraded_lr(clean_lr: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Blur sigma 1.5*s, Gaussian noise std 0.06*s, JPEG quality 95 - 70*s, on the LR."""
    from srjudge.images.io import quantize_8bit

    out = _blur(clean_lr, 1.5 * strength)
    out = out + rng.normal(0.0, 0.06 * strength, size=out.shape).astype(np.float32)
    out = quantize_8bit(np.clip(out, 0.0, 1.0))
    return _jpeg(out, round(95 - 70 * strength))


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")


def _write_meta(out_dir: Path, meta: dict[str, Any]) -> None:
    (out_dir / DATASET_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def make_synthetic(
    out_dir: str | os.PathLike[str],
    kind: SyntheticKind,
    *,
    seed: int = 0,
    n_photos: int = 4,
    levels: int = 5,
    grouped: bool = False,
) -> Path:
    """Write a small SYNTHETIC dataset (not human opinion) of ``kind`` under ``out_dir``; return its CSV.

    The "opinion" is a known monotone function of a degradation strength in [0, 1]; the rule is
    written to dataset.json's "description". The same seed writes the same bytes. ``grouped`` (mos
    only) adds a ``group`` column naming each image's photo.
    """
    from srjudge.demo import bundled_photo
    from srjudge.images.io import quantize_8bit, save_png
    from srjudge.sr.classical import bicubic, nearest, unsharp

    fmt = _FORMAT_ALIASES.get(str(kind).lower())
    if fmt is None:
        raise SrjudgeError(f"synthetic dataset kind {kind!r} is not one of {', '.join(FORMATS)}.")
    if grouped and fmt != "mos":
        raise SrjudgeError(f"grouped=True applies to synthetic mos datasets, not {fmt}.")
    if not 1 <= n_photos <= len(SYNTHETIC_PHOTOS):
        raise SrjudgeError(f"n_photos must be 1..{len(SYNTHETIC_PHOTOS)}, got {n_photos}.")
    if levels < 1:
        raise SrjudgeError(f"levels must be at least 1, got {levels}.")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = SYNTHETIC_PHOTOS[:n_photos]
    strengths = [level / (levels + 1) for level in range(1, levels + 1)]
    name = f"synthetic-{fmt} (generated from scikit-image photos; not human opinion)"

    def save(rel: str, image: np.ndarray) -> Path:
        return save_png(root / rel, image)

    if fmt == "mos":
        rows: list[list[Any]] = []
        for photo in photos:
            hr = bundled_photo(photo, _HR_SIZE)
            clean = _downscale(hr)
            ref = save(f"hr/{photo}.png", hr)
            lr_clean = save(f"lr/{photo}.png", clean)
            entries: list[tuple[str, float, Path, np.ndarray]] = []
            for level, s in enumerate(strengths, 1):
                # Every output of one photo shares the clean LR as its input (as in SR quality datasets);
                # the degradation stands for what a poor SR system loses or adds.
                lr = _degraded_lr(clean, s, rng)
                entries.append((f"sr/{photo}_L{level}.png", s, lr_clean, bicubic(lr, _SCALE)))
            entries.append((f"sr/{photo}_nearest.png", 0.7, lr_clean, nearest(clean, _SCALE)))
            entries.append(
                (f"sr/{photo}_oversharp.png", 0.5, lr_clean, unsharp(bicubic(clean, _SCALE), 2.5, 2.0))
            )
            for rel, s, lr_path, image in entries:
                img = save(rel, image)
                score = float(np.clip(5.0 - 4.0 * s + rng.normal(0.0, 0.1), 1.0, 5.0))
                rows.append(
                    [_rel(img, root), f"{score:.3f}", _rel(ref, root), _rel(lr_path, root)]
                    + ([photo] if grouped else [])
                )
        csv_path = root / "mos.csv"
        _write_csv(csv_path, ["image", "mos", "ref", "lr"] + (["group"] if grouped else []), rows)
        description = (
            "SYNTHETIC, not human opinion. Per photo (128x128 crop of a scikit-image photo), the LR is a "
            "MATLAB-bicubic x4 downscale; level L in 1..levels has strength s = L/(levels+1) and its image "
            "is a bicubic x4 upscale of the LR after Gaussian blur sigma 1.5*s, Gaussian noise std 0.06*s "
            "and JPEG quality 95-70*s. Variants: nearest-neighbour x4 of the clean LR (s = 0.7) and "
            "bicubic x4 over-sharpened by unsharp masking (amount 2.5, sigma 2; s = 0.5). "
            "MOS = clip(5 - 4*s + N(0, 0.1), 1, 5), seeded. Every image of a photo lists the clean LR as "
            "its input." + (" The group column names the photo." if grouped else "")
        )
        _write_meta(
            root,
            {
                "format": "mos",
                "score": "mos",
                "higher_is_better": True,
                "name": name,
                "synthetic": True,
                "description": description,
                "file": csv_path.name,
            },
        )
        return csv_path

    if fmt == "pairwise":
        pair_rows: list[list[Any]] = []
        for photo in photos:
            hr = bundled_photo(photo, _HR_SIZE)
            clean = _downscale(hr)
            lr_clean = save(f"lr/{photo}.png", clean)
            images: list[tuple[Path, float]] = []
            for level, s in enumerate(strengths, 1):
                images.append(
                    (save(f"sr/{photo}_L{level}.png", bicubic(_degraded_lr(clean, s, rng), _SCALE)), s)
                )
            # Two re-draws at existing strengths (different noise): equal strength, so a tie.
            for level in sorted({1, (levels + 1) // 2}):
                s = strengths[level - 1]
                redraw = bicubic(_degraded_lr(clean, s, rng), _SCALE)
                images.append((save(f"sr/{photo}_L{level}b.png", redraw), s))
            for i in range(len(images)):
                for j in range(i + 1, len(images)):
                    (pa, sa), (pb, sb) = images[i], images[j]
                    if rng.random() < 0.5:
                        (pa, sa), (pb, sb) = (pb, sb), (pa, sa)
                    if abs(sa - sb) < 1e-9:
                        va, vb, vt = 3, 3, 4
                    else:
                        win = min(10, 6 + round(8 * abs(sa - sb)) + int(rng.integers(0, 2)))
                        rest = 10 - win
                        lose, vt = rest - rest // 2, rest // 2
                        va, vb = (win, lose) if sa < sb else (lose, win)
                    pair_rows.append([_rel(pa, root), _rel(pb, root), va, vb, vt, _rel(lr_clean, root)])
        csv_path = root / "pairwise.csv"
        _write_csv(csv_path, ["a", "b", "votes_a", "votes_b", "votes_tie", "lr"], pair_rows)
        description = (
            "SYNTHETIC, not human opinion. Per photo, images as in synthetic-mos: bicubic x4 of the LR "
            "degraded at strength s = L/(levels+1) (blur sigma 1.5*s, noise std 0.06*s, JPEG 95-70*s), plus "
            "re-draws at two strengths. Every pair within a photo (order shuffled) gets 10 votes: the lower "
            "strength wins with 6 + round(8*|sa - sb|) + U{0,1} votes (at most 10), the rest split between "
            "the loser and tie; equal strengths get 3 / 3 / 4 tie votes (a tie)."
        )
        _write_meta(
            root,
            {
                "format": "pairwise",
                "name": name,
                "synthetic": True,
                "description": description,
                "file": csv_path.name,
            },
        )
        return csv_path

    cand_strengths = {"truthlike": 0.0, "bicubic": 0.25, "blurred": 0.5, "nearest": 0.65, "noisy": 0.8}
    group_rows: list[list[Any]] = []
    for photo in photos:
        hr = bundled_photo(photo, _HR_SIZE)
        clean = _downscale(hr)
        lr_path = save(f"lr/{photo}.png", clean)
        up = bicubic(clean, _SCALE)
        made = {
            "truthlike": quantize_8bit(0.7 * hr + 0.3 * up),
            "bicubic": up,
            "blurred": quantize_8bit(_blur(up, 1.5)),
            "nearest": nearest(clean, _SCALE),
            "noisy": quantize_8bit(np.clip(up + rng.normal(0.0, 0.08, size=up.shape), 0.0, 1.0)),
        }
        order = [str(k) for k in rng.permutation(list(made))]
        for key in order:
            path = save(f"candidates/{photo}_{key}.png", made[key])
            votes = round(10 * (1.0 - cand_strengths[key]))
            group_rows.append([photo, _rel(lr_path, root), _rel(path, root), votes])
    csv_path = root / "best_of_n.csv"
    _write_csv(csv_path, ["group", "lr", "candidate", "votes"], group_rows)
    description = (
        "SYNTHETIC, not human opinion. Per photo: LR = MATLAB-bicubic x4 downscale of a 128x128 crop; "
        "5 candidates in seeded random order with strengths truth-like 0.7*HR + 0.3*bicubic (0.0), "
        "bicubic x4 (0.25), bicubic blurred sigma 1.5 (0.5), nearest-neighbour x4 (0.65), bicubic + "
        "Gaussian noise std 0.08 (0.8); votes = round(10 * (1 - strength)), strictly decreasing."
    )
    _write_meta(
        root,
        {
            "format": "best-of-n",
            "name": name,
            "synthetic": True,
            "description": description,
            "file": csv_path.name,
        },
    )
    return csv_path
