"""``--executor processes:N``: N worker processes on this machine (``concurrent.futures``, spawned).

Each process is started with ``spawn`` (no state copied from the driver), caps its math libraries at
its share of the cores (:func:`~srjudge.execute.worker.limit_threads`), and builds each judge or SR
backend once (:mod:`srjudge.execute.worker`). A process that dies (killed, out of memory) breaks the
pool: the pool is started again and the items that were in flight are run again.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from srjudge.execute.base import Executor, Result, WorkerLost, run_batch
from srjudge.execute.spec import ExecutorSpec
from srjudge.execute.worker import limit_threads


def _init_process(threads: int) -> None:
    limit_threads(threads)


class ProcessExecutor(Executor):
    """A pool of worker processes on this machine."""

    def __init__(self, spec: ExecutorSpec) -> None:
        super().__init__(spec)
        self._workers = spec.default_workers()
        self._pool: ProcessPoolExecutor | None = None
        self._breaks = 0
        self._generation = 0  # pools started so far; a future belongs to the pool of its generation
        self._born: dict[Future[list[Result]], int] = {}

    @property
    def workers(self) -> int:
        return self._workers

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            threads = max(1, (os.cpu_count() or 1) // self._workers)
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_process,
                initargs=(threads,),
            )
        return self._pool

    def _broken(self, generation: int) -> None:
        """Drop the pool of ``generation`` (when it is still the current one): the next submit starts one."""
        if self._pool is not None and generation == self._generation:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._generation += 1
            self._breaks += 1

    def _submit(self, work: Callable[[Any], Any], batch: list[tuple[int, Any]]) -> Future[list[Result]]:
        try:
            future = self._ensure_pool().submit(run_batch, work, batch, self.spec.threads)
        except BrokenProcessPool:
            self._broken(self._generation)
            future = self._ensure_pool().submit(run_batch, work, batch, self.spec.threads)
        self._born[future] = self._generation
        return future

    def _wait(self, handles: list[Any]) -> list[tuple[Any, list[Result] | WorkerLost]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        results: list[tuple[Any, list[Result] | WorkerLost]] = []
        for future in (h for h in handles if h in done):  # in submission order
            generation = self._born.pop(future, self._generation)
            try:
                results.append((future, future.result()))
            except BrokenProcessPool:
                self._broken(generation)
                results.append((future, WorkerLost("a worker process exited abruptly")))
        return results

    def _cancel(self, handles: list[Any]) -> None:
        for future in handles:
            future.cancel()
            self._born.pop(future, None)

    def _lost_workers(self) -> int:
        return self._breaks

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
