"""The execution layer's contract: work applied to item descriptions, one :class:`Outcome` per item.

A command describes its items (small, picklable values: paths, names, settings) and its work (a
picklable callable, usually a frozen dataclass holding specs and :class:`~srjudge.execute.worker.PerWorker`
handles). :meth:`Executor.map` streams one outcome per item back to the driver, in input order by
default, with at most a bounded window of items in flight, so driver memory does not grow with the
number of items. Workers write an item's own records (images, JSON) atomically; the driver appends
the shared logs (CSV, JSONL) from the outcomes, in order, so that a run's files are the same whatever
the executor.

Failures: an exception raised by the work becomes that item's error record (the job goes on); an item
whose worker died (killed, out of memory) is run again on a live worker, up to ``retries`` times, and
only then recorded as lost. Items are never run twice once their outcome has been yielded.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from srjudge.errors import SrjudgeError
from srjudge.execute.spec import ExecutorSpec

I = TypeVar("I")  # noqa: E741  (an item description)
R = TypeVar("R")

Work = Callable[[I], R]
"""What runs on one item: a picklable callable (module-level function or frozen dataclass)."""


@dataclass(frozen=True)
class Outcome(Generic[I, R]):
    """What became of one item: its value, or its error record."""

    index: int
    """Position of the item in the input."""
    item: I
    value: R | None
    error: str | None = None
    """One line: the error's message (an :class:`SrjudgeError`'s as is, others with their type)."""
    error_type: str | None = None
    """The exception's class name, ``WorkerLost`` when its worker died ``retries + 1`` times."""
    attempts: int = 1
    worker: str = "driver"
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> R:
        """The value; an error record raises :class:`SrjudgeError` with its message."""
        if self.error is not None:
            raise SrjudgeError(self.error)
        return self.value  # type: ignore[return-value]


