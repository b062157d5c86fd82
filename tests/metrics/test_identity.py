"""The ``identity`` metric: cosine of face descriptors against the HR face; NaN without a face."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srjudge.demo_faces import face_crop
from srjudge.errors import SrjudgeError
from srjudge.faces.detect import FaceFinder
from srjudge.faces.identity import DLIB_THRESHOLD
from srjudge.images.samples import face_photos
from srjudge.judges.registry import create_judge
from srjudge.metrics import create_metric


def test_identity_is_one_for_the_hr_above_threshold_for_the_same_person_below_for_another() -> None:
    metric = create_metric("identity")
    finder = FaceFinder()
    photos = dict(face_photos())
    # 192 px crops centred on each face, so the faces overlap (IoU 0.65-0.69) as an SR output's would.
    obama, _ = face_crop(photos["barack-obama_1"], finder)
    obama_again, _ = face_crop(photos["barack-obama_2"], finder)
    biden, _ = face_crop(photos["joe-biden_1"], finder)
    assert metric(obama, hr=obama) == pytest.approx(1.0, abs=1e-9)
    assert metric(obama_again, hr=obama) == pytest.approx(0.964, abs=0.01)  # another photo, same man
    assert metric(biden, hr=obama) == pytest.approx(0.819, abs=0.01)
    assert metric.score(DLIB_THRESHOLD) == pytest.approx(50.0)
    assert metric.info.higher_is_better and metric.info.needs_hr


def test_without_a_face_the_metric_is_nan_and_the_judge_abstains() -> None:
    flat = np.full((64, 64, 3), 0.5, np.float32)
    assert math.isnan(create_metric("identity")(flat, hr=flat))
    verdict = create_judge("identity").score(flat, hr=flat)
    assert verdict.abstained and "NaN" in (verdict.abstain_reason or "")


def test_identity_needs_an_hr_reference() -> None:
    with pytest.raises(SrjudgeError, match="high-resolution reference"):
        create_metric("identity")(np.zeros((64, 64, 3), np.float32))
