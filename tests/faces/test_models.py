"""Finding dlib's face models: the package, a folder, and clear errors when they are missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from srjudge.errors import MissingWeightsError
from srjudge.faces import models


def test_models_come_from_the_installed_package_without_importing_it() -> None:
    folder = models.models_folder()
    assert folder.name == "models" and folder.parent.name == "face_recognition_models"
    for key in models.FILES:
        assert models.model_file(key).stat().st_size > 100_000
    # The non-commercial 68-point model is never one of the files srjudge loads.
    assert all("68" not in name for name in models.FILES.values())


def test_a_missing_folder_or_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingWeightsError, match="does not exist"):
        models.models_folder(tmp_path / "nope")
    monkeypatch.setenv(models.ENV_FOLDER, str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"dlib_face_recognition_resnet_model_v1\.dat is missing"):
        models.model_file("recognition")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(models.ENV_FOLDER, raising=False)
    monkeypatch.setattr(models, "package_dir", lambda name: None)
    with pytest.raises(
        MissingWeightsError, match=re.escape(models.INSTALL)
    ):
        models.models_folder()
