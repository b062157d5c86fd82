"""The audit's knobs: bounded, and each does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import q8
from srjudge.audit.gate import audit_tags
from srjudge.errors import SpecError
from srjudge.images.resize import imresize
from srjudge.sr import classical
from srjudge.sr.knobs import KNOBS, apply_post, apply_pre, choose_knob


def test_knobs_are_bounded_and_do_what_they_say(astronaut: np.ndarray, astronaut_lr: np.ndarray) -> None:
    sr = classical.unsharp(classical.bicubic(astronaut_lr, 4), 2.5, 2.0)
    with pytest.raises(SpecError, match="outside its safe range"):
        apply_post("dehalo", sr, astronaut_lr, 2.0)
    dehaloed = apply_post("dehalo", sr, astronaut_lr, 0.8)
    from srjudge.images.color import rgb_to_gray
    from srjudge.judges.trust import EdgeRange, overshoot

    edges = EdgeRange.of(imresize(rgb_to_gray(astronaut_lr), output_shape=sr.shape[:2]), 4)
    assert overshoot(rgb_to_gray(dehaloed), edges) < 0.5 * overshoot(rgb_to_gray(sr), edges)
    tinted = q8(sr * np.array([1.2, 1.0, 0.8], np.float32))
    balanced = apply_post("colour_balance", tinted, astronaut_lr, 0.5)
    lr_mean = astronaut_lr.reshape(-1, 3).mean(0)
    assert (
        np.abs(balanced.reshape(-1, 3).mean(0) - lr_mean).sum()
        < np.abs(tinted.reshape(-1, 3).mean(0) - lr_mean).sum()
    )
    noisy_lr = q8(astronaut_lr + np.random.default_rng(0).normal(0, 0.05, astronaut_lr.shape))
    assert np.std(apply_pre("denoise", noisy_lr, 10.0) - astronaut_lr) < np.std(noisy_lr - astronaut_lr)
    assert choose_knob("general", ["ringing"])[0].name == "dehalo"  # type: ignore[index]
    assert choose_knob("blind", ["noise"])[0].name == "denoise"  # type: ignore[index]
    assert choose_knob("general", ["ringing"], exclude={"dehalo"}) is None
    assert choose_knob("prior-guided", ["blur"]) is None
    assert {k.family for k in KNOBS.values()} == {"general", "blind", "prior-guided"}
    assert audit_tags(["jpeg-blocks", "semantic-outlier", "ringing"]) == (
        "blockiness",
        "semantic change",
        "ringing",
    )


def test_centre_face_only_keeps_the_restoration_on_the_face_found_by_dlib() -> None:
    from skimage import data

    from srjudge.images.resize import imresize
    from srjudge.sr.knobs import centre_face_only

    hr = (data.astronaut()[:384, 64:448].astype(np.float32) / 255.0).astype(np.float32)
    lr = np.clip(imresize(hr, scale=0.25), 0.0, 1.0).astype(np.float32)
    out = centre_face_only(hr, lr, 1.0)  # the "restoration" is the HR itself
    bicubic = np.clip(imresize(lr, output_shape=hr.shape[:2]), 0.0, 1.0)
    face = (slice(80, 160), slice(120, 190))  # inside the face box (175..265, 76..166, x - 64)
    assert np.abs(out[face] - hr[face]).max() < 0.01
    corner = (slice(300, 384), slice(300, 384))  # far from the face: bicubic
    assert np.abs(out[corner] - bicubic[corner]).max() < 0.01
    np.testing.assert_array_equal(centre_face_only(hr, lr, 0.0), hr)
