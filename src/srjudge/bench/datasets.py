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
one :class:`DatasetError` (:mod:`srjudge.bench.dataset_files` reads the file and checks the cells).
It never opens an image, so 10,000 rows load in well under a second. Synthetic datasets for sanity
checks: :mod:`srjudge.bench.synthetic`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srjudge.bench.dataset_files import (
    DATASET_JSON,
    FORMATS,
    DatasetError,
    FileChecks,
    Problem,
    Table,
    cell_text,
    check_columns,
    detect_format,
    file_cell,
    number_cell,
    read_csv_table,
    read_jsonl_table,
    read_meta,
    resolve_input,
)


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


def _load_mos(
    table: Table, meta: dict[str, Any], files: FileChecks, problems: list[Problem]
) -> tuple[tuple[MOSItem, ...], bool, str]:
    score_cols = [c for c in ("score", "mos", "dmos") if c in table.columns]
    check_columns("mos", table.columns, ["image"], problems)
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
            group = cell_text(values.get("group")).strip() or None
            (with_group if group is not None else without_group).append(row)
        image = file_cell(values.get("image"), "image", row, files, problems, required=True)
        score = number_cell(values.get(score_col), score_col, row, problems) if score_cols else None
        ref = file_cell(values.get("ref"), "ref", row, files, problems, required=False) if has_ref else None
        lr = file_cell(values.get("lr"), "lr", row, files, problems, required=False) if has_lr else None
        if image is not None:
            first = seen.setdefault(image, row)
            if first != row:
                problems.append(
                    Problem(
                        "duplicate",
                        f"image {cell_text(values.get('image'))!r} already rated in row {first}.",
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


def _load_pairwise(table: Table, files: FileChecks, problems: list[Problem]) -> tuple[PairItem, ...]:
    cols = set(table.columns)
    has_winner = "winner" in cols
    has_votes = bool({"votes_a", "votes_b"} & cols)
    required = ["a", "b"]
    if has_votes:
        required += ["votes_a", "votes_b"]
    check_columns("pairwise", table.columns, required, problems)
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
        a = file_cell(values.get("a"), "a", row, files, problems, required=True)
        b = file_cell(values.get("b"), "b", row, files, problems, required=True)
        lr = file_cell(values.get("lr"), "lr", row, files, problems, required=False) if has_lr else None
        votes: tuple[float, float, float] | None = None
        if has_winner and not has_votes:
            w = cell_text(values.get("winner")).strip().lower()
            votes = _WINNERS.get(w)
            if votes is None:
                problems.append(Problem("bad-value", f"winner {w!r} must be a, b or tie.", row))
        elif has_votes:
            va = number_cell(values.get("votes_a"), "votes_a", row, problems, votes=True)
            vb = number_cell(values.get("votes_b"), "votes_b", row, problems, votes=True)
            raw_tie = values.get("votes_tie")
            vt: float | None = 0.0
            if raw_tie is not None and cell_text(raw_tie).strip() != "":
                vt = number_cell(raw_tie, "votes_tie", row, problems, votes=True)
            if va is not None and vb is not None and vt is not None:
                if va + vb + vt <= 0:
                    problems.append(Problem("bad-value", "the pair has no votes at all.", row))
                else:
                    votes = (va, vb, vt)
        if a is not None and b is not None:
            if a == b:
                problems.append(
                    Problem("duplicate", f"a and b are the same image {cell_text(values.get('a'))!r}.", row)
                )
                continue
            first = seen.setdefault(frozenset((a, b)), row)
            if first != row:
                problems.append(
                    Problem(
                        "duplicate",
                        f"the pair {cell_text(values.get('a'))!r} / {cell_text(values.get('b'))!r} "
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


def _load_best_of_n(table: Table, files: FileChecks, problems: list[Problem]) -> tuple[BestOfNGroup, ...]:
    check_columns("best-of-n", table.columns, ["group", "lr", "candidate", "votes"], problems)
    order: list[str] = []
    members: dict[str, list[tuple[int, str | None, str | None, float | None]]] = {}
    for row, values in enumerate(table.rows, 1):
        if not values:
            continue
        group = cell_text(values.get("group")).strip()
        if not group:
            problems.append(Problem("missing-value", "group is empty.", row))
        lr = file_cell(values.get("lr"), "lr", row, files, problems, required=True)
        cand = file_cell(values.get("candidate"), "candidate", row, files, problems, required=True)
        votes = number_cell(values.get("votes"), "votes", row, problems, votes=True)
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
    file = resolve_input(Path(path))
    if not file.is_file():
        raise DatasetError(file, [Problem("file", "no such dataset file.")])
    problems: list[Problem] = []
    meta = read_meta(file.parent / DATASET_JSON, problems)
    table = read_csv_table(file) if file.suffix.lower() == ".csv" else read_jsonl_table(file)
    problems.extend(table.problems)
    fmt = meta.get("format") or detect_format(table.columns)
    if fmt is None:
        problems.append(
            Problem(
                "format",
                f"cannot tell the format from the columns ({', '.join(table.columns) or 'none'}); "
                f'declare it in {DATASET_JSON} as "format": one of {", ".join(FORMATS)}.',
            )
        )
        raise DatasetError(file, problems)
    files = FileChecks(str(file.parent.absolute()))
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
