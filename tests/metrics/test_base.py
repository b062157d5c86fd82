"""The metric registry and the Metric wrapper: metadata, score maps, spec errors, input checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from srjudge.errors import ImageError, SpecError, SrjudgeError, UnknownNameError
from srjudge.metrics import create_metric, list_metrics


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


# --- input checks ---------------------------------------------------------------------------------


def test_niqe_of_a_255_float_array_raises(u8: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"SR image: .*0-255"):
        create_metric("niqe")(u8.astype(np.float32))


def test_niqe_of_uint8_equals_niqe_of_float(u8: np.ndarray, f: np.ndarray) -> None:
    niqe = create_metric("niqe")
    assert niqe(u8) == pytest.approx(niqe(f), abs=1e-6)


def test_psnr_float_against_uint8(u8: np.ndarray, f: np.ndarray, noisy: np.ndarray) -> None:
    psnr = create_metric("psnr")
    assert psnr(f, hr=u8) == math.inf
    assert psnr(u8, hr=f) == math.inf
    assert psnr(noisy, hr=u8) == pytest.approx(psnr(noisy, hr=f), abs=1e-9)
    assert 20.0 < psnr(noisy, hr=u8) < 40.0


def test_metric_names_hr_and_lr(f: np.ndarray, u8: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"HR reference: .*0-255"):
        create_metric("psnr")(f, hr=u8.astype(np.float32))
    lr = u8[::2, ::2].astype(np.int64)
    with pytest.raises(ImageError, match="LR input: dtype int64"):
        create_metric("niqe")(f, lr=lr)


def test_tiny_excursion_accepted_by_a_metric(f: np.ndarray) -> None:
    image = f.copy()
    image[0, 0] = 1.0005
    assert create_metric("psnr")(image, hr=np.clip(image, 0.0, 1.0)) == math.inf
