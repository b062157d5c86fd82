"""The SR backend registry: every backend registered, choice options refused when the spec is read."""

from __future__ import annotations

import pytest

from srjudge.errors import SpecError
from srjudge.sr.base import create_sr_backend, list_sr_backends


def test_all_backends_registered() -> None:
    names = set(list_sr_backends())
    assert {"bicubic", "lanczos", "realesrgan", "esrgan", "spandrel"} <= names


def test_sr_backend_choice_options_are_refused_when_the_spec_is_read() -> None:
    from srjudge.sr.base import SR_BACKENDS

    with pytest.raises(SpecError, match=r"Unknown realesrgan model 'x8': use one of x4plus, x4plus-anime"):
        create_sr_backend("realesrgan:model=x8")
    # family is checked before the checkpoint is looked at (the file does not exist)
    with pytest.raises(SpecError, match=r"family='face'.*use one of general, blind\."):
        create_sr_backend("esrgan:/nowhere/model.pth,family=face")
    with pytest.raises(SpecError, match=r"family='face'.*use one of general, blind, prior-guided"):
        create_sr_backend("spandrel:/nowhere/model.pth,family=face")
    lines = SR_BACKENDS.get("realesrgan").option_lines()
    assert "model: x4plus|x4plus-anime|animevideo (default 'x4plus')" in lines
