"""EvoQuality's offline stage: pairwise pseudo-labels by majority vote, with no human labels.

Pairs of unlabeled images (a flat folder, or the candidates of each LR input in the ``srjudge
select`` folder layout) are judged in BOTH orders by any judge; the votes make a pseudo-label:

- ``p_a`` = (votes for A + half the tie votes) / all votes: the pseudo-label's probability that A
  is better (the share the pairwise VLM protocol itself reports as A's score);
- ``winner`` = A when ``p_a`` > 0.5, B when below; ``vote_share`` = the winner's share;
- a pair whose ``vote_share`` is below ``min_share`` (default 0.75), that is split exactly, or that
  got no readable vote is recorded as skipped, with the reason, and never trained on.

A pairwise VLM judge (``vlm:...,protocol=pairwise,samples=K``) votes K times per order in one
``compare`` call; any other judge (a metric such as ``niqe``) is asked A-vs-B and B-vs-A once each.

The vote logic (:func:`decide`, :func:`votes_from_winners`, :func:`plan_pairs`) is pure; I/O sits
in :func:`label_pairs`, which appends and flushes one JSONL row per pair, so an interrupted run
resumes where it stopped (rows are keyed by the pair and a fingerprint of the judge and settings).
"""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from srjudge.errors import SpecError, SrjudgeError
from srjudge.judges.base import Comparison, Judge
from srjudge.provenance import config_hash

SCHEMA = "srjudge.pseudo_labels/1"
DEFAULT_MIN_SHARE = 0.75
Layout = Literal["auto", "flat", "sets"]
Winner = Literal["A", "B"]


