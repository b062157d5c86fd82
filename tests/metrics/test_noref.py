"""No-reference measures: wavelet artifacts, sharpness, noise, natural detail and the detail/grid split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from conftest import q8
from srjudge.errors import SrjudgeError
from srjudge.images.resize import imresize
from srjudge.metrics import create_metric
from srjudge.metrics.noref import detail_and_grid
from srjudge.sr import classical


def test_wavelet_artifact(astronaut: np.ndarray, astronaut_lr: np.ndarray) -> None:
    metric = create_metric("wavelet-artifact")
    assert metric(astronaut, hr=astronaut) == 0.0
    noisy = np.clip(astronaut + np.random.default_rng(0).normal(0, 0.05, astronaut.shape), 0, 1)
    assert metric(noisy, hr=astronaut) > 0.3
    bicubic = np.clip(imresize(astronaut_lr, 4.0), 0, 1)
    assert metric(bicubic, lr=astronaut_lr) == pytest.approx(0.0, abs=0.05)
    with pytest.raises(SrjudgeError, match="needs a reference"):
        metric(astronaut)


def test_sharpness_and_noise(astronaut: np.ndarray) -> None:
    blurred = np.stack([gaussian_filter(astronaut[..., c], 2.0) for c in range(3)], -1)
    sharp = create_metric("sharpness")
    assert sharp(astronaut) > 1.5 * sharp(blurred)
    flat = np.full((128, 128, 3), 0.5, np.float32)
    noisy = flat + np.random.default_rng(0).normal(0, 10 / 255, flat.shape).astype(np.float32)
    # The gray conversion averages channel noise: sigma_gray = 10 * sqrt(sum of squared weights).
    expected = 10 * math.sqrt(0.298936**2 + 0.587043**2 + 0.114021**2)
    assert create_metric("noise")(noisy) == pytest.approx(expected, rel=0.08)
    assert create_metric("noise")(flat) < 0.5


def test_natural_detail_rewards_detail_not_grid_steps(
    astronaut: np.ndarray, astronaut_lr: np.ndarray
) -> None:
    """No-reference detail: truth > bicubic > blurred; nearest-neighbour's steps are found and not counted."""
    from srjudge.metrics.noref import natural_detail_value
    from srjudge.sr import classical

    metric = create_metric("natural-detail")
    bicubic = classical.bicubic(astronaut_lr, 4)
    blurred = np.stack([gaussian_filter(bicubic[..., c], 1.5) for c in range(3)], -1)
    nearest = classical.nearest(astronaut_lr, 4)
    assert metric(astronaut) > metric(bicubic) + 1.0 > metric(blurred) + 1.0 > metric(nearest) + 1.0
    assert natural_detail_value(nearest)[2] in (2, 4, 8) and natural_detail_value(nearest)[1] > 10
    assert natural_detail_value(astronaut)[2] == 0  # a photo carries no upscaling grid
    # Doubling the fine-scale energy adds one: the value is in log2 units.
    flat = np.full((64, 64, 3), 0.5, np.float32)
    texture = np.random.default_rng(0).normal(0, 0.02, (64, 64, 1)).astype(np.float32)
    one, two = metric(flat + texture), metric(flat + math.sqrt(2.0) * texture)
    assert two - one == pytest.approx(1.0, abs=1e-3)
    assert create_metric("detail").info.name == "natural-detail"


def test_detail_ignores_grid_steps_and_counts_octaves(astronaut: np.ndarray) -> None:
    """detail is log2 of fine-scale energy over bicubic's; pixel replication is grid, not detail."""
    from srjudge.images.color import rgb_to_gray

    lr = q8(imresize(astronaut, 0.25))
    bicubic = rgb_to_gray(classical.bicubic(lr, 4))
    energy, grid = detail_and_grid(bicubic, 4)
    doubled, grid2 = detail_and_grid(bicubic * math.sqrt(2.0), 4)
    assert math.log2(doubled / energy) == pytest.approx(1.0, abs=1e-6) and grid2 == pytest.approx(grid)
    nn_energy, nn_grid = detail_and_grid(rgb_to_gray(classical.nearest(lr, 4)), 4)
    assert nn_energy < 1e-9 and nn_grid > 10 and abs(grid) < 1.5
