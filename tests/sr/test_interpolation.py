"""The interpolation backends (bicubic, lanczos): shapes, 8-bit output, MATLAB imresize, errors."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.errors import ImageError, SpecError
from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize
from srjudge.sr import classical
from srjudge.sr.base import create_sr_backend
from tests.sr.helpers import _is_8bit


@pytest.mark.parametrize("name", ["bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [1, 2, 3, 8])
def test_interpolation_shape_family_and_8bit(name: str, scale: int, astronaut_lr: np.ndarray) -> None:
    lr = astronaut_lr[:20, :24]
    backend = create_sr_backend(name)
    out = backend.upscale(lr, scale=scale)
    assert out.shape == (20 * scale, 24 * scale, 3) and out.dtype == np.float32
    assert _is_8bit(out)
    assert backend.family == "interpolation" and not backend.stochastic
    assert backend.scales == tuple(range(1, 9))
    assert np.array_equal(out, getattr(classical, name)(lr, scale))
    [candidate] = backend.candidates(lr, scale=scale, samples=3)
    assert candidate.seed is None and candidate.backend == name and "kernel" in candidate.settings


def test_interpolation_bicubic_is_matlab_imresize(astronaut_lr: np.ndarray) -> None:
    out = create_sr_backend("bicubic").upscale(astronaut_lr, scale=4)
    assert np.array_equal(out, quantize_8bit(imresize(astronaut_lr, output_shape=(256, 256))))


@pytest.mark.parametrize("scale", [0, 9, -1, 2.5, True])
def test_interpolation_rejects_bad_scales(scale: object) -> None:
    with pytest.raises(SpecError, match="scale"):
        create_sr_backend("bicubic").upscale(np.zeros((4, 4, 3), np.float32), scale=scale)  # type: ignore[arg-type]


def test_interpolation_rejects_options_and_bad_images() -> None:
    with pytest.raises(SpecError, match="Unknown option"):
        create_sr_backend("bicubic:radius=2")
    with pytest.raises(SpecError, match="no argument"):
        create_sr_backend("lanczos:/some/path")
    with pytest.raises(ImageError, match="H x W x 3"):
        create_sr_backend("bicubic").upscale(np.zeros((4, 4), np.float32), scale=2)
