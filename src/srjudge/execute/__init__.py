"""The execution layer: run a command's work over many items here, in processes, or on a Ray cluster.

Commands describe items and work, not workers::

    from srjudge.execute import create_executor

    with create_executor("processes:4") as executor:
        for outcome in executor.map(work, items):  # in input order, streamed
            ...  # outcome.value, or outcome.error (a per-item error record)

``--executor`` takes ``local`` (the default: one process, one item at a time), ``processes[:N]`` or
``ray[:auto|ADDRESS]``; see :mod:`srjudge.execute.spec`. Work objects hold judges and SR backends as
:class:`PerWorker` handles, built once per worker from their spec. Nothing heavy is imported here:
Ray only when a Ray executor is made.
"""

from __future__ import annotations

from srjudge.execute.base import Executor, LocalExecutor, MapStats, Outcome, Work, error_message
from srjudge.execute.spec import ExecutorSpec, parse_executor
from srjudge.execute.worker import LruCache, PerWorker, load_once, worker_lru

EXECUTOR_HELP = (
    "Where items run: local (default), processes[:N] (N processes here), or ray[:auto|ADDRESS] "
    "(a Ray cluster; bare 'ray' starts one for the run). Options: workers=N, cpus=C, gpus=G, threads=T, "
    "retries=R."
)


def create_executor(spec: str | ExecutorSpec | None = None) -> Executor:
    """An executor for ``spec`` (``local`` when None); Ray is imported only for ``ray``."""
    parsed = parse_executor(spec)
    if parsed.kind == "processes":
        from srjudge.execute.processes import ProcessExecutor

        return ProcessExecutor(parsed)
    if parsed.kind == "ray":
        from srjudge.execute.ray_pool import RayExecutor

        return RayExecutor(parsed)
    return LocalExecutor(parsed)


__all__ = [
    "EXECUTOR_HELP",
    "Executor",
    "ExecutorSpec",
    "LocalExecutor",
    "LruCache",
    "MapStats",
    "Outcome",
    "PerWorker",
    "Work",
    "create_executor",
    "error_message",
    "load_once",
    "parse_executor",
    "worker_lru",
]
