"""Blur kernels: normalisation, symmetry and shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srjudge.degrade import make_kernel, sample_record
from srjudge.degrade.kernels import KERNEL_TYPES, gaussian_kernel, generalized_gaussian_kernel


@pytest.mark.parametrize("kind", KERNEL_TYPES)
@pytest.mark.parametrize("size", [7, 13, 21])
def test_kernels_sum_to_one(kind: str, size: int) -> None:
    params = {"kernel": kind, "size": size, "sigma_x": 2.5, "sigma_y": 0.7, "theta": 0.6, "beta": 1.7}
    params["omega_c"] = math.pi / 4
    kernel = make_kernel(params)
    assert kernel.shape == (size, size)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-9)
    # Point symmetry lets filter2D (correlation) stand in for convolution.
    assert np.allclose(kernel, kernel[::-1, ::-1])


def test_kernels_from_sampled_records_sum_to_one() -> None:
    for seed in range(50):
        for step in sample_record((64, 64), "realesrgan", 4, seed).steps:
            if step["op"] == "blur" and step["kernel"] != "none":
                assert make_kernel(step).sum() == pytest.approx(1.0, abs=1e-9)


def test_kernel_shapes() -> None:
    iso = gaussian_kernel(15, 2.0, 2.0)
    one_d = np.exp(-0.5 * (np.arange(-7, 8) / 2.0) ** 2)
    assert np.allclose(iso, np.outer(one_d, one_d) / np.outer(one_d, one_d).sum())
    # beta = 1 turns the generalized Gaussian into the Gaussian.
    assert np.allclose(
        generalized_gaussian_kernel(11, 2.0, 0.8, 0.3, 1.0), gaussian_kernel(11, 2.0, 0.8, 0.3)
    )
    # theta = pi/2 swaps the axes.
    assert np.allclose(gaussian_kernel(11, 2.0, 0.8, math.pi / 2), gaussian_kernel(11, 0.8, 2.0, 0.0))
    sinc = make_kernel({"kernel": "sinc", "size": 21, "omega_c": math.pi / 3})
    assert np.allclose(sinc, sinc.T) and np.allclose(sinc, sinc[::-1])
    assert sinc.min() < 0  # ringing lobes
    pulse = make_kernel({"kernel": "pulse", "size": 21})
    assert pulse[10, 10] == 1.0 and pulse.sum() == 1.0
