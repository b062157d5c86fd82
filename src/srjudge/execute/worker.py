"""What lives inside a worker: judges and SR backends built once per worker process, not per item.

A command's work object carries :class:`PerWorker` handles instead of judges: the spec (the key) and a
picklable factory (``functools.partial(create_judge, spec)``). In the driver (``--executor local``) a
handle returns the instance the command already built; in a worker process or Ray actor the first
item builds it from the spec and later items reuse it (:func:`load_once`), so a model-backed judge
loads its weights once per worker, and a VLM judge keeps its client, request concurrency and cache.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_LOADED: dict[str, Any] = {}
_LOCK = threading.Lock()
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def load_once(key: str, factory: Callable[[], T]) -> T:
    """The object built by ``factory`` for ``key`` in this process: built on first use, then reused."""
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = factory()
        return _LOADED[key]  # type: ignore[no-any-return]


def loaded_keys() -> list[str]:
    """The keys built in this process (for tests and diagnostics)."""
    with _LOCK:
        return sorted(_LOADED)


class PerWorker(Generic[T]):
    """A judge or SR backend that each worker builds once from its spec (see the module docstring).

    ``local`` is the instance already built in the driver: used as is when the work runs in the
    driver, and never pickled (a worker builds its own from ``factory``). ``check`` (optional) is
    called with each worker's instance: it raises when the rebuilt object differs from the driver's
    (a judge whose configuration hash differs), so that no worker silently judges with other settings.
    """

    def __init__(
        self,
        key: str,
        factory: Callable[[], T],
        *,
        local: T | None = None,
        check: Callable[[T], None] | None = None,
    ) -> None:
        self.key = key
        self.factory = factory
        self.local = local
        self.check = check

    def get(self) -> T:
        if self.local is not None:
            return self.local
        built = load_once(self.key, self.factory)
        if self.check is not None:
            self.check(built)
        return built

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.key, self.factory, self.check))

    def __repr__(self) -> str:
        return f"PerWorker({self.key!r})"


def _rebuild(key: str, factory: Callable[[], Any], check: Callable[[Any], None] | None) -> PerWorker[Any]:
    return PerWorker(key, factory, check=check)


class LruCache(Generic[T]):
    """A few recently used values (decoded reference images shared by many items), oldest dropped first."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def worker_lru(name: str, size: int = 8) -> LruCache[Any]:
    """A per-process :class:`LruCache` named ``name`` (one per kind of reference, shared by the items)."""
    return load_once(f"lru:{name}", lambda: LruCache(size))


def limit_threads(threads: int) -> None:
    """Cap the math libraries' threads of this worker (set before numpy, OpenCV or torch start their pools),
    so that N workers on N cores do not each start N threads. Variables already set are kept."""
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, str(max(1, threads)))
    os.environ["SRJUDGE_WORKER"] = "1"
