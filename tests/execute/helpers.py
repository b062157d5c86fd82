"""Work functions for the executor tests: module-level, so worker processes can import them."""

from __future__ import annotations

import os
import time
from typing import Any

from srjudge.errors import SrjudgeError
from srjudge.execute import PerWorker

BUILDS = {"count": 0}


def square(x: int) -> int:
    if x == 3:
        raise SrjudgeError("three is not welcome")
    if x == 5:
        raise ZeroDivisionError("five")
    return x * x


def slow_square(x: int) -> tuple[int, int]:
    time.sleep(0.05)
    return x * x, os.getpid()


def _build() -> dict[str, Any]:
    BUILDS["count"] += 1
    return {"pid": os.getpid(), "built": BUILDS["count"]}


class CountBuilds:
    """Returns (pid, how many times this process built the shared object)."""

    def __init__(self) -> None:
        self.shared: PerWorker[dict[str, Any]] = PerWorker("test:shared", _build)

    def __call__(self, x: int) -> tuple[int, int]:
        return os.getpid(), self.shared.get()["built"]
