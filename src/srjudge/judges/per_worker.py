"""Judges in worker processes: each worker rebuilds the driver's judge from its spec, once."""

from __future__ import annotations

import functools

from srjudge.errors import SrjudgeError
from srjudge.execute.worker import PerWorker
from srjudge.judges.base import Judge
from srjudge.judges.registry import create_judge


def judge_handle(judge: Judge) -> PerWorker[Judge]:
    """``judge`` for work objects: used as is in the driver, rebuilt once per worker from its spec
    (a rebuilt judge whose configuration hash differs from the driver's is refused)."""
    config_hash = judge.provenance().config_hash
    return PerWorker(
        f"judge:{judge.spec}#{config_hash}",
        functools.partial(create_judge, judge.spec),
        local=judge,
        check=functools.partial(_same_judge, config_hash),
    )


def _same_judge(expected: str, built: Judge) -> None:
    found = built.provenance().config_hash
    if found != expected:
        raise SrjudgeError(
            f"the judge {built.spec!r} rebuilt in a worker has configuration hash {found}, the driver's "
            f"{expected}: the worker sees other files or settings (install the same srjudge, weights and "
            "environment on every node)."
        )
