"""Metrics against independent references (scikit-image) and the official values of the original scripts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from calibration import calibration_dir
from srjudge.errors import SizeMismatchError, SpecError, SrjudgeError, UnknownNameError
from srjudge.images.color import rgb_to_gray_uint8, rgb_to_y
from srjudge.images.resize import imresize
from srjudge.metrics import create_metric, list_metrics

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


def test_metric_metadata_and_scores() -> None:
    infos = {m.name: m for m in list_metrics()}
    assert {
        "psnr",
        "ssim",
        "ms-ssim",
        "edge-ssim",
        "lr-psnr",
        "lr-ssim",
        "colour-shift",
        "niqe",
        "brisque",
    } <= set(infos)
    assert infos["psnr"].higher_is_better and infos["psnr"].needs_hr and not infos["psnr"].lower_better
    assert infos["niqe"].lower_better and not infos["niqe"].needs_hr
    assert infos["lr-psnr"].needs_lr
    json.dumps([m.to_dict() for m in infos.values()])
    psnr = create_metric("psnr")
    assert psnr.score(10.0) == 0.0 and psnr.score(50.0) == 100.0 and psnr.score(math.inf) == 100.0
    niqe = create_metric("niqe")
    assert niqe.score(3.0) > niqe.score(6.0) > niqe.score(12.0)


def test_metric_spec_errors() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: psnr"):
        create_metric("psnrr")
    with pytest.raises(SpecError, match=r"Unknown option\(s\) chanel.*Allowed: channel, crop_border"):
        create_metric("psnr:chanel=y")
    with pytest.raises(SpecError, match=r"crop_border='four'.*not a valid int"):
        create_metric("psnr:crop_border=four")
    with pytest.raises(SpecError, match=r"channel='lab'.*use one of rgb, y, gray"):
        create_metric("psnr:channel=lab")  # refused when the spec is read, before any work
    with pytest.raises(SpecError, match=r"kernel='box'.*use one of bicubic, area"):
        create_metric("lr-psnr:kernel=box")
    with pytest.raises(SrjudgeError, match="bare argument"):
        create_metric("psnr:/some/path")
    assert create_metric("PSNR:channel=y").spec == "psnr:channel=y"


def test_metric_functions_called_without_their_reference_say_which() -> None:
    from srjudge.metrics.fullref import edge_ssim, ms_ssim, psnr, ssim
    from srjudge.metrics.lrref import colour_shift, lr_psnr, lr_ssim

    sr = np.zeros((16, 16, 3), np.float32)
    for fn, name in ((psnr, "psnr"), (ssim, "ssim"), (ms_ssim, "ms-ssim"), (edge_ssim, "edge-ssim")):
        with pytest.raises(SrjudgeError, match=rf"Metric '{name}' compares with a high-resolution reference"):
            fn(sr, hr=None)
    for fn, name in ((lr_psnr, "lr-psnr"), (lr_ssim, "lr-ssim"), (colour_shift, "colour-shift")):
        with pytest.raises(SrjudgeError, match=rf"Metric '{name}' compares with the LR input: give one"):
            fn(sr, lr=None)
