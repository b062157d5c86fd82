"""Readers say which symbol a glyph image shows: a label among 36 classes, a confidence, class probabilities.

A :class:`Reader` turns float RGB arrays in [0, 1] (H x W x 3, dark ink on light paper) into
:class:`Reading` records. ``create_reader(spec)`` builds any registered reader (``classifier``,
``referee``, ``ocr``, ``vlm:hf,model=/path``); unknown names get a did-you-mean error.

Readers that only return text (OCR, VLMs) map it to a class with :func:`text_to_class`: Unicode
NFKC normalisation, whitespace and punctuation dropped, then a small table of look-alikes of the 36
classes (``l``/``|``/``!`` -> ``I``; ``○``/``°``/``口``/``。`` -> ``O``; ``θ`` -> ``0``; ``×`` -> ``X``; any
other lowercase letter is uppercased).
Exactly one remaining character in the classes is a label; nothing, or several characters, is no label.
"""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srjudge.errors import ImageError
from srjudge.provenance import Provenance
from srjudge.registry import Entry, OptionSchema, Registry
from srjudge.spec import Spec, parse_spec

CLASSES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # the 36 glyph classes (the testbed imports them)

CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}

#: Look-alikes of the classes that OCR engines and VLMs answer for single glyphs (after NFKC).
LOOKALIKES: Mapping[str, str] = {
    "l": "I",
    "|": "I",
    "!": "I",
    "o": "O",
    "○": "O",
    "°": "O",
    "口": "O",
    "。": "O",
    "θ": "0",
    "×": "X",
}


@dataclass(frozen=True)
class Reading:
    """What a reader saw in one image.

    ``label`` is one of :data:`CLASSES` or None when nothing could be read (``note`` says why);
    ``confidence`` is in [0, 1] (0 when nothing was read); ``probs`` maps every class to its
    probability for readers that have them (the classifiers), else None.
    """

    label: str | None
    confidence: float
    probs: Mapping[str, float] | None = None
    note: str = ""
    text: str | None = None

    def distribution(self) -> np.ndarray:
        """A length-36 vector: ``probs`` when given, else one-hot(label) x confidence (zeros if no label)."""
        out = np.zeros(len(CLASSES), dtype=np.float64)
        if self.probs is not None:
            for key, value in self.probs.items():
                out[CLASS_INDEX[key]] = float(value)
        elif self.label is not None:
            out[CLASS_INDEX[self.label]] = float(self.confidence)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(float(self.confidence), 6),
            "probs": None if self.probs is None else {k: round(float(v), 6) for k, v in self.probs.items()},
            "note": self.note,
            "text": self.text,
        }


def reading_from_probs(probs: np.ndarray) -> Reading:
    """A reading from a length-36 probability vector: argmax label, its probability as confidence."""
    index = int(np.argmax(probs))
    return Reading(
        label=CLASSES[index],
        confidence=float(probs[index]),
        probs={c: float(p) for c, p in zip(CLASSES, probs, strict=True)},
    )


def text_to_class(text: str | None) -> str | None:
    """Map a reader's text answer to one of :data:`CLASSES` (see the module docstring), or None."""
    if not text:
        return None
    normal = unicodedata.normalize("NFKC", text)
    kept = []
    for ch in normal:
        ch = LOOKALIKES.get(ch, ch)
        if ch.isspace() or unicodedata.category(ch).startswith("P"):
            continue
        kept.append(ch.upper() if ch.isascii() else ch)
    if len(kept) != 1 or kept[0] not in CLASS_INDEX:
        return None
    return kept[0]


def check_glyphs(images: Sequence[np.ndarray], what: str = "glyph image") -> None:
    """Every image must be an H x W x 3 float array (values are clipped to [0, 1] by the readers)."""
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", type(image).__name__)
            raise ImageError(f"{what} {i} must be an H x W x 3 RGB array in [0, 1]; got shape {shape}.")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ImageError(f"{what} {i} has zero size {image.shape[1]}x{image.shape[0]}.")
        if not np.issubdtype(image.dtype, np.floating):
            raise ImageError(
                f"{what} {i} has dtype {image.dtype}; readers take float arrays in [0, 1] "
                "(divide 8-bit images by 255)."
            )


class Reader(ABC):
    """Reads the symbol in glyph images; subclasses set ``spec`` and ``config``."""

    spec: str
    config: Mapping[str, Any]
    has_probs: bool = False

    def provenance(self) -> Provenance:
        return Provenance.of(self.spec, {"spec": self.spec, **self.config})

    @abstractmethod
    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        """One reading per image, in order."""


ReaderFactory = Callable[[Spec], Reader]


@dataclass(frozen=True, kw_only=True)
class ReaderEntry(Entry):
    """A registered reader: ``factory(spec) -> Reader``."""


READERS: Registry[ReaderEntry] = Registry("reader", packages=("srjudge.readers",), entry_type=ReaderEntry)


def register_reader(
    name: str, description: str, *, options: OptionSchema | None = None
) -> Callable[[ReaderFactory], ReaderFactory]:
    """Register a factory ``f(spec) -> Reader`` under ``name``, with its option schema."""
    return READERS.register(name, description, options=options)


def create_reader(spec: str | Spec) -> Reader:
    """Build a reader from its spec: ``classifier``, ``referee``, ``ocr``, ``vlm:hf,model=/path``."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    reader: Reader = READERS.get(parsed.name).factory(parsed)
    return reader


def list_readers() -> list[ReaderEntry]:
    return READERS.entries()