@dataclass
class MapStats:
    """What one :meth:`Executor.map` did: items, errors, retried items, lost workers, time, per worker."""

    executor: str
    workers: int
    items: int = 0
    errors: int = 0
    retried: int = 0
    workers_lost: int = 0
    seconds: float = 0.0
    per_worker: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One summary line for the end of a job."""
        rate = f", {self.items / self.seconds:.3g} items/s" if self.seconds > 0 and self.items else ""
        text = (
            f"executor {self.executor}: {self.items} items on {self.workers} worker(s) in "
            f"{self.seconds:.1f} s{rate}, {self.errors} error record(s)"
        )
        if self.retried or self.workers_lost:
            text += f", {self.workers_lost} worker(s) lost, {self.retried} item run(s) retried"
        return text

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def error_message(exc: BaseException) -> str:
    """An srjudge error's own message; anything else with its type and where it was raised."""
    if isinstance(exc, SrjudgeError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


BATCH_SECONDS = 0.05
"""Work per batch the automatic batch size aims at: dispatch costs well under 1 % of it."""
MAX_BATCH = 64

Result = tuple[int, Any, str | None, str | None, float, str]
"""What a worker sends back for one item: (index, value, error, error_type, seconds, worker)."""


def run_batch(work: Callable[[Any], Any], batch: list[tuple[int, Any]], threads: int = 1) -> list[Result]:
    """:func:`run_one` on each (index, item) of a batch, results in order (what a worker runs per task);
    with ``threads`` > 1 up to that many items at once, in this worker's thread pool."""
    if threads <= 1 or len(batch) <= 1:
        return [run_one(work, index, item) for index, item in batch]
    from concurrent.futures import ThreadPoolExecutor

    from srjudge.execute.worker import load_once

    pool = load_once(f"threads:{threads}", lambda: ThreadPoolExecutor(threads, thread_name_prefix="srjudge"))
    return list(pool.map(lambda pair: run_one(work, *pair), batch))


def run_one(work: Callable[[Any], Any], index: int, item: Any) -> Result:
    """Run ``work`` on one item where the worker is; an exception becomes the item's error record."""
    started = time.perf_counter()
    try:
        value = work(item)
    except Exception as exc:  # one bad item is recorded and the job goes on
        return (
            index,
            None,
            error_message(exc),
            type(exc).__name__,
            time.perf_counter() - started,
            worker_name(),
        )
    return index, value, None, None, time.perf_counter() - started, worker_name()


class WorkerLost(Exception):
    """Raised inside an executor when the process running an item died; the item is retried."""


@dataclass
class _Task:
    index: int
    item: Any
    attempts: int = 1


class Executor(ABC):
    """Runs work over items somewhere; use as a context manager (workers start lazily, stop on exit)."""

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec
        self.history: list[MapStats] = []
        """The :class:`MapStats` of each :meth:`map` so far (the last one still counting while it runs)."""

    @property
    def last_stats(self) -> MapStats | None:
        return self.history[-1] if self.history else None

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many items run at once."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027  (optional for subclasses)
        """Stop the workers this executor started."""

    def map(
        self,
        work: Callable[[I], R],
        items: Iterable[I],
        *,
        ordered: bool = True,
        window: int | None = None,
        batch: int | None = None,
    ) -> Iterator[Outcome[I, R]]:
        """One :class:`Outcome` per item, streamed: in input order (``ordered``) or as completed.

        Items go to the workers in batches of ``batch`` (default: sized as the run goes so that one
        batch takes about :data:`BATCH_SECONDS`, which keeps the per-item cost of dispatch small for
        quick items and the batches short for slow ones). At most ``window`` items (default: two
        batches per worker, at least 4 items per worker) are in flight or waiting for an earlier one;
        ``items`` is consumed lazily, so a generator of a million descriptions is never a list here.
        :attr:`last_stats` counts what it did (items, errors, retries, time).
        """
        if batch is not None and batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        stats = MapStats(str(self.spec), self.workers)
        self.history.append(stats)
        started = time.perf_counter()
        try:
            for outcome in self._map(work, iter(items), ordered, window, batch, stats):
                stats.items += 1
                stats.errors += 0 if outcome.ok else 1
                stats.per_worker[outcome.worker] = stats.per_worker.get(outcome.worker, 0) + 1
                stats.seconds = time.perf_counter() - started
                yield outcome
        finally:
            stats.seconds = time.perf_counter() - started

    def _map(
        self,
        work: Callable[[Any], Any],
        source: Iterator[Any],
        ordered: bool,
        window: int | None,
        batch: int | None,
        stats: MapStats,
    ) -> Iterator[Outcome[Any, Any]]:
        """The pool engine: keep batches submitted up to the window, retry lost ones, yield in order."""
        in_flight: dict[Any, list[_Task]] = {}
        ready: dict[int, Outcome[Any, Any]] = {}
        next_index = 0
        exhausted = False
        numbered = enumerate(source)
        threads = self.spec.threads
        size = batch or threads
        timed_items, timed_seconds = 0, 0.0
        self._start(work)
        try:
            while True:
                limit = window or max(4 * self.workers, 2 * self.workers * size)
                pending = sum(len(b) for b in in_flight.values())
                while not exhausted and pending + len(ready) < limit:
                    tasks = [_Task(i, x) for i, x in itertools.islice(numbered, min(size, limit - pending))]
                    if not tasks:
                        exhausted = True
                        break
                    in_flight[self._submit(work, [(t.index, t.item) for t in tasks])] = tasks
                    pending += len(tasks)
                if not in_flight:
                    break
                for handle, result in self._wait(list(in_flight)):
                    tasks = in_flight.pop(handle)
                    if isinstance(result, WorkerLost):
                        again = [t for t in tasks if t.attempts <= self.spec.retries]
                        for task in again:
                            task.attempts += 1
                        if again:
                            stats.retried += len(again)
                            in_flight[self._submit(work, [(t.index, t.item) for t in again])] = again
                        outcomes: list[Outcome[Any, Any]] = [
                            Outcome(
                                t.index,
                                t.item,
                                None,
                                f"its worker died {t.attempts} times ({result}); not retried again",
                                "WorkerLost",
                                t.attempts,
                                "lost",
                            )
                            for t in tasks
                            if t not in again
                        ]
                    else:
                        outcomes = []
                        for task, (_, value, error, error_type, seconds, worker) in zip(
                            tasks, result, strict=True
                        ):
                            outcomes.append(
                                Outcome(
                                    task.index,
                                    task.item,
                                    value,
                                    error,
                                    error_type,
                                    task.attempts,
                                    worker,
                                    seconds,
                                )
                            )
                            timed_items, timed_seconds = timed_items + 1, timed_seconds + seconds
                        if batch is None and timed_seconds > 0:  # about BATCH_SECONDS of work per batch
                            per_item = timed_seconds / timed_items / threads
                            size = max(threads, min(MAX_BATCH * threads, int(BATCH_SECONDS / per_item)))
                    for outcome in outcomes:
                        if ordered:
                            ready[outcome.index] = outcome
                        else:
                            yield outcome
                while next_index in ready:
                    yield ready.pop(next_index)
                    next_index += 1
            stats.workers_lost = self._lost_workers()
        finally:
            if in_flight:
                self._cancel(list(in_flight))
            self._stop()

    # -- what each pool provides ------------------------------------------------------------------
    def _start(self, work: Callable[[Any], Any]) -> None:  # noqa: B027
        """Prepare the workers for ``work`` (start them, hand them the work)."""

    def _stop(self) -> None:  # noqa: B027
        """After a map: the workers may stay up for the next one."""

    def _submit(self, work: Callable[[Any], Any], batch: list[tuple[int, Any]]) -> Any:
        """Send one batch of (index, item) to a worker; a handle to wait on."""
        raise NotImplementedError

    def _wait(self, handles: list[Any]) -> list[tuple[Any, list[Result] | WorkerLost]]:
        """At least one finished handle, with its batch's results or :class:`WorkerLost`."""
        raise NotImplementedError

    def _cancel(self, handles: list[Any]) -> None:  # noqa: B027
        """Drop submitted items (the consumer stopped early)."""

    def _lost_workers(self) -> int:
        return 0


class LocalExecutor(Executor):
    """Each item in this process, one after another (srjudge's behaviour without ``--executor``)."""

    @property
    def workers(self) -> int:
        return 1

    def _map(
        self,
        work: Callable[[Any], Any],
        source: Iterator[Any],
        ordered: bool,
        window: int | None,
        batch: int | None,
        stats: MapStats,
    ) -> Iterator[Outcome[Any, Any]]:
        for index, item in enumerate(source):
            _, value, error, error_type, seconds, _ = run_one(work, index, item)
            yield Outcome(index, item, value, error, error_type, 1, "driver", seconds)
