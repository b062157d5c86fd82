"""Full-reference metrics (PSNR, SSIM, MS-SSIM, edge-SSIM) against scikit-image and the official values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from calibration import calibration_dir
from srjudge.errors import SrjudgeError
from srjudge.images.color import rgb_to_gray_uint8, rgb_to_y
from srjudge.metrics import create_metric

# IQA-PyTorch results_official.csv (original implementations) on the distorted images.
OFFICIAL = {
    "psnr": {"I03": 21.11, "I04": 20.99, "I06": 27.01, "I08": 23.30, "I19": 21.62},
    "ssim": {"I03": 0.6993, "I04": 0.9978, "I06": 0.9989, "I08": 0.9669, "I19": 0.6519},
    "ms-ssim": {"I03": 0.6733, "I04": 0.9996, "I06": 0.9998, "I08": 0.9566, "I19": 0.8462},
}
# PSNR and SSIM meet 0.5 %. MS-SSIM follows Wang's msssim.m on rgb2gray input and lands on the
# values IQA-PyTorch's own port gets (0.6698 / 0.8418 on I03 / I19); the official MATLAB numbers
# differ by up to 0.52 % on I19, so MS-SSIM is held to 0.6 %.
TOLERANCE = {"psnr": 0.005, "ssim": 0.005, "ms-ssim": 0.006}


def _pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    root = calibration_dir()
    ref = np.asarray(Image.open(root / "ref_dir" / f"{name}.bmp"), dtype=np.float32) / 255.0
    dist = np.asarray(Image.open(root / "dist_dir" / f"{name}.bmp"), dtype=np.float32) / 255.0
    return ref, dist


@pytest.mark.parametrize("metric", sorted(OFFICIAL))
@pytest.mark.parametrize("image", ["I03", "I04", "I06", "I08", "I19"])
def test_official_values(metric: str, image: str) -> None:
    ref, dist = _pair(image)
    value = create_metric(metric)(dist, hr=ref)
    assert value == pytest.approx(OFFICIAL[metric][image], rel=TOLERANCE[metric])


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    from srjudge.images.samples import bundled_photo

    hr = bundled_photo("coffee")
    noisy = np.clip(hr + rng.normal(0, 0.05, hr.shape), 0, 1).astype(np.float32)
    return hr, noisy


def test_psnr_matches_scikit_image(pair: tuple[np.ndarray, np.ndarray]) -> None:
    hr, sr = pair
    ref = sk_psnr(hr.astype(np.float64), sr.astype(np.float64), data_range=1.0)
    assert create_metric("psnr")(sr, hr=hr) == pytest.approx(ref, rel=1e-4)
    ref_y = sk_psnr(rgb_to_y(hr)[4:-4, 4:-4], rgb_to_y(sr)[4:-4, 4:-4], data_range=1.0)
    assert create_metric("psnr:channel=y,crop_border=4")(sr, hr=hr) == pytest.approx(ref_y, rel=1e-4)
    assert math.isinf(create_metric("psnr")(hr, hr=hr))


def test_ssim_matches_scikit_image(pair: tuple[np.ndarray, np.ndarray]) -> None:
    hr, sr = pair
    kw = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    ref_rgb = sk_ssim(hr.astype(np.float64), sr.astype(np.float64), data_range=1.0, channel_axis=2, **kw)
    assert create_metric("ssim:channel=rgb")(sr, hr=hr) == pytest.approx(ref_rgb, rel=1e-4)
    ref_gray = sk_ssim(rgb_to_gray_uint8(hr), rgb_to_gray_uint8(sr), data_range=255.0, **kw)
    assert create_metric("ssim")(sr, hr=hr) == pytest.approx(ref_gray, rel=1e-4)
    ref_y = sk_ssim(rgb_to_y(hr)[2:-2, 2:-2], rgb_to_y(sr)[2:-2, 2:-2], data_range=1.0, **kw)
    assert create_metric("ssim:channel=y,crop_border=2")(sr, hr=hr) == pytest.approx(ref_y, rel=1e-4)


def test_ms_ssim_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    hr, sr = pair
    metric = create_metric("ms-ssim")
    assert metric(hr, hr=hr) == pytest.approx(1.0)
    blurred = np.stack([gaussian_filter(hr[..., c], 2.0) for c in range(3)], -1)
    assert 0.0 < metric(blurred, hr=hr) < 0.99
    assert 0.0 < metric(sr, hr=hr) < 0.99
    assert metric(blurred, hr=hr) == pytest.approx(metric(hr, hr=blurred))  # symmetric
    with pytest.raises(SrjudgeError, match="at least 176x176"):
        metric(hr[:100, :100], hr=hr[:100, :100])


def test_edge_ssim_ignores_brightness_but_not_structure(pair: tuple[np.ndarray, np.ndarray]) -> None:
    hr, _ = pair
    metric = create_metric("edge-ssim")
    assert metric(hr, hr=hr) == pytest.approx(1.0)
    brighter = np.clip(hr + 0.05, 0, 1)
    shifted = np.roll(hr, 3, axis=1)
    assert metric(brighter, hr=hr) > 0.9 > metric(shifted, hr=hr)
