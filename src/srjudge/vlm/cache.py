"""A persistent SQLite cache of completions: a re-run makes no model calls; an interrupted run resumes.

Keys hash the backend identity (backend, model, revision) and the request (messages with image
digests, generation parameters, prompt template id and version, sample index). Every completion
is committed as soon as it arrives, so nothing already paid for is lost on Ctrl-C or a crash.
API keys are never part of a key or a value.

Many processes may share one cache file (``--executor processes:N``, Ray workers on one node): the
database is in WAL mode (readers never block the writer), each connection waits up to
``BUSY_TIMEOUT_S`` for a lock, and a statement that still finds the database locked is retried with
a growing pause. Writes are single ``INSERT OR REPLACE`` statements of a deterministic value, so two
workers storing the same key agree. (WAL needs a local file system; on a network share give each
node its own cache with ``cache=PATH``.)
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from srjudge.vlm.request import Completion

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    template TEXT NOT NULL,
    created REAL NOT NULL,
    value TEXT NOT NULL
)
"""


T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
"""How long one statement waits for another process's lock before it is retried."""
RETRIES = 5


def _retrying(action: Callable[[], T]) -> T:
    """``action``, run again (after 0.05, 0.1, 0.2... s) while SQLite says the database is locked or busy."""
    for attempt in range(RETRIES):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def default_cache_path() -> Path:
    """``$SRJUDGE_CACHE_DIR/vlm.sqlite``, else ``~/.cache/srjudge/vlm.sqlite``."""
    root = os.environ.get("SRJUDGE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "srjudge")
    return Path(root) / "vlm.sqlite"


class CompletionCache:
    """Thread-safe get/put of completions by key."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
        )
        self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        _retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
        self._db.execute("PRAGMA synchronous=NORMAL")
        _retrying(lambda: self._db.execute(_SCHEMA))

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = _retrying(
                lambda: self._db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
            )
        return Completion.from_dict(json.loads(row[0]), cached=True) if row else None

    def put(self, key: str, completion: Completion, *, backend: str, model: str, template: str) -> None:
        value = json.dumps(completion.to_dict(), separators=(",", ":"))
        with self._lock:
            _retrying(
                lambda: self._db.execute(
                    "INSERT OR REPLACE INTO completions (key, backend, model, template, created, value) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, backend, model, template, time.time(), value),
                )
            )

    def __len__(self) -> int:
        with self._lock:
            return int(_retrying(lambda: self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]))

    def close(self) -> None:
        with self._lock:
            self._db.close()
