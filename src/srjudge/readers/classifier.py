"""The bundled glyph classifiers: ``classifier`` (the reader judges use) and ``referee`` (grading only).

Both are :class:`srjudge.models.glyph_cnn.GlyphCNN` networks trained by
``scripts/train_glyph_classifier.py`` on the testbed's rendered glyphs (train-split font faces),
augmented with the testbed's degradations and bicubic x4 upsampling so that they also read upsampled
LR inputs and SR outputs. The referee has a different width and seed: the experiment uses it only to
decide which symbol an SR output shows, so that the ``readout:classifier`` judge is never graded by
itself. Each checkpoint is a folder with ``model.safetensors`` and ``record.json`` (recipe, seed,
data digest, held-out accuracy, wall time).

Specs: ``classifier`` / ``referee`` (bundled), ``classifier:/folder`` or ``classifier,path=/folder``.

Input rule (:func:`glyph_input`): RGB -> gray (MATLAB rgb2gray), clipped to [0, 1]; a non-square
image is padded to a square, centred, with the median of its border pixels (the paper); any size
other than 32x32 is then resized to 32x32 with MATLAB-style bicubic ``imresize`` (antialiased when
shrinking), and clipped to [0, 1] again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.errors import MissingWeightsError, SpecError
from srjudge.images.color import rgb_to_gray
from srjudge.images.resize import imresize
from srjudge.readers.base import CLASSES, Reader, Reading, check_glyphs, reading_from_probs, register_reader
from srjudge.spec import Spec, coerce_options

GLYPH_SIZE = 32
WEIGHTS_NAME = "model.safetensors"
RECORD_NAME = "record.json"
TESTBED_DATA = Path(__file__).resolve().parents[1] / "data" / "testbed"
BUNDLED = {"classifier": TESTBED_DATA / "glyph-reader", "referee": TESTBED_DATA / "glyph-referee"}
TRAIN_HINT = "Train it with: python scripts/train_glyph_classifier.py (a few minutes on CPU)."


def _square(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    if h == w:
        return gray
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    side = max(h, w)
    out = np.full((side, side), float(np.median(border)), dtype=np.float64)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = gray
    return out


def glyph_input(images: Sequence[np.ndarray], size: int = GLYPH_SIZE) -> np.ndarray:
    """The classifiers' input: (B, 1, size, size) float32 gray in [0, 1] (rule in the module docstring)."""
    check_glyphs(images)
    out = np.empty((len(images), 1, size, size), dtype=np.float32)
    for i, image in enumerate(images):
        gray = np.clip(rgb_to_gray(np.clip(image, 0.0, 1.0)), 0.0, 1.0)
        gray = _square(gray)
        if gray.shape != (size, size):
            gray = np.clip(imresize(gray, output_shape=(size, size)), 0.0, 1.0)
        out[i, 0] = gray
    return out


def load_record(folder: Path) -> dict[str, Any]:
    """The JSON record of a checkpoint folder; a missing or broken file raises MissingWeightsError."""
    record_file = folder / RECORD_NAME
    weights_file = folder / WEIGHTS_NAME
    missing = [str(f) for f in (weights_file, record_file) if not f.is_file()]
    if missing:
        raise MissingWeightsError(
            f"Glyph classifier checkpoint incomplete in {str(folder)!r}: missing {', '.join(missing)}. "
            + TRAIN_HINT
        )
    try:
        record = json.loads(record_file.read_text())
        int(record["architecture"]["width"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MissingWeightsError(
            f"The record {str(record_file)!r} is not a glyph classifier record "
            f"({type(exc).__name__}: {exc}). {TRAIN_HINT}"
        ) from None
    return dict(record)


@lru_cache(maxsize=8)
def _load_network(folder: str, mtime: float) -> Any:
    """Build the network of a checkpoint folder (cached per folder and file time)."""
    import torch

    from srjudge.models.checkpoints import load_state_dict_file
    from srjudge.models.glyph_cnn import GlyphCNN

    record = load_record(Path(folder))
    arch = record["architecture"]
    net = GlyphCNN(width=int(arch["width"]), dropout=float(arch.get("dropout", 0.2)))
    state = load_state_dict_file(Path(folder) / WEIGHTS_NAME, what="glyph classifier", hint=TRAIN_HINT)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MissingWeightsError(
            f"The weights in {folder!r} do not fit a GlyphCNN of width {arch['width']} ({first}). "
            + TRAIN_HINT
        ) from None
    net.eval()
    with torch.no_grad():
        for p in net.parameters():
            p.requires_grad_(False)
    return net


class GlyphClassifierReader(Reader):
    """A trained :class:`GlyphCNN`; every reading has the 36 class probabilities."""

    has_probs = True

    def __init__(self, folder: str | Path, *, name: str = "classifier", batch_size: int = 256) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise MissingWeightsError(
                f"The {name} checkpoint folder {str(self.folder)!r} does not exist. {TRAIN_HINT}"
            )
        self.record = load_record(self.folder)
        if batch_size < 1:
            raise SpecError(f"batch_size must be >= 1, got {batch_size}.")
        self.batch_size = batch_size
        self.name = name
        bundled = BUNDLED.get(name) == self.folder.resolve()
        self.spec = name if bundled else f"{name}:{self.folder}"
        self.config: Mapping[str, Any] = {
            "folder": str(self.folder),
            "weights_sha256": self.record.get("weights_sha256"),
            "architecture": self.record["architecture"],
        }
        self._lock = threading.Lock()

    def network(self) -> Any:
        weights = self.folder / WEIGHTS_NAME
        return _load_network(str(self.folder), weights.stat().st_mtime)

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(B, 36) class probabilities (float64)."""
        import torch

        if not images:
            return np.zeros((0, len(CLASSES)))
        batch = glyph_input(images)
        net = self.network()
        outs = []
        with self._lock, torch.no_grad():
            for start in range(0, len(batch), self.batch_size):
                logits = net(torch.from_numpy(batch[start : start + self.batch_size]))
                outs.append(torch.softmax(logits.double(), dim=1).numpy())
        return np.concatenate(outs, axis=0)

    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        return [reading_from_probs(p) for p in self.probabilities(images)]


_OPTIONS = {"path": (str, None), "batch_size": (int, 256)}


def _factory(name: str) -> Any:
    def make(spec: Spec) -> Reader:
        options = coerce_options(spec, _OPTIONS, kind="reader")
        path = options.pop("path", None)
        if spec.arg is not None and path is not None:
            raise SpecError(f"Give the {name} folder once: as {name}:/folder or as path=/folder, not both.")
        folder = spec.arg or path or BUNDLED[name]
        return GlyphClassifierReader(folder, name=name, **options)

    return make


register_reader(
    "classifier",
    "The bundled glyph CNN (36 classes; trained on rendered fonts, reads upsampled LR too).",
    options=_OPTIONS,
)(_factory("classifier"))
register_reader(
    "referee",
    "A second, independently trained glyph CNN: decides which symbol an output shows (grading only).",
    options=_OPTIONS,
)(_factory("referee"))
