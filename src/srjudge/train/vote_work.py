"""A round's votes spread over an executor (worker processes or a Ray cluster).

The same pseudo-label file as the one-process path (:func:`srjudge.train.pseudo_labels.label_pairs`):
the same pairs, rows and fingerprint, appended in pair order, so a finished file is byte for byte the
one the local path writes, and either resumes the other. The voting judge (usually a local VLM) is
built once per worker from its spec, never in the driver: a worker also computes the file's fingerprint.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srjudge.execute import Executor, PerWorker, worker_lru
from srjudge.judges import create_judge
from srjudge.judges.base import Judge
from srjudge.train.pseudo_labels import LabelSummary, PseudoLabel


def _voter(spec: str) -> PerWorker[Judge]:
    return PerWorker(f"judge:{spec}", functools.partial(create_judge, spec))


@dataclass(frozen=True)
class FingerprintWork:
    """The pseudo-label fingerprint of the voter (computed where the voter is built: a worker)."""

    judge: PerWorker[Judge]
    min_share: float

    def __call__(self, _: object) -> str:
        from srjudge.train.pseudo_labels import judge_fingerprint

        return judge_fingerprint(self.judge.get(), self.min_share)


@dataclass(frozen=True)
class VoteWork:
    """Votes on one pair (both orders) and its pseudo-label row."""

    judge: PerWorker[Judge]
    spec: str
    min_share: float
    fingerprint: str

    def __call__(self, task: Any) -> dict[str, Any]:
        from srjudge.images.io import load_image
        from srjudge.train.pseudo_labels import collect_votes, label_from_votes

        images = worker_lru("evolve-vote-images", 32)
        a = images.get(task.image_a, lambda: load_image(task.image_a))
        b = images.get(task.image_b, lambda: load_image(task.image_b))
        lr = images.get(task.lr, lambda: load_image(task.lr)) if task.lr else None
        votes, consistency, why = collect_votes(self.judge.get(), a, b, lr)
        label = label_from_votes(
            task,
            votes,
            consistency,
            judge=self.spec,
            min_share=self.min_share,
            fingerprint=self.fingerprint,
            abstain_reason=why,
        )
        return label.to_dict()


def label_pairs_on(
    executor: Executor,
    tasks: Sequence[Any],
    voter: str,
    path: Path,
    *,
    min_share: float,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[PseudoLabel], LabelSummary, list[tuple[str, str]]]:
    """Vote the pairs not yet in ``path`` on ``executor``; returns the labels in pair order, the summary
    and the (pair key, reason) of each pair whose work failed: left out of the file, voted on a re-run."""
    from srjudge.jsonl import open_for_append
    from srjudge.train.pseudo_labels import check_min_share, read_pseudo_labels

    check_min_share(min_share)
    judge = _voter(voter)
    fingerprint = next(executor.map(FingerprintWork(judge, min_share), [None])).unwrap()
    done = {p.key for p in read_pseudo_labels(path, fingerprint)} if path.is_file() else set()
    work = VoteWork(judge, voter, min_share, fingerprint)
    new, failed = 0, []
    with open_for_append(path) as handle:  # drops a line an interruption cut
        pending = [t for t in tasks if t.key not in done]
        for n, outcome in enumerate(executor.map(work, pending), 1):
            if outcome.value is None:
                failed.append((outcome.item.key, str(outcome.error)))
            else:
                handle.write(json.dumps(outcome.value) + "\n")
                handle.flush()
                new += 1
            if progress is not None:
                progress(len(done) + n, len(tasks))
    by_key = {label.key: label for label in read_pseudo_labels(path, fingerprint)}
    labels = [by_key[t.key] for t in tasks if t.key in by_key]
    skipped = sum(label.skipped for label in labels)
    summary = LabelSummary(
        path=str(path),
        pairs=len(labels),
        new=new,
        reused=len(labels) - new,
        labelled=len(labels) - skipped,
        skipped=skipped,
        fingerprint=fingerprint,
    )
    return labels, summary, failed
