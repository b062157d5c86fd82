"""``identity``: identity preservation, the face-SR paper's ArcFace-cosine column.

The worst face's cosine between the SR image's and the HR reference's recognition descriptors (faces
found on the HR, compared face by face on the same crops; see :mod:`srjudge.faces.identity`). NaN,
which a judge turns into an abstention, when the HR reference shows no face.
"""

from __future__ import annotations

import math

from srjudge.faces.detect import DETECTORS, Detector, FaceFinder
from srjudge.faces.identity import DLIB_THRESHOLD, IdentityChecker, make_encoder
from srjudge.faces.models import PACKAGE
from srjudge.metrics.base import Image, MetricFn, MetricInfo, ScoreMap, register_metric_factory, require_hr
from srjudge.models.bundled import package_dir
from srjudge.spec import Choice


@register_metric_factory(
    MetricInfo(
        name="identity",
        description=(
            "Identity preservation: cosine of face-recognition descriptors (dlib ResNet, or arcface=PATH "
            "ONNX) of the SR and HR faces, worst face; NaN without a face. Score 50 at the same-person "
            "threshold."
        ),
        higher_is_better=True,
        score_map=ScoreMap("linear", 2.0 * DLIB_THRESHOLD - 1.0, 1.0),
        needs_hr=True,
        value_range=(-1.0, 1.0),
        unit="cosine",
        needs_weights=package_dir(PACKAGE) is None,
        reference="dlib face recognition ResNet (King, dlib-models); face-SR auditing paper (ArcFace cosine)",
    ),
    options={
        "detector": (Choice(*DETECTORS, label="face detector"), "auto"),
        "arcface": (str, None),
        "models": (str, None),
    },
)
def identity_factory(
    detector: Detector = "auto", arcface: str | None = None, models: str | None = None
) -> MetricFn:
    """Load the face models once and return ``(sr, hr, lr) -> worst-face cosine``."""
    checker = IdentityChecker(FaceFinder(detector, models_folder=models), make_encoder(arcface, models))

    def identity(sr: Image, hr: Image | None, lr: Image | None) -> float:
        report = checker.compare([sr], hr=require_hr(hr, "identity"))[0]
        return math.nan if report.similarity is None else report.similarity

    return identity
