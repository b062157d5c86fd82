"""Identity descriptors and the identity check, with dlib's real models on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from srjudge.errors import MissingWeightsError, SpecError
from srjudge.faces.detect import FaceFinder
from srjudge.faces.identity import (
    DLIB_THRESHOLD,
    ArcFaceOnnxEncoder,
    DlibEncoder,
    IdentityChecker,
    IdentityScale,
    cosine,
)
from srjudge.images.resize import imresize
from tests.faces.helpers import astronaut, tiny_arcface


@pytest.fixture(scope="module")
def checker() -> IdentityChecker:
    return IdentityChecker(FaceFinder("hog"), DlibEncoder())


def _down_up(image: np.ndarray, factor: int) -> np.ndarray:
    lr = imresize(image, scale=1 / factor)
    return np.clip(imresize(lr, output_shape=image.shape[:2]), 0.0, 1.0).astype(np.float32)


def test_identity_against_hr_is_one_for_the_same_image_and_high_for_a_mild_x4(
    checker: IdentityChecker,
) -> None:
    hr = astronaut()
    same, mild = checker.compare([hr, _down_up(hr, 4)], hr=hr)
    assert same.similarity == pytest.approx(1.0, abs=1e-9)
    assert same.references == ("hr",)
    # Measured 0.960: x4 bicubic down-up keeps the person (dlib distance 0.42, below its 0.6 rule).
    assert mild.similarity is not None and DLIB_THRESHOLD < mild.similarity < 0.99


def test_descriptors_are_128d_and_not_unit_length() -> None:
    image = astronaut()
    faces = FaceFinder("hog").find(image)
    desc = DlibEncoder().describe(image, faces)
    assert desc.shape == (1, 128)
    assert 1.3 < float(np.linalg.norm(desc[0])) < 1.6  # why srjudge states the cosine <-> distance map


def test_without_hr_uses_consensus_and_lr_when_the_lr_face_is_big_enough(checker: IdentityChecker) -> None:
    hr = astronaut()
    lr = imresize(hr, scale=1 / 4)  # the face is about 22 LR pixels wide
    candidates = [_down_up(hr, 4), hr, _down_up(hr, 2)]
    reports = checker.compare(candidates, lr=np.clip(lr, 0, 1).astype(np.float32))
    for report in reports:
        assert report.references == ("consensus", "lr")
        assert report.similarity is not None and report.similarity > DLIB_THRESHOLD
        assert "LR face 22 px wide used" in report.note


def test_a_tiny_lr_face_is_not_used_and_the_note_says_so(checker: IdentityChecker) -> None:
    hr = astronaut()
    lr = np.clip(imresize(hr, scale=1 / 8), 0, 1).astype(np.float32)  # an 11 px face
    (report,) = checker.compare([hr], lr=lr)
    assert report.similarity is None
    assert "too small to be recognised" in report.note and "11 px" in report.note


def test_no_face_gives_no_similarity_and_a_note(checker: IdentityChecker) -> None:
    flat = np.full((96, 96, 3), 0.4, np.float32)
    (report,) = checker.compare([flat], hr=flat)
    assert report.similarity is None and report.note == "no face found in the HR reference"


def test_identity_scale_is_50_at_the_threshold_and_clipped() -> None:
    scale = IdentityScale(0.9)
    assert scale.score(0.9) == pytest.approx(50.0)
    assert scale.score(1.0) == pytest.approx(100.0)
    assert scale.score(0.8) == pytest.approx(0.0)
    assert scale.score(0.5) == 0.0
    with pytest.raises(SpecError, match="threshold"):
        IdentityScale(1.0)


def test_cosine() -> None:
    assert cosine(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    assert cosine(np.zeros(2), np.ones(2)) == 0.0


@pytest.mark.parametrize("in_graph", [False, True])
def test_arcface_onnx_encoder_runs_an_insightface_layout_graph(tmp_path: Path, in_graph: bool) -> None:
    model = tiny_arcface(tmp_path / "tiny.onnx", normalise_in_graph=in_graph)
    encoder = ArcFaceOnnxEncoder(model)
    assert encoder.normalises_itself is in_graph
    image = astronaut()
    faces = FaceFinder("hog").find(image)
    desc = encoder.describe(image, faces)
    assert desc.shape == (1, 32)
    again = encoder.describe(image.copy(), faces)
    np.testing.assert_allclose(desc, again)
    checker = IdentityChecker(FaceFinder("hog"), encoder)
    (report,) = checker.compare([image], hr=image)
    assert report.similarity == pytest.approx(1.0, abs=1e-6)


def test_both_input_normalisations_give_the_same_embedding(tmp_path: Path) -> None:
    image = astronaut()
    faces = FaceFinder("hog").find(image)
    plain = ArcFaceOnnxEncoder(tiny_arcface(tmp_path / "a.onnx")).describe(image, faces)
    inside = ArcFaceOnnxEncoder(tiny_arcface(tmp_path / "b.onnx", normalise_in_graph=True)).describe(
        image, faces
    )
    np.testing.assert_allclose(plain, inside, rtol=1e-4, atol=1e-4)


def test_arcface_missing_or_wrong_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"nothere\.onnx not found"):
        ArcFaceOnnxEncoder(tmp_path / "nothere.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(MissingWeightsError, match=r"bad\.onnx cannot be loaded"):
        ArcFaceOnnxEncoder(bad)
