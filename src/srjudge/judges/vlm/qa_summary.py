"""What the ``audit`` protocol shows its VLM besides the images: face crops and a compact QA summary.

The face-SR auditing paper (section 3.3) gives its gatekeeper the downsampled LR image, the current SR
output, 3-5 cropped face patches and "a compact QA summary (ArcFace, LPIPS, NIQE, artifact flags)".
This module measures that summary and cuts the crops, as pure functions of arrays and of the
instruments that measure (:class:`QATools`, loaded once and kept):

- faces: found on the SR output (:class:`srjudge.faces.detect.FaceFinder`), largest first, at most
  :data:`MAX_FACES`. Each face gets a crop of the SR output; when fewer than :data:`MIN_CROPS` faces
  are found and the LR input is given, each face's crop of the LR upscaled with bicubic
  (:func:`srjudge.images.resize.imresize`) follows its SR crop, so the VLM can compare the two: one
  face gives 2 crops (SR, LR), two faces give 4, three to five faces give one SR crop each, more
  give the five largest. No face, no crop.
- identity: the cosine of face-recognition descriptors (dlib's ResNet, the stand-in for the paper's
  ArcFace) between the SR face and the HR face when an HR reference is given, else the LR face
  upscaled with bicubic (:class:`srjudge.faces.identity.IdentityChecker`; the worst face counts),
  against the encoder's same-person threshold: "same person" or "identity drift".
- NIQE of the SR output (``create_metric("niqe")``; lower is more natural).
- LPIPS between the SR output and the HR reference, only when one is given and LPIPS can be loaded.
- artifact flags: the tags of the ``trust`` judge scored with the LR input.

Whatever cannot be measured says why ("not measured: ..."), never a default value. Without dlib (the
optional ``faces`` extra) there are no crops and the summary says face detection is not available.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from srjudge.errors import MissingDependencyError, SrjudgeError
from srjudge.faces.detect import Detector, Face, FaceFinder
from srjudge.faces.identity import IdentityChecker, make_encoder
from srjudge.faces.models import import_dlib
from srjudge.images.resize import imresize
from srjudge.judges.base import Judge

MAX_FACES = 5
"""At most this many faces get crops (the largest ones)."""
MIN_CROPS = 3
"""With fewer faces than this, each face's LR crop (bicubic) is shown beside its SR crop."""
CROP_SIZE = 160
"""Side of a face crop, in pixels."""
NO_FACE = "no face found"
NO_LR_FLAGS = "no LR input (the trust judge anchors on it)"

NiqeFn = Callable[[np.ndarray], float]
LpipsFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class FaceKit:
    """The face instruments: a finder, an identity checker on its faces, the same-person threshold."""

    finder: FaceFinder
    checker: IdentityChecker
    threshold: float
    encoder: str


class QATools:
    """The instruments of the QA summary, each loaded on first use and then kept.

    ``niqe``, ``lpips`` and ``trust`` may be given (tests, or a caller with its own models); otherwise
    they are created from the registries. A load that fails is remembered with its error, except for
    the faces: whether dlib can be imported is asked on every use (a cheap look-up once imported).
    """

    def __init__(
        self,
        *,
        detector: Detector = "auto",
        niqe: NiqeFn | None = None,
        lpips: LpipsFn | None = None,
        trust: Judge | None = None,
    ) -> None:
        self.detector: Detector = detector
        self._niqe = niqe
        self._lpips = lpips
        self._trust = trust
        self._faces: FaceKit | None = None
        self._failed: dict[str, SrjudgeError] = {}

    def faces(self) -> FaceKit:
        """The face instruments; :class:`MissingDependencyError` when dlib cannot be imported."""
        import_dlib()
        if self._faces is None:
            finder = FaceFinder(self.detector)
            encoder = make_encoder()
            checker = IdentityChecker(finder, encoder)
            self._faces = FaceKit(finder, checker, encoder.default_threshold, encoder.name)
        return self._faces

    def niqe(self) -> NiqeFn:
        if self._niqe is None:
            metric = self._load("niqe")
            self._niqe = lambda image: float(metric(image))
        return self._niqe

    def lpips(self) -> LpipsFn:
        if self._lpips is None:
            metric = self._load("lpips")
            self._lpips = lambda image, hr: float(metric(image, hr=hr))
        return self._lpips

    def trust(self) -> Judge:
        if self._trust is None:
            if "trust" in self._failed:
                raise self._failed["trust"]
            from srjudge.judges.registry import create_judge

            try:
                self._trust = create_judge("trust")
            except SrjudgeError as exc:
                self._failed["trust"] = exc
                raise
        return self._trust

    def _load(self, name: str) -> Any:
        if name in self._failed:
            raise self._failed[name]
        from srjudge.metrics import create_metric

        try:
            return create_metric(name)
        except SrjudgeError as exc:
            self._failed[name] = exc
            raise


