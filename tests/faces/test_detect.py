"""Face detection and landmarks with dlib's real models on a real face photo."""

from __future__ import annotations

import numpy as np
import pytest

from srjudge.errors import SpecError
from srjudge.faces.detect import Face, FaceFinder, box_iou, centre_face, match_faces
from tests.faces.helpers import astronaut

# Where the astronaut's face is: dlib's HOG box, checked by eye (and the CNN finds (168, 69, 263, 164)).
ASTRONAUT_FACE = (175, 76, 265, 166)


def test_hog_finds_the_astronaut_face_and_drops_weak_false_positives() -> None:
    faces = FaceFinder("hog").find(astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert face.detector == "hog"
    assert box_iou(face.box, ASTRONAUT_FACE) > 0.9
    assert face.score > 1.0
    # 5 landmarks inside the box; the nose base below the eyes.
    assert len(face.landmarks) == 5
    left, top, right, bottom = face.box
    assert all(left <= x <= right and top <= y <= bottom for x, y in face.landmarks)
    (lx, ly), (rx, ry) = face.eye_centres()
    assert lx < rx and face.landmarks[4][1] > max(ly, ry)


def test_a_lower_min_score_admits_the_background_false_positives() -> None:
    assert len(FaceFinder("hog", min_score=-0.5).find(astronaut())) == 3


def test_cnn_finds_the_same_face() -> None:
    image = astronaut()[::2, ::2]  # 256 px: the CNN (1.7 s at 512 px) runs in a fraction of that
    faces = FaceFinder("cnn").find(image)
    assert len(faces) == 1 and faces[0].detector == "cnn"
    assert box_iou(faces[0].scaled(2.0).box, ASTRONAUT_FACE) > 0.6


def test_auto_falls_back_to_the_cnn_when_hog_finds_nothing() -> None:
    # Rotated by 90 degrees the frontal HOG detector misses the face; the CNN fallback does not.
    image = np.ascontiguousarray(np.rot90(astronaut()[::2, ::2]))
    assert FaceFinder("hog").find(image) == []
    faces = FaceFinder("auto").find(image)
    assert [f.detector for f in faces] == ["cnn"]


def test_no_face_in_a_flat_image() -> None:
    assert FaceFinder("hog").find(np.full((128, 128, 3), 0.5, np.float32)) == []


def test_landmarks_refit_on_another_image_keep_the_box() -> None:
    finder = FaceFinder("hog")
    image = astronaut()
    face = finder.find(image)[0]
    shifted = np.roll(image, 3, axis=1)
    refit = finder.landmarks_in(shifted, face)
    assert refit.box == face.box
    moved = np.mean([x for x, _ in refit.landmarks]) - np.mean([x for x, _ in face.landmarks])
    assert 1.5 < moved < 4.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"detector": "mtcnn"}, "hog, cnn, auto"),
        ({"upsample": 3}, "upsample=3"),
        ({"min_score": float("nan")}, "min_score"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        FaceFinder(**kwargs)  # type: ignore[arg-type]


def _face(box: tuple[int, int, int, int]) -> Face:
    return Face(box, 1.0, ((0.0, 0.0),) * 5, "hog")


def test_match_faces_pairs_by_overlap_each_face_once() -> None:
    reference = [_face((0, 0, 10, 10)), _face((20, 0, 30, 10))]
    found = [_face((21, 1, 31, 11)), _face((50, 50, 60, 60)), _face((1, 0, 11, 10))]
    assert match_faces(reference, found) == [2, 0]
    assert match_faces(reference, []) == [None, None]


def test_centre_face_and_scaling() -> None:
    faces = [_face((0, 0, 10, 10)), _face((45, 45, 55, 55))]
    assert centre_face(faces, (100, 100, 3)) == faces[1]
    assert centre_face([], (100, 100, 3)) is None
    assert _face((1, 2, 3, 4)).scaled(2.0).box == (2, 4, 6, 8)