# ----------------------------------------------------------------------------------------------------------
# Pure vote logic
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What the votes of one pair decide: a winner with its share, or a skip with its reason."""

    winner: Winner | None
    p_a: float | None
    vote_share: float | None
    margin: float | None
    skipped: bool
    reason: str | None = None


def check_min_share(min_share: float) -> float:
    """``min_share`` must lie in [0.5, 1]: below one half the loser would pass as the winner."""
    if not 0.5 <= min_share <= 1.0:
        raise SpecError(
            f"min_share must be in [0.5, 1], got {min_share}; the default is {DEFAULT_MIN_SHARE}."
        )
    return min_share


def decide(votes: Mapping[str, int], min_share: float = DEFAULT_MIN_SHARE) -> Decision:
    """The pseudo-label from vote counts ``{"A": n, "B": n, "tie": n}`` (A = first-listed image).

    ``p_a`` = (A + tie/2) / total; the winner needs a share of at least ``min_share``.
    ``margin`` = 100 * (2 p_a - 1), as in the pairwise VLM protocol's Comparison.
    """
    check_min_share(min_share)
    unknown = sorted(set(votes) - {"A", "B", "tie"})
    if unknown:
        raise SpecError(f"votes may only count A, B and tie; got {', '.join(unknown)}.")
    counts = {k: int(votes.get(k, 0)) for k in ("A", "B", "tie")}
    if any(v < 0 for v in counts.values()):
        raise SpecError(f"vote counts must be >= 0, got {counts}.")
    total = sum(counts.values())
    if total == 0:
        return Decision(None, None, None, None, True, "no vote could be read")
    p_a = (counts["A"] + 0.5 * counts["tie"]) / total
    margin = 100.0 * (2.0 * p_a - 1.0)
    if p_a == 0.5:
        return Decision(None, p_a, 0.5, margin, True, f"no majority: votes {counts}")
    winner: Winner = "A" if p_a > 0.5 else "B"
    share = max(p_a, 1.0 - p_a)
    if share < min_share:
        return Decision(
            winner,
            p_a,
            share,
            margin,
            True,
            f"vote share {share:.3f} of {winner} is below min_share {min_share:g}: votes {counts}",
        )
    return Decision(winner, p_a, share, margin, False)


def votes_from_winners(forward: str, backward: str) -> tuple[dict[str, int], float]:
    """Votes for A from a judge without votes of its own, asked A-vs-B (``forward``) and B-vs-A.

    ``forward`` and ``backward`` are Comparison winners ("A", "B", "tie") in the order asked;
    position consistency is 1.0 when both orders agree, else 0.0.
    """
    for w in (forward, backward):
        if w not in ("A", "B", "tie"):
            raise SpecError(f"a comparison winner is A, B or tie, got {w!r}.")
    votes = {"A": 0, "B": 0, "tie": 0}
    votes[forward] += 1
    votes[{"A": "B", "B": "A", "tie": "tie"}[backward]] += 1
    consistent = {"A": "B", "B": "A", "tie": "tie"}[backward] == forward
    return votes, 1.0 if consistent else 0.0


@dataclass(frozen=True)
class PairTask:
    """One pair to judge: the two images, the LR input they share (or None), and their group."""

    image_a: str
    image_b: str
    lr: str | None = None
    group: str | None = None

    @property
    def key(self) -> str:
        return f"{self.image_a}|{self.image_b}"


def plan_pairs(
    groups: Sequence[tuple[str | None, str | None, Sequence[str]]],
    *,
    max_pairs: int | None,
    seed: int,
) -> list[PairTask]:
    """Every unordered pair within each group ``(name, lr, images)``, capped at ``max_pairs``.

    Pairs are listed (i, j) with i < j in each group's order; when there are more than
    ``max_pairs`` a seeded uniform sample is kept, in the listed order, so the same inputs and seed
    give the same pairs (and later rounds judge the same pairs as earlier ones).
    """
    if max_pairs is not None and max_pairs < 1:
        raise SpecError(f"max_pairs must be >= 1 (or unset for all pairs), got {max_pairs}.")
    tasks: list[PairTask] = []
    for name, lr, images in groups:
        for i in range(len(images)):
            for j in range(i + 1, len(images)):
                tasks.append(PairTask(images[i], images[j], lr, name))
    if max_pairs is not None and len(tasks) > max_pairs:
        keep = sorted(random.Random(seed).sample(range(len(tasks)), max_pairs))
        tasks = [tasks[k] for k in keep]
    return tasks


# ----------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PseudoLabel:
    """One JSONL row: a pair, its votes over both orders, and the decision (or why it was skipped)."""

    image_a: str
    image_b: str
    lr: str | None
    winner: Winner | None
    p_a: float | None
    vote_share: float | None
    votes: Mapping[str, int]
    margin: float | None
    position_consistency: float | None
    judge: str
    skipped: bool
    reason: str | None = None
    group: str | None = None
    fingerprint: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.image_a}|{self.image_b}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "key": self.key,
            "image_a": self.image_a,
            "image_b": self.image_b,
            "lr": self.lr,
            "group": self.group,
            "winner": self.winner,
            "p_a": None if self.p_a is None else round(self.p_a, 6),
            "vote_share": None if self.vote_share is None else round(self.vote_share, 6),
            "votes": dict(self.votes),
            "margin": None if self.margin is None else round(self.margin, 6),
            "position_consistency": self.position_consistency,
            "judge": self.judge,
            "skipped": self.skipped,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> PseudoLabel:
        return cls(
            image_a=str(row["image_a"]),
            image_b=str(row["image_b"]),
            lr=row.get("lr"),
            winner=row.get("winner"),
            p_a=row.get("p_a"),
            vote_share=row.get("vote_share"),
            votes={str(k): int(v) for k, v in (row.get("votes") or {}).items()},
            margin=row.get("margin"),
            position_consistency=row.get("position_consistency"),
            judge=str(row.get("judge", "")),
            skipped=bool(row.get("skipped", False)),
            reason=row.get("reason"),
            group=row.get("group"),
            fingerprint=str(row.get("fingerprint", "")),
            extra=dict(row.get("extra") or {}),
        )


def label_from_votes(
    task: PairTask,
    votes: Mapping[str, int],
    position_consistency: float | None,
    *,
    judge: str,
    min_share: float,
    fingerprint: str = "",
    abstain_reason: str | None = None,
) -> PseudoLabel:
    """The row for one pair from its votes (pure)."""
    d = decide(votes, min_share)
    reason = d.reason
    if d.skipped and abstain_reason and not sum(votes.values()):
        reason = f"no vote could be read: {abstain_reason}"
    return PseudoLabel(
        image_a=task.image_a,
        image_b=task.image_b,
        lr=task.lr,
        winner=d.winner,
        p_a=d.p_a,
        vote_share=d.vote_share,
        votes={k: int(votes.get(k, 0)) for k in ("A", "B", "tie")},
        margin=d.margin,
        position_consistency=position_consistency,
        judge=judge,
        skipped=d.skipped,
        reason=reason,
        group=task.group,
        fingerprint=fingerprint,
    )


def agreement(previous: Sequence[PseudoLabel], current: Sequence[PseudoLabel]) -> tuple[float | None, int]:
    """Share of pairs labelled (not skipped) in both lists whose winners agree, and how many pairs.

    ``None`` when no pair is labelled in both.
    """
    before = {p.key: p.winner for p in previous if not p.skipped}
    common = [(before[p.key], p.winner) for p in current if not p.skipped and p.key in before]
    if not common:
        return None, 0
    return sum(a == b for a, b in common) / len(common), len(common)


# ----------------------------------------------------------------------------------------------------------
# Inputs (I/O)
# ----------------------------------------------------------------------------------------------------------


def detect_layout(root: Path) -> Literal["flat", "sets"]:
    """``sets`` when some sub-folder holds an ``lr.<ext>`` image (the select layout), else ``flat``."""
    from srjudge.images.io import IMAGE_SUFFIXES

    if not root.is_dir():
        raise SrjudgeError(f"{root}: not a folder. Give a folder of images, or of LR sub-folders.")
    for sub in root.iterdir():
        if sub.is_dir() and any(
            f.is_file() and f.stem.lower() == "lr" and f.suffix.lower() in IMAGE_SUFFIXES
            for f in sub.iterdir()
        ):
            return "sets"
    return "flat"


def pairs_from_folder(
    root: Path, *, layout: Layout = "auto", max_pairs: int | None = None, seed: int = 0
) -> list[PairTask]:
    """The pairs of a folder: all pairs of each LR input's candidates (``sets``), or pairs of a flat folder.

    ``sets`` is the ``srjudge select`` layout (``ROOT/<item>/lr.png`` plus candidates); ``flat``
    is a folder of images. Paths in the tasks are as found under ``root``.
    """
    from srjudge.images.io import expand_image_paths
    from srjudge.select.folder import items_from_folder

    if layout not in ("auto", "flat", "sets"):
        raise SpecError(f"layout must be auto, flat or sets, got {layout!r}.")
    kind = detect_layout(root) if layout == "auto" else layout
    groups: list[tuple[str | None, str | None, Sequence[str]]]
    if kind == "sets":
        groups = [
            (item.name, str(item.lr), [str(c) for c in item.candidates]) for item in items_from_folder(root)
        ]
    else:
        images = [str(p) for p in expand_image_paths([root])]
        groups = [(None, None, images)]
    tasks = plan_pairs(groups, max_pairs=max_pairs, seed=seed)
    if not tasks:
        raise SrjudgeError(
            f"{root}: no pair to judge: a pair needs two images (in one candidate set for the select layout)."
        )
    return tasks


# ----------------------------------------------------------------------------------------------------------
# Voting and writing (I/O)
# ----------------------------------------------------------------------------------------------------------


def judge_fingerprint(judge: Judge, min_share: float) -> str:
    """What the rows of a pseudo-label file depend on: the judge's configuration and ``min_share``."""
    return config_hash(
        {"judge": judge.spec, "config": judge.provenance().config_hash, "min_share": min_share}
    )