_DEFAULT: list[QATools] = []


def default_tools() -> QATools:
    """The process-wide instruments (models load once per process)."""
    if not _DEFAULT:
        _DEFAULT.append(QATools())
    return _DEFAULT[0]


# ---------------------------------------------------------------------- faces and crops
@dataclass(frozen=True)
class FaceCrop:
    """One face patch shown to the VLM: face ``face`` (1 = largest) cut from the SR or the upscaled LR."""

    face: int
    source: Literal["sr", "lr"]
    box: tuple[int, int, int, int]
    image: np.ndarray = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"face {self.face} " + ("SR" if self.source == "sr" else "LR-bicubic")


def largest_faces(faces: Sequence[Face], limit: int = MAX_FACES) -> list[Face]:
    """The ``limit`` largest faces by box area, largest first (ties: top to bottom, left to right)."""

    def area(face: Face) -> int:
        left, top, right, bottom = face.box
        return (right - left) * (bottom - top)

    return sorted(faces, key=lambda f: (-area(f), f.box[1], f.box[0]))[:limit]


def upscaled_lr(lr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The LR input upscaled with bicubic (MATLAB ``imresize``) to ``shape``, clipped to [0, 1]."""
    return np.clip(imresize(lr, output_shape=(shape[0], shape[1])), 0.0, 1.0).astype(np.float32)


def face_crops(
    sr: np.ndarray,
    lr: np.ndarray | None,
    faces: Sequence[Face],
    *,
    size: int = CROP_SIZE,
    min_crops: int = MIN_CROPS,
) -> list[FaceCrop]:
    """A crop of ``sr`` per face (in the order given); with fewer than ``min_crops`` faces and an LR
    input, each face's crop of the LR upscaled with bicubic follows its SR crop."""
    from srjudge.faces.crops import view_crop

    upscaled = upscaled_lr(lr, sr.shape) if lr is not None and 0 < len(faces) < min_crops else None
    crops = []
    for index, face in enumerate(faces, start=1):
        crops.append(FaceCrop(index, "sr", face.box, view_crop(sr, face, size=size)))
        if upscaled is not None:
            crops.append(FaceCrop(index, "lr", face.box, view_crop(upscaled, face, size=size)))
    return crops


# ---------------------------------------------------------------------- the summary
@dataclass(frozen=True)
class Identity:
    """Identity of the SR face(s): the worst face's cosine against ``reference`` (``hr`` or ``lr``)."""

    cosine: float | None
    reference: str | None = None
    threshold: float | None = None
    encoder: str | None = None
    note: str = ""

    @property
    def drift(self) -> bool | None:
        """True below the same-person threshold; None when not measured."""
        if self.cosine is None or self.threshold is None:
            return None
        return self.cosine < self.threshold

    def text(self) -> str:
        if self.cosine is None:
            return f"not measured: {self.note}"
        against = "the HR face" if self.reference == "hr" else "the LR face upscaled with bicubic"
        verdict = "identity drift" if self.drift else "same person"
        rule = f"{self.encoder}; same person at >= {self.threshold:.3f}"
        return f"cosine {self.cosine:.3f} vs {against} ({rule}): {verdict}"


@dataclass(frozen=True)
class Reading:
    """One measured number, or why it is missing."""

    value: float | None
    note: str = ""


@dataclass(frozen=True)
class QASummary:
    """The compact QA summary of one SR output (see the module docstring for each line)."""

    faces_found: int | None
    """Faces found on the SR output; None when face detection is not available."""
    faces_note: str
    crops: tuple[str, ...]
    identity: Identity
    niqe: Reading
    lpips: Reading
    flags: tuple[str, ...] | None
    """The trust judge's tags; None when not measured (``flags_note`` says why)."""
    flags_note: str = ""
    lr_given: bool = True

    def faces_text(self) -> str:
        if self.faces_found is None:
            return f"not available: {self.faces_note}; no face crops"
        if self.faces_found == 0:
            return f"{NO_FACE}; no face crops"
        order = " (largest first)" if self.faces_found > 1 else ""
        more = f"; the {MAX_FACES} largest are cropped" if self.faces_found > MAX_FACES else ""
        return f"{self.faces_found} found on the SR output{more}; crops shown{order}: {', '.join(self.crops)}"

    def niqe_text(self) -> str:
        if self.niqe.value is None:
            return f"not measured: {self.niqe.note}"
        return f"{self.niqe.value:.2f} (no-reference naturalness of the SR output; lower is better)"

    def lpips_text(self) -> str:
        if self.lpips.value is None:
            return self.lpips.note
        return f"{self.lpips.value:.3f} vs the HR reference (perceptual distance; lower is better)"

    def flags_text(self) -> str:
        if self.flags is None:
            return f"not measured: {self.flags_note}"
        return ", ".join(self.flags) if self.flags else "none"

    def to_text(self) -> str:
        """The block shown to the VLM, one line per measurement."""
        lines = [
            "QA summary (automatic measurements of the SR output):",
            f"- faces: {self.faces_text()}",
            f"- identity: {self.identity.text()}",
            f"- NIQE: {self.niqe_text()}",
            f"- LPIPS: {self.lpips_text()}",
            f"- artifact flags (trust judge): {self.flags_text()}",
        ]
        return "\n".join(lines)

    def brief(self) -> str:
        """One line for a verdict's rationale."""
        faces = "n/a" if self.faces_found is None else str(self.faces_found)
        if self.identity.cosine is None:
            identity = "not measured"
        else:
            identity = f"{self.identity.cosine:.3f} vs {self.identity.reference}"
            identity += " (identity drift)" if self.identity.drift else " (same person)"
        niqe = "n/a" if self.niqe.value is None else f"{self.niqe.value:.2f}"
        lpips = "n/a" if self.lpips.value is None else f"{self.lpips.value:.3f}"
        flags = "n/a" if self.flags is None else (", ".join(self.flags) or "none")
        return f"faces {faces}; identity {identity}; NIQE {niqe}; LPIPS {lpips}; flags {flags}"

    def components(self) -> dict[str, float]:
        """The measured numbers, for a verdict's components (missing ones are left out)."""
        out: dict[str, float] = {}
        if self.faces_found is not None:
            out["qa_faces"] = float(self.faces_found)
        if self.identity.cosine is not None:
            out["qa_identity"] = self.identity.cosine
        if self.niqe.value is not None:
            out["qa_niqe"] = self.niqe.value
        if self.lpips.value is not None:
            out["qa_lpips"] = self.lpips.value
        return out

    def to_dict(self) -> dict[str, Any]:
        identity = self.identity
        return {
            "faces": {"found": self.faces_found, "crops": list(self.crops), "note": self.faces_note},
            "identity": {
                "cosine": identity.cosine,
                "reference": identity.reference,
                "threshold": identity.threshold,
                "encoder": identity.encoder,
                "drift": identity.drift,
                "note": identity.note,
            },
            "niqe": {"value": self.niqe.value, "note": self.niqe.note},
            "lpips": {"value": self.lpips.value, "note": self.lpips.note},
            "flags": {"tags": None if self.flags is None else list(self.flags), "note": self.flags_note},
            "lr_given": self.lr_given,
        }


@dataclass(frozen=True)
class AuditEvidence:
    """What the audit protocol adds to a request for one SR output: its face crops and its summary."""

    summary: QASummary
    crops: tuple[FaceCrop, ...] = ()


def measure_identity(sr: np.ndarray, lr: np.ndarray | None, hr: np.ndarray | None, kit: FaceKit) -> Identity:
    """The SR face's identity against the HR face, else the LR face upscaled (bicubic)."""
    if hr is None and lr is None:
        return Identity(None, note="no LR input or HR reference to compare the face with")
    try:
        report = kit.checker.compare([sr], hr=hr, lr=lr)[0]
    except (SrjudgeError, RuntimeError) as exc:
        return Identity(None, note=f"the identity check failed: {exc}")
    if report.similarity is None:
        return Identity(None, note=report.note)
    reference = report.references[0] if report.references else None
    return Identity(report.similarity, reference, kit.threshold, kit.encoder, report.note)


def measure_niqe(sr: np.ndarray, niqe: NiqeFn) -> Reading:
    try:
        return Reading(niqe(sr))
    except SrjudgeError as exc:
        return Reading(None, str(exc))


def measure_lpips(sr: np.ndarray, hr: np.ndarray | None, tools: QATools) -> Reading:
    """LPIPS to the HR reference; the note is the whole LPIPS line when it is missing."""
    if hr is None:
        return Reading(None, "no HR reference")
    try:
        lpips = tools.lpips()
    except SrjudgeError as exc:
        return Reading(None, f"not available: {exc}")
    try:
        return Reading(lpips(sr, hr))
    except SrjudgeError as exc:
        return Reading(None, f"not measured: {exc}")


def artifact_flags(sr: np.ndarray, lr: np.ndarray | None, trust: Judge) -> tuple[tuple[str, ...] | None, str]:
    """The trust judge's tags for ``sr`` scored with its LR input, or None and why not."""
    if lr is None:
        return None, NO_LR_FLAGS
    try:
        return tuple(trust.score(sr, lr=lr).tags), ""
    except SrjudgeError as exc:
        return None, str(exc)


def _faces_unavailable(exc: SrjudgeError) -> str:
    if isinstance(exc, MissingDependencyError):
        return "face detection needs dlib, which cannot be imported (the optional 'faces' extra)"
    return f"face detection could not start: {exc}"


def qa_evidence(
    sr: np.ndarray,
    *,
    lr: np.ndarray | None = None,
    hr: np.ndarray | None = None,
    tools: QATools | None = None,
) -> AuditEvidence:
    """Face crops and the QA summary of one SR output (with its LR input and HR reference when given)."""
    tools = default_tools() if tools is None else tools
    kit: FaceKit | None = None
    faces_note = ""
    try:
        kit = tools.faces()
    except SrjudgeError as exc:
        faces_note = _faces_unavailable(exc)
    crops: list[FaceCrop] = []
    faces_found: int | None = None
    if kit is not None:
        try:
            found = kit.finder.find(sr)
        except RuntimeError as exc:  # dlib's own errors
            faces_note = f"face detection failed: {exc}"
        else:
            faces_found = len(found)
            crops = face_crops(sr, lr, largest_faces(found))
            faces_note = "" if found else NO_FACE
    if kit is None or faces_found is None:
        identity = Identity(None, note="face detection is not available")
    elif faces_found == 0:
        identity = Identity(None, note=NO_FACE)
    else:
        identity = measure_identity(sr, lr, hr, kit)
    try:
        niqe = measure_niqe(sr, tools.niqe())
    except SrjudgeError as exc:
        niqe = Reading(None, f"the NIQE metric cannot be loaded: {exc}")
    flags: tuple[str, ...] | None = None
    if lr is None:
        flags_note = NO_LR_FLAGS
    else:
        try:
            flags, flags_note = artifact_flags(sr, lr, tools.trust())
        except SrjudgeError as exc:
            flags_note = f"the trust judge is not available: {exc}"
    summary = QASummary(
        faces_found=faces_found,
        faces_note=faces_note,
        crops=tuple(c.label for c in crops),
        identity=identity,
        niqe=niqe,
        lpips=measure_lpips(sr, hr, tools),
        flags=flags,
        flags_note=flags_note,
        lr_given=lr is not None,
    )
    return AuditEvidence(summary, tuple(crops))


def qa_summary(
    sr: np.ndarray,
    *,
    lr: np.ndarray | None = None,
    hr: np.ndarray | None = None,
    tools: QATools | None = None,
) -> QASummary:
    """The QA summary alone (see :func:`qa_evidence`)."""
    return qa_evidence(sr, lr=lr, hr=hr, tools=tools).summary
