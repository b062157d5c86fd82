"""``--executor ray[:ADDRESS]``: a pool of Ray actors, each a long-lived worker process.

Each actor requests ``cpus`` CPUs and ``gpus`` GPUs (Ray sets ``CUDA_VISIBLE_DEVICES`` for it, so a
model-backed judge with ``device=auto`` or ``cuda`` uses the GPU it was given) and builds each judge
or SR backend once (:mod:`srjudge.execute.worker`). The driver keeps a few items queued per actor and
streams results back in order. An actor that dies (its process killed, its node lost) is replaced by
a new one and its queued items are run again.

Without an address a Ray instance is started on this machine for the run and stopped at the end; with
``auto`` or an address the driver joins that cluster (srjudge must be installed on every node). Ray is
an optional dependency (``pip install 'srjudge[ray]'``), imported only here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from srjudge.errors import MissingDependencyError, SrjudgeError
from srjudge.execute.base import Executor, Result, WorkerLost, error_message, run_batch, worker_name
from srjudge.execute.spec import ExecutorSpec

_INSTALL = "pip install 'srjudge[ray]'"
_POOLS: dict[tuple[str, float, float], list[Any]] = {}
"""Live actors per (Ray job, cpus, gpus), reused by later executors of this driver while Ray stays up."""
_ACTOR_CLASS: Any = None
_LOCK = threading.Lock()


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`MissingDependencyError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            f"--executor ray needs Ray, which is not installed ({exc}): {_INSTALL} "
            "(or use --executor processes:N on one machine)."
        ) from None
    return ray


class WorkerActor:
    """The body of one Ray actor: runs items of any work, building each judge once (load_once)."""

    def name(self) -> str:
        return worker_name()

    def run(self, work: Callable[[Any], Any], batch: list[tuple[int, Any]], threads: int) -> list[Result]:
        return run_batch(work, batch, threads)


def _actor_class(ray: Any) -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = ray.remote(WorkerActor)
    return _ACTOR_CLASS


def shutdown_pools() -> None:
    """Stop every actor this driver keeps for reuse (they also stop when the driver exits)."""
    ray = import_ray()
    with _LOCK:
        for actors in _POOLS.values():
            for actor in actors:
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(actor)
        _POOLS.clear()


class RayExecutor(Executor):
    """A pool of Ray actors on a local instance or a cluster."""

    def __init__(self, spec: ExecutorSpec) -> None:
        super().__init__(spec)
        self._ray = import_ray()
        self._started_here = False
        self._connect()
        self._workers = self._count_workers()
        self._actors: list[Any] = []
        self._load: list[int] = []
        self._where: dict[Any, tuple[int, Any]] = {}  # object ref -> (actor slot, the actor it went to)
        self._work_ref: Any = None
        self._sizes: dict[Any, int] = {}  # object ref -> items in its batch
        self._lost = 0

    # -- cluster ----------------------------------------------------------------------------------
    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        with _LOCK:
            _POOLS.clear()  # actors of an earlier session are gone with it
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if self.spec.address is None:
                ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **options)
                self._started_here = True
            else:
                ray.init(address=self.spec.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray instance" if self.spec.address is None else f"Ray at {self.spec.address}"
            hint = (
                " Start the cluster first (`ray start --head` on the head node) or check the address."
                if self.spec.address
                else ""
            )
            raise SrjudgeError(
                f"--executor {self.spec}: could not start or reach {where}: {exc}.{hint}"
            ) from None

    def _count_workers(self) -> int:
        if self.spec.workers is not None:
            return self.spec.workers
        resources = self._ray.cluster_resources()
        cpus = int(resources.get("CPU", 1) // self.spec.cpus)
        if self.spec.gpus:
            gpus = resources.get("GPU", 0)
            if not gpus:
                raise SrjudgeError(
                    f"--executor {self.spec}: the Ray cluster has no GPUs; drop gpus= or add GPU nodes."
                )
            cpus = min(cpus, int(gpus // self.spec.gpus))
        return max(1, cpus)

    @property
    def workers(self) -> int:
        return self._workers

    def _new_actor(self) -> Any:
        actor_class = _actor_class(self._ray)
        return actor_class.options(num_cpus=self.spec.cpus, num_gpus=self.spec.gpus, max_restarts=0).remote()

    # -- the engine's hooks -----------------------------------------------------------------------
    def _pool_key(self) -> tuple[str, float, float]:
        """Actors outlive an executor but not the Ray session (job) that started them."""
        context = self._ray.get_runtime_context()
        return (f"{context.get_node_id()}/{context.get_job_id()}", self.spec.cpus, self.spec.gpus)

    def _start(self, work: Callable[[Any], Any]) -> None:
        key = self._pool_key()
        with _LOCK:
            pool = _POOLS.setdefault(key, [])
            while len(pool) < self._workers:
                pool.append(self._new_actor())
            self._actors = pool[: self._workers]
        self._load = [0] * len(self._actors)
        self._work_ref = self._ray.put(work)

    def _submit(self, work: Callable[[Any], Any], batch: list[tuple[int, Any]]) -> Any:
        slot = min(range(len(self._actors)), key=self._load.__getitem__)
        ref = self._actors[slot].run.remote(self._work_ref, batch, self.spec.threads)
        self._load[slot] += 1
        self._sizes[ref] = len(batch)
        self._where[ref] = (slot, self._actors[slot])
        return ref

    def _replace(self, slot: int, dead: Any) -> None:
        """A new actor in ``slot`` unless that was done already for this death."""
        if self._actors[slot] is not dead:
            return
        self._load[slot] = sum(1 for s, _ in self._where.values() if s == slot)
        fresh = self._new_actor()
        with _LOCK:
            pool = _POOLS.get(self._pool_key(), [])
            if dead in pool:
                pool[pool.index(dead)] = fresh
        self._actors[slot] = fresh
        self._lost += 1

    def _wait(self, handles: list[Any]) -> list[tuple[Any, list[Result] | WorkerLost]]:
        ray = self._ray
        ready, _ = ray.wait(handles, num_returns=1)
        more, _ = ray.wait(handles, num_returns=len(handles), timeout=0)
        finished = set(ready) | set(more)
        results: list[tuple[Any, list[Result] | WorkerLost]] = []
        for ref in (h for h in handles if h in finished):
            slot, actor = self._where.pop(ref)
            size = self._sizes.pop(ref, 1)
            self._load[slot] = max(0, self._load[slot] - 1)
            try:
                results.append((ref, ray.get(ref)))
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                self._replace(slot, actor)
                results.append((ref, WorkerLost(f"Ray worker lost: {type(exc).__name__}")))
            except ray.exceptions.RayError as exc:  # e.g. the item could not be unpickled on the worker
                message = error_message(exc).splitlines()[0]
                results.append((ref, [(-1, None, message, type(exc).__name__, 0.0, "ray")] * size))
        return results

    def _cancel(self, handles: list[Any]) -> None:
        for ref in handles:
            self._where.pop(ref, None)
            self._sizes.pop(ref, None)
            with contextlib.suppress(Exception):  # already running or finished: nothing to drop
                self._ray.cancel(ref)

    def _lost_workers(self) -> int:
        return self._lost

    def worker_names(self) -> list[str]:
        """host:pid of each actor (starting them if needed)."""
        if not self._actors:
            self._start(lambda item: item)
        return list(self._ray.get([a.name.remote() for a in self._actors]))

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            with _LOCK:
                _POOLS.clear()
            self._ray.shutdown()
