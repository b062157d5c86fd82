"""Fixtures shared by the metric tests."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import IMAGES, distorted_path
from srjudge.images.io import load_image


@pytest.fixture(scope="module")
def distorted() -> dict[str, np.ndarray]:
    """The five distorted calibration images, loaded once."""
    return {name: load_image(distorted_path(name)) for name in IMAGES}
