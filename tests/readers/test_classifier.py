"""The bundled glyph classifier and referee: held-out fonts, independence, checkpoint errors, input rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srjudge.errors import ImageError, MissingWeightsError
from srjudge.readers import create_reader
from srjudge.readers.classifier import BUNDLED, RECORD_NAME, WEIGHTS_NAME, glyph_input
from srjudge.testbed import TestbedConfig, glyph_arrays
from tests.readers.helpers import _plain

#: Measured on the test split's clean HR glyphs (3 held-out faces x 36 classes x 2 copies): see
#: /work/notes/readme_testbed_readers.md; the floors leave a margin below what was measured.
HELDOUT_FLOOR = {"classifier": 0.93, "referee": 0.93}


@pytest.fixture(scope="module")
def heldout_clean() -> tuple[list[np.ndarray], list[str]]:
    """Clean HR glyphs of the held-out test faces (the testbed's default config, first two copies)."""
    arrays = glyph_arrays(TestbedConfig(), "test", severities=[0])
    return list(arrays.hr), list(arrays.labels)


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
