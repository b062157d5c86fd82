"""Shared fixtures: every test is seeded; small bundled photos as test images."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's ~/.cache/srjudge."""
    monkeypatch.setenv("SRJUDGE_CACHE_DIR", str(tmp_path_factory.mktemp("srjudge-cache")))


q8 = quantize_8bit


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen2-VL with a locally trained tokenizer, saved to a folder (built once)."""
    from vlm_tiny import build_tiny_qwen2vl

    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """256x256 crop of scikit-image's astronaut (bundled in its wheel), float RGB."""
    return bundled_photo("astronaut")


@pytest.fixture(scope="session")
def astronaut_lr(astronaut: np.ndarray) -> np.ndarray:
    """Bicubic x4 LR of the astronaut crop, 8-bit quantised (64x64)."""
    return q8(imresize(astronaut, 0.25))
