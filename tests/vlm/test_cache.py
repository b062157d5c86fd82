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
