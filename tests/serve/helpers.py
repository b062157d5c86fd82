"""Helpers shared by the serve tests."""

from __future__ import annotations

import numpy as np

TOKEN = "serve-test-token-123"


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _images(n: int, size: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]


def _chat(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 2, **extra}
