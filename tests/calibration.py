"""Calibration data for metric tests: where the images are, and the official reference values.

The images are the IQA-PyTorch ``ResultsCalibra`` set (five 512x384 reference/distorted BMP pairs),
fetched into ``<repo>/.cache/calibration/`` by ``scripts/fetch_calibration_data.py``. Tests that need
them call :func:`calibration_dir`, which FAILS (never skips) with the command to run when they are
missing, so a missing download can never pass silently.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_DIR = REPO_ROOT / ".cache" / "calibration"
FETCH_COMMAND = f"{Path(sys.executable).name} scripts/fetch_calibration_data.py"

IMAGES: tuple[str, ...] = ("I03", "I04", "I06", "I08", "I19")
"""Names of the calibration images (``dist_dir/<name>.bmp``, ``ref_dir/<name>.bmp``)."""

OFFICIAL: dict[str, dict[str, float]] = {
    # IQA-PyTorch results_official.csv: scores of the original implementations (LIVE MATLAB releases)
    # on the distorted images.
    "niqe": {"I03": 15.75, "I04": 3.655, "I06": 3.235, "I08": 3.184, "I19": 8.635},
    "brisque": {"I03": 94.64, "I04": -0.108, "I06": 0.993, "I08": 5.358, "I19": 72.26},
}
"""Official metric values on the distorted calibration images, by metric then image."""


def calibration_dir() -> Path:
    """The calibration folder (with ``ref_dir/`` and ``dist_dir/``); fails the test when data is missing."""
    missing = [
        f"{sub}/{name}.bmp"
        for sub in ("ref_dir", "dist_dir")
        for name in IMAGES
        if not (CALIBRATION_DIR / sub / f"{name}.bmp").is_file()
    ]
    if missing:
        pytest.fail(
            f"Calibration images are missing from {CALIBRATION_DIR} "
            f"({len(missing)} files, e.g. {missing[0]}). "
            f"Fetch them once, from the repository root, with:\n    {FETCH_COMMAND}",
            pytrace=False,
        )
    return CALIBRATION_DIR


def distorted_path(name: str) -> Path:
    """Path of one distorted calibration image, e.g. ``distorted_path("I03")``."""
    return calibration_dir() / "dist_dir" / f"{name}.bmp"


def reference_path(name: str) -> Path:
    """Path of one reference calibration image."""
    return calibration_dir() / "ref_dir" / f"{name}.bmp"
