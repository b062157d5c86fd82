"""Readers: the registry, text mapping, the bundled classifier and referee on held-out fonts, their
checkpoint errors and determinism, training determinism and resume, OCR on a glyph it reads, and the
VLM reader's types and abstention on a tiny random-weight model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from srjudge.errors import ImageError, MissingWeightsError, SpecError, UnknownNameError
from srjudge.readers import CLASSES, Reading, create_reader, list_readers, text_to_class
from srjudge.readers.classifier import BUNDLED, RECORD_NAME, WEIGHTS_NAME, glyph_input
from srjudge.testbed import TestbedConfig, glyph_arrays
from srjudge.testbed.glyphs import FONT_FACES, Jitter, draw_glyph, render_glyph, sample_glyph_params

#: Measured on the test split's clean HR glyphs (3 held-out faces x 36 classes x 2 copies): see
#: /work/notes/readme_testbed_readers.md; the floors leave a margin below what was measured.
HELDOUT_FLOOR = {"classifier": 0.93, "referee": 0.93}


@pytest.fixture(scope="module")
def heldout_clean() -> tuple[list[np.ndarray], list[str]]:
    """Clean HR glyphs of the held-out test faces (the testbed's default config, first two copies)."""
    arrays = glyph_arrays(TestbedConfig(), "test", severities=[0])
    return list(arrays.hr), list(arrays.labels)


def _plain(char: str, size: int = 32, face: int = 0) -> np.ndarray:
    params = sample_glyph_params(np.random.default_rng(0), Jitter.none())
    return draw_glyph(char, FONT_FACES[face], params, size=size)


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


@pytest.mark.parametrize("name", ["classifier", "referee"])
def test_bundled_classifiers_read_held_out_fonts(
    name: str, heldout_clean: tuple[list[np.ndarray], list[str]]
) -> None:
    """Both bundled networks read clean glyphs of font faces they never saw, above the floor."""
    images, labels = heldout_clean
    reader = create_reader(name)
    readings = reader.read(images)
    accuracy = float(np.mean([r.label == y for r, y in zip(readings, labels, strict=True)]))
    assert accuracy >= HELDOUT_FLOOR[name], f"{name}: {accuracy:.3f}"
    r = readings[0]
    assert r.probs is not None and sum(r.probs.values()) == pytest.approx(1.0)
    assert r.confidence == pytest.approx(max(r.probs.values()))
    record = json.loads((BUNDLED[name] / RECORD_NAME).read_text())
    assert record["heldout"]["test"]["hr_clean"] >= HELDOUT_FLOOR[name]
    assert set(record["heldout"]["test"]["faces"]) == set(TestbedConfig().test_faces)
    assert record["data"]["digest"].startswith("sha256:") and record["wall_time_s"]["train"] > 0


def test_reader_and_referee_are_different_networks() -> None:
    """The referee is independently trained: another width and seed than the judged classifier."""
    a = json.loads((BUNDLED["classifier"] / RECORD_NAME).read_text())
    b = json.loads((BUNDLED["referee"] / RECORD_NAME).read_text())
    assert a["architecture"]["width"] != b["architecture"]["width"] and a["seed"] != b["seed"]
    assert a["weights_sha256"] != b["weights_sha256"]


def test_missing_or_broken_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    """A missing folder or file names what is missing and how to train it."""
    with pytest.raises(MissingWeightsError, match=r"does not exist.*train_glyph_classifier"):
        create_reader(f"classifier:{tmp_path / 'nowhere'}")
    with pytest.raises(MissingWeightsError, match=r"missing .*model\.safetensors"):
        create_reader(f"classifier:{tmp_path}")
    (tmp_path / WEIGHTS_NAME).write_bytes(b"not weights")
    (tmp_path / RECORD_NAME).write_text(json.dumps({"architecture": {"width": 16}}))
    reader = create_reader(f"classifier:path={tmp_path}")
    with pytest.raises(MissingWeightsError, match="Could not read the glyph classifier file"):
        reader.read([_plain("A")])


def test_classifier_is_deterministic_and_resizes_by_the_rule() -> None:
    """Same input, same probabilities (across reader instances); other sizes go to 32x32 first."""
    images = [_plain(c) for c in "3B"]
    a = create_reader("classifier").read(images)
    b = create_reader("classifier").read(images)
    assert [r.probs for r in a] == [r.probs for r in b]
    assert [r.label for r in a] == ["3", "B"]
    big = _plain("7", size=64)
    wide = np.concatenate([np.ones((32, 8, 3), np.float32), _plain("7"), np.ones((32, 8, 3), np.float32)], 1)
    batch = glyph_input([big, wide])
    assert batch.shape == (2, 1, 32, 32) and batch.dtype == np.float32
    assert [r.label for r in create_reader("classifier").read([big, wide])] == ["7", "7"]
    with pytest.raises(ImageError, match="dtype uint8"):
        create_reader("classifier").read([np.zeros((32, 32, 3), np.uint8)])


def test_training_is_deterministic_and_resumes_exactly() -> None:
    """Two runs of the recipe give identical weights; one epoch plus a resume equals two epochs."""
    import torch

    from srjudge.train.glyph_classifier import GlyphTrainConfig, TrainingData, train_network

    rng = np.random.default_rng(0)
    images = [render_glyph(c, FONT_FACES[i % 2], rng=rng) for i, c in enumerate("0123456789" * 4)]
    x = glyph_input(images)
    y = np.asarray([CLASSES.index(c) for c in "0123456789" * 4])
    data = TrainingData(x=x, y=y, kind=np.zeros(len(y), np.int8), digest="test", testbed={})
    config = GlyphTrainConfig(width=4, epochs=2, batch_size=16, hr_repeat=1, warmup_steps=1, threads=1)
    states: list[dict[str, torch.Tensor]] = []
    first = train_network(data, config).state_dict()
    second = train_network(data, config).state_dict()
    train_network(data, dataclasses.replace(config, seed=0), on_epoch=lambda e, s: states.append(s))
    assert [s["epoch"] for s in states] == [1, 2]
    resumed = train_network(data, config, state=states[0]).state_dict()
    for key in first:
        assert torch.equal(first[key], second[key]), key
        assert torch.equal(first[key], resumed[key]), key


def test_ocr_reads_a_clean_large_seven_and_nothing_on_blank_paper() -> None:
    """RapidOCR reads a clean upright '7' (64 px render) and reads nothing on blank paper."""
    reader = create_reader("ocr")
    seven, blank = _plain("7", size=64), np.ones((32, 32, 3), np.float32)
    a, b = reader.read([seven, blank])
    assert a.label == "7" and a.confidence > 0.5 and a.probs is None and a.text is not None
    assert b.label is None and b.confidence == 0.0 and b.note
    assert a.distribution()[CLASSES.index("7")] == pytest.approx(a.confidence)


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
