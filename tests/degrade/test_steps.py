"""Single recorded steps for hand-made plans: Gaussian sizes as scipy truncates them, blur steps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from srjudge.degrade.steps import blur_step, gaussian_size


@pytest.mark.parametrize("sigma,size", [(0.3, 3), (1.0, 9), (1.5, 13), (2.0, 17)])
def test_gaussian_size_is_the_support_of_scipys_filter(sigma: float, size: int) -> None:
    assert gaussian_size(sigma) == size
    impulse = np.zeros(101)
    impulse[50] = 1.0
    support = np.flatnonzero(gaussian_filter1d(impulse, sigma, truncate=4.0) > 0)
    assert support.size == size


def test_blur_steps_are_isotropic_unless_a_second_sigma_is_given() -> None:
    assert blur_step(1.0) == {
        "name": "blur",
        "op": "blur",
        "kernel": "iso",
        "size": 9,
        "sigma_x": 1.0,
        "sigma_y": 1.0,
        "theta": 0.0,
    }
    aniso = blur_step(0.5, 2.0, 0.3, name="blur2")
    assert (aniso["kernel"], aniso["size"], aniso["sigma_y"], aniso["name"]) == ("aniso", 17, 2.0, "blur2")
    assert blur_step(1.0, size=21)["size"] == 21
