"""Readers: which of the 36 glyph classes an image shows (``create_reader(spec)``; see :mod:`.base`).

``classifier`` and ``referee`` (bundled CNNs, :mod:`.classifier`), ``ocr`` (RapidOCR, :mod:`.ocr`),
``vlm`` (a VLM with the read-out protocol, :mod:`.vlm`). Reader modules import torch, onnxruntime or
transformers lazily, when a reader is built.
"""

from __future__ import annotations

from srjudge.readers.base import (
    CLASSES,
    READERS,
    Reader,
    Reading,
    create_reader,
    list_readers,
    register_reader,
    text_to_class,
)

__all__ = [
    "CLASSES",
    "READERS",
    "Reader",
    "Reading",
    "create_reader",
    "list_readers",
    "register_reader",
    "text_to_class",
]
