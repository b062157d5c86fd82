"""``srjudge evolve vote --executor``: a round's votes spread over worker processes or a Ray cluster.

The same pseudo-label file as the one-process stage (:func:`srjudge.train.evolve.vote_round`): the
same pairs, rows and fingerprint, appended in pair order, so a finished file is byte for byte the
one ``--executor local`` writes, and either resumes the other. The voting judge (usually a local VLM)
is built once per worker from its spec, never in the driver: a worker also computes the file's
fingerprint. The work lives here because it composes the training package's public pieces.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srjudge.errors import SpecError, SrjudgeError
from srjudge.execute import Executor, PerWorker, worker_lru
from srjudge.judges import create_judge
from srjudge.judges.base import Judge


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


def vote_round_with(
    executor: Executor,
    config: Any,
    r: int,
    *,
    voter: str | None = None,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """:func:`srjudge.train.evolve.vote_round` with the pairs voted on ``executor``; a pair whose work
    failed is left out of the file (voted again on a re-run) and reported."""
    from srjudge.jsonl import open_for_append
    from srjudge.train.common import save_config_yaml
    from srjudge.train.evolve import (
        CONFIG_NAME,
        LABELS_NAME,
        RECORD_NAME,
        VoteResult,
        default_voter,
        refuse_multi_process,
        round_dir,
    )
    from srjudge.train.pseudo_labels import (
        LabelSummary,
        check_min_share,
        pairs_from_folder,
        read_pseudo_labels,
    )

    say = log or (lambda _msg: None)
    refuse_multi_process("srjudge evolve vote")
    if r < 1:
        raise SpecError(f"round must be >= 1, got {r}.")
    check_min_share(config.min_share)
    out = Path(config.out)
    config.check_inputs()
    tasks = pairs_from_folder(
        Path(config.images).resolve(), layout=config.layout, max_pairs=config.max_pairs, seed=config.seed
    )
    rdir = round_dir(out, r)
    if (rdir / RECORD_NAME).is_file():
        raise SrjudgeError(
            f"{rdir} holds a finished round ({RECORD_NAME}); voting into it would change the labels and "
            "settings its model was trained with. Vote into a new --out folder (or delete that round folder)."
        )
    voter = voter or default_voter(config, r, out)
    rdir.mkdir(parents=True, exist_ok=True)
    save_config_yaml(config, rdir / CONFIG_NAME)
    path = rdir / LABELS_NAME
    judge = _voter(voter)
    say(f"round {r}: voting on {len(tasks)} pairs with {voter} ({executor.spec}, {executor.workers} workers)")
    fingerprint = next(executor.map(FingerprintWork(judge, config.min_share), [None])).unwrap()
    done = {p.key for p in read_pseudo_labels(path, fingerprint)} if path.is_file() else set()
    work = VoteWork(judge, voter, config.min_share, fingerprint)
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
    for key, why in failed:
        say(f"  failed: {key}: {why}")
    labels = read_pseudo_labels(path, fingerprint)
    by_key = {label.key: label for label in labels}
    results = [by_key[t.key] for t in tasks if t.key in by_key]
    skipped = sum(label.skipped for label in results)
    summary = LabelSummary(
        path=str(path),
        pairs=len(results),
        new=new,
        reused=len(results) - new,
        labelled=len(results) - skipped,
        skipped=skipped,
        fingerprint=fingerprint,
    )
    say(
        f"round {r}: {summary.labelled}/{summary.pairs} pairs labelled, {summary.skipped} skipped "
        f"(vote share below {config.min_share:g} or unreadable) -> {path}"
        + (f"; {len(failed)} pairs failed (voted again on a re-run)" if failed else "")
    )
    return VoteResult(round=r, voter=voter, path=str(path), labels=tuple(labels), summary=summary)