def collect_votes(
    judge: Judge, a: np.ndarray, b: np.ndarray, lr: np.ndarray | None
) -> tuple[dict[str, int], float | None, str | None]:
    """Votes for A over both orders, position consistency, and an abstention reason (if any)."""
    first: Comparison = judge.compare(a, b, lr=lr)
    if first.votes:  # a voting judge (pairwise VLM): both orders, K samples each, in one call
        votes = {k: int(first.votes.get(k, 0)) for k in ("A", "B", "tie")}
        return votes, first.position_consistency, first.abstain_reason
    second = judge.compare(b, a, lr=lr)
    reasons = [r for r in (first.abstain_reason, second.abstain_reason) if r]
    if reasons:
        return {"A": 0, "B": 0, "tie": 0}, None, "; ".join(reasons)
    for c in (first, second):
        if c.verdict_a.abstained or c.verdict_b.abstained:
            why = c.verdict_a.abstain_reason or c.verdict_b.abstain_reason or "abstained"
            return {"A": 0, "B": 0, "tie": 0}, None, why
    votes, consistency = votes_from_winners(first.winner, second.winner)
    return votes, consistency, None


def read_pseudo_labels(path: Path, fingerprint: str | None = None) -> list[PseudoLabel]:
    """Rows of a pseudo-label file (of one fingerprint when given).

    A later row for the same pair replaces an earlier one. An unterminated last line (cut by an
    interruption: that pair is judged again) is left out; any other bad line raises
    :class:`SrjudgeError` naming the file and line.
    """
    from srjudge.jsonl import read_jsonl

    if not path.is_file():
        raise SrjudgeError(f"{path}: no pseudo-label file. Run the labelling stage first (srjudge evolve).")
    rows: dict[str, PseudoLabel] = {}
    for n, data in read_jsonl(path):
        try:
            label = PseudoLabel.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SrjudgeError(
                f"{path}:{n}: not a pseudo-label row ({type(exc).__name__}: {exc}); fix or delete that line."
            ) from None
        if fingerprint is None or label.fingerprint == fingerprint:
            rows[label.key] = label
    return list(rows.values())


