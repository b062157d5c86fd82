"""Helpers shared by tests that replay VLM answers per image."""

from __future__ import annotations

import numpy as np

from srjudge.vlm.request import ChatRequest, ImagePart


def _images(n: int, size: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]


def _image_index(request: ChatRequest, images: list[np.ndarray]) -> int:
    digests = [ImagePart.of(image).digest for image in images]
    part = next(p for p in request.messages[-1].parts if isinstance(p, ImagePart))
    return digests.index(part.digest)
