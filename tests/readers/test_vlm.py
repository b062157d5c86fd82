"""The vlm reader: typed readings, abstention on garbage, answers mapped to classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srjudge.errors import SpecError
from srjudge.readers import Reading, create_reader
from srjudge.readers.vlm import VLMReader
from srjudge.vlm.backends import CachedBackend
from srjudge.vlm.readout import ReadoutSettings
from tests.readers.helpers import _plain
from tests.vlm.helpers import _image_index, _images
from vlm_replay import ReplayBackend


def test_vlm_reader_types_and_abstention_on_garbage(tiny_vlm: Path, tmp_path: Path) -> None:
    """The tiny random VLM writes no valid JSON: readings are typed and say nothing was read."""
    spec = f"vlm:hf,model={tiny_vlm},retries=0,cache={tmp_path / 'c.sqlite'}"
    reader = create_reader(spec)
    readings = reader.read([_plain("3"), _plain("A")])
    assert len(readings) == 2 and all(isinstance(r, Reading) for r in readings)
    for r in readings:
        assert r.label is None and r.confidence == 0.0 and "could not be read" in r.note
        json.dumps(r.to_dict())
    with pytest.raises(SpecError, match="protocol=readout"):
        create_reader(f"vlm:hf,model={tiny_vlm},protocol=level")
    with pytest.raises(SpecError, match="names its backend"):
        create_reader(f"vlm:model={tiny_vlm}")


def test_the_vlm_reader_maps_answers_to_classes() -> None:
    images = _images(4)
    texts = [
        '{"text": "o", "confidence": 0.7}',
        '{"text": "", "confidence": 0.9}',
        "nope",
        '{"text": "AB", "confidence": 1}',
    ]
    backend = ReplayBackend(lambda r: texts[_image_index(r, images)])
    reader = VLMReader(
        CachedBackend(backend, None), {"backend": "replay"}, settings=ReadoutSettings(retries=0)
    )
    assert reader.spec == "reader-vlm:replay,model=recorded,protocol=readout"
    assert reader.config["templates"] == ["readout@1"] and reader.config["identity"]["model"] == "recorded"
    a, b, c, d = reader.read(images)
    assert (a.label, a.confidence, a.text) == ("O", 0.7, "O")
    assert b.label is None and b.note == "VLM read no text"
    assert c.label is None and c.note.startswith("VLM answer could not be read: no JSON object")
    assert d.label is None and "'AB' is not one of the 36 classes" in d.note
