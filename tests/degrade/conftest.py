"""Fixtures shared by the degradation tests: the full 512 x 512 astronaut and a small HR crop."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """The bundled astronaut image, float32 RGB in [0, 1], 512 x 512."""
    return data.astronaut().astype(np.float32) / np.float32(255.0)


@pytest.fixture(scope="module")
def hr(astronaut: np.ndarray) -> np.ndarray:
    """A small HR crop (96 x 120: divisible by 2, 3 and 4)."""
    return np.ascontiguousarray(astronaut[40:136, 180:300])
