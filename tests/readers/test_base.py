"""The reader registry and the text-to-class rule."""

from __future__ import annotations

import pytest

from srjudge.errors import SpecError, UnknownNameError
from srjudge.readers import create_reader, list_readers, text_to_class


def test_registry_lists_readers_and_suggests_names() -> None:
    """Every reader is registered; a misspelt name gets a did-you-mean error."""
    assert {"classifier", "referee", "ocr", "vlm"} <= {r.name for r in list_readers()}
    with pytest.raises(UnknownNameError, match="Did you mean: classifier"):
        create_reader("clasifier")
    with pytest.raises(SpecError, match="Unknown option"):
        create_reader("ocr:colour=red")


def test_text_maps_to_one_class_or_none() -> None:
    """OCR/VLM text becomes a class by the documented rule; several or no symbols read as None."""
    assert text_to_class("7") == "7"
    assert text_to_class(" a. ") == "A"
    assert text_to_class("l") == "I" and text_to_class("o") == "O" and text_to_class("０") == "0"
    assert text_to_class("") is None and text_to_class(None) is None
    assert text_to_class("37") is None and text_to_class("?") is None and text_to_class("é") is None