@dataclass(frozen=True)
class LabelSummary:
    """What one labelling run did: rows written now, reused from an earlier run, labelled and skipped."""

    path: str
    pairs: int
    new: int
    reused: int
    labelled: int
    skipped: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _ImageCache:
    """A few decoded images (pairs share images), least recently used dropped first."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.items: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, path: str) -> np.ndarray:
        from srjudge.images.io import load_image

        if path in self.items:
            self.items.move_to_end(path)
            return self.items[path]
        image = load_image(path)
        self.items[path] = image
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return image


def label_pairs(
    tasks: Sequence[PairTask],
    judge: Judge,
    out_path: Path,
    *,
    min_share: float = DEFAULT_MIN_SHARE,
    judge_spec: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LabelSummary:
    """Judge every pair (both orders), appending one flushed JSONL row per pair to ``out_path``.

    Pairs already in the file with the same fingerprint (judge configuration, ``min_share``) are
    not judged again. ``judge_spec`` (the spec as the user wrote it) is recorded in each row;
    by default the judge's own spec.
    """
    from srjudge.jsonl import open_for_append

    check_min_share(min_share)
    fingerprint = judge_fingerprint(judge, min_share)
    done = {p.key: p for p in read_pseudo_labels(out_path, fingerprint)} if out_path.is_file() else {}
    spec = judge_spec or judge.spec
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cache = _ImageCache()
    new = 0
    results: list[PseudoLabel] = []
    with open_for_append(out_path) as handle:  # drops a line an interruption cut
        for n, task in enumerate(tasks, 1):
            if task.key in done:
                results.append(done[task.key])
            else:
                a, b = cache.get(task.image_a), cache.get(task.image_b)
                lr = cache.get(task.lr) if task.lr else None
                votes, consistency, why = collect_votes(judge, a, b, lr)
                label = label_from_votes(
                    task,
                    votes,
                    consistency,
                    judge=spec,
                    min_share=min_share,
                    fingerprint=fingerprint,
                    abstain_reason=why,
                )
                handle.write(json.dumps(label.to_dict()) + "\n")
                handle.flush()
                results.append(label)
                new += 1
            if progress is not None:
                progress(n, len(tasks))
    skipped = sum(r.skipped for r in results)
    return LabelSummary(
        path=str(out_path),
        pairs=len(results),
        new=new,
        reused=len(results) - new,
        labelled=len(results) - skipped,
        skipped=skipped,
        fingerprint=fingerprint,
    )


__all__ = [
    "DEFAULT_MIN_SHARE",
    "Decision",
    "LabelSummary",
    "PairTask",
    "PseudoLabel",
    "agreement",
    "collect_votes",
    "decide",
    "detect_layout",
    "judge_fingerprint",
    "label_from_votes",
    "label_pairs",
    "pairs_from_folder",
    "plan_pairs",
    "read_pseudo_labels",
    "votes_from_winners",
]
