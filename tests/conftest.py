"""Shared fixtures: every test is seeded; small bundled photos as test images.

The tests mirror the package tree (``tests/judges/test_trust.py`` tests ``srjudge/judges/trust.py``).
Every test folder is a package, so module names may repeat across folders (``tests.sr.test_base``,
``tests.judges.test_base``). The helper modules beside this file stay importable by their plain names
(``from vlm_replay import ReplayBackend``, ``from conftest import q8``): this folder is appended to
``sys.path``, after the standard library, so that a test package named like a standard module
(``tests/select``) never shadows it. Helpers shared within one folder live in its ``helpers.py``
(``from tests.judges.helpers import ...``), its fixtures in its ``conftest.py``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from srjudge.images.io import quantize_8bit, to_uint8
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))


def pytest_configure(config: pytest.Config) -> None:
    """Every folder of tests is a package: without ``__init__.py`` its modules would clash by name."""
    missing = sorted(
        str(folder.relative_to(TESTS.parent))
        for folder in {path.parent for path in TESTS.rglob("test_*.py")}
        if not (folder / "__init__.py").is_file()
    )
    if missing:
        raise pytest.UsageError(f"test folders without __init__.py (add an empty one): {', '.join(missing)}")


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


# The images of the input-check tests (tests/images/test_checks.py and the metric, judge and degrade
# entry points that apply those checks).


@pytest.fixture(scope="module")
def u8() -> np.ndarray:
    """A 192x128 crop of a bundled photo as the uint8 array OpenCV or PIL would give."""
    from srjudge.images.samples import bundled_photo

    return np.ascontiguousarray(to_uint8(bundled_photo("astronaut"))[:128, :192])


@pytest.fixture(scope="module")
def f(u8: np.ndarray) -> np.ndarray:
    """The same image as float32 in [0, 1]."""
    return u8.astype(np.float32) / np.float32(255.0)


@pytest.fixture(scope="module")
def noisy(f: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.clip(f + rng.normal(0.0, 0.05, f.shape).astype(np.float32), 0.0, 1.0)
