"""Helpers for VLM judge tests on recorded replies (tests/vlm_replay.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srjudge.judges.vlm import VLMJudge, VLMJudgeConfig
from srjudge.vlm.request import ChatRequest, ImagePart, TextPart
from vlm_replay import ReplayBackend


def gray(level: float, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), level, dtype=np.float32)


def brightness(request: ChatRequest) -> list[float]:
    return [float(p.image.mean()) for m in request.messages for p in m.parts if isinstance(p, ImagePart)]


def prompt_text(request: ChatRequest) -> str:
    return " ".join(p.text for m in request.messages for p in m.parts if isinstance(p, TextPart))


def judge(protocol: str, rule, tmp_path: Path, **options) -> VLMJudge:  # type: ignore[no-untyped-def]
    config = VLMJudgeConfig(
        backend="replay",
        backend_options={"model": "recorded"},
        protocol=protocol,
        cache=str(tmp_path / "cache.sqlite"),
        **options,
    )
    return VLMJudge(config, backend=ReplayBackend(rule))
