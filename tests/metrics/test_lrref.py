"""LR-referenced metrics: LR-PSNR/LR-SSIM consistency and colour shift."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio as sk_psnr

from srjudge.errors import SizeMismatchError, SrjudgeError
from srjudge.images.resize import imresize
from srjudge.metrics import create_metric


def test_lr_consistency(astronaut: np.ndarray, astronaut_lr: np.ndarray) -> None:
    lr = astronaut_lr
    psnr = create_metric("lr-psnr")
    # The HR it was made from is consistent up to the 8-bit quantisation of the LR.
    assert psnr(astronaut, lr=lr) > 50
    reference = sk_psnr(lr.astype(np.float64), np.clip(imresize(astronaut, 0.25), 0, 1), data_range=1.0)
    assert psnr(astronaut, lr=lr) == pytest.approx(reference, rel=1e-4)
    shifted = np.roll(astronaut, 4, axis=0)
    assert psnr(shifted, lr=lr) < 30
    assert create_metric("lr-ssim")(astronaut, lr=lr) > 0.99 > create_metric("lr-ssim")(shifted, lr=lr)
    with pytest.raises(SizeMismatchError):
        psnr(astronaut[:250], lr=lr)
    with pytest.raises(SrjudgeError, match="--lr"):
        psnr(astronaut)


def test_colour_shift(astronaut: np.ndarray, astronaut_lr: np.ndarray) -> None:
    metric = create_metric("colour-shift")
    assert metric(astronaut, lr=astronaut_lr) < 0.5
    tinted = np.clip(astronaut * np.array([1.15, 1.0, 0.85], np.float32), 0, 1)
    assert metric(tinted, lr=astronaut_lr) > 3.0
    assert create_metric("color-shift").info.name == "colour-shift"
