"""The persistent completion cache: answers survive the process, keyed exactly, replaced by key."""

from __future__ import annotations

import os
from pathlib import Path

from srjudge.vlm.cache import CompletionCache, default_cache_path
from srjudge.vlm.request import Completion, Usage


def test_completions_persist_by_key_and_come_back_marked_cached(tmp_path: Path) -> None:
    path = tmp_path / "c" / "vlm.sqlite"
    cache = CompletionCache(path)
    answer = Completion(text="good", model="m", usage=Usage(10, 1), latency_s=0.5)
    cache.put("k1", answer, backend="replay", model="m", template="level@1")
    assert cache.get("k2") is None
    got = cache.get("k1")
    assert got is not None and got.cached and not answer.cached
    assert (got.text, got.model, got.usage, got.latency_s) == ("good", "m", Usage(10, 1), 0.5)
    cache.put("k1", Completion(text="fair", model="m"), backend="replay", model="m", template="level@1")
    assert len(cache) == 1
    cache.close()
    reopened = CompletionCache(path)  # a later run
    again = reopened.get("k1")
    assert again is not None and again.text == "fair" and len(reopened) == 1
    reopened.close()


def test_the_default_cache_lives_in_the_srjudge_cache_folder() -> None:
    # tests/conftest.py points SRJUDGE_CACHE_DIR at a temporary folder for every test.
    assert default_cache_path() == Path(os.environ["SRJUDGE_CACHE_DIR"]) / "vlm.sqlite"


def _fill(job: tuple[str, int]) -> int:
    """Write 60 completions into the shared cache file from a worker process."""
    path, worker = job
    cache = CompletionCache(path)
    for i in range(60):
        answer = Completion(text=f"w{worker}-{i}", model="m", usage=Usage(1, 1))
        cache.put(f"{worker}-{i}", answer, backend="replay", model="m", template="level@1")
        assert cache.get(f"{worker}-{i}") is not None
    cache.close()
    return worker


def test_many_processes_share_one_cache_file(tmp_path: Path) -> None:
    """Workers of --executor processes:N write one cache concurrently (WAL, busy timeout, retries)."""
    from srjudge.execute import create_executor

    path = tmp_path / "vlm.sqlite"
    with create_executor("processes:2") as executor:
        done = [o.unwrap() for o in executor.map(_fill, [(str(path), w) for w in range(4)], batch=1)]
    assert done == [0, 1, 2, 3]
    cache = CompletionCache(path)
    assert cache.journal_mode == "wal" and len(cache) == 240
    got = cache.get("3-59")
    assert got is not None and got.text == "w3-59"
    cache.close()
