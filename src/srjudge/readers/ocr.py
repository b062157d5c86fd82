"""``ocr``: RapidOCR (PP-OCRv4 models in ONNX, shipped inside the rapidocr-onnxruntime wheel) as a reader.

An independent reader: nothing in it was trained on the testbed. Each glyph is prepared for a text
recogniser that expects printed lines: gray, contrast stretched (1st-99th percentile to 0-1 when that
range is at least 0.1), resized to ``size`` pixels (MATLAB bicubic) and centred on a white square
canvas of ``canvas`` pixels, as 8-bit RGB. ``mode=rec`` (default) runs the recogniser alone on that
canvas; ``mode=det`` runs detection first and reads the detected boxes (it often finds no box around
a single character). The text is mapped to a class by :func:`srjudge.readers.base.text_to_class`;
the confidence is the recogniser's score; no text, or text that is not exactly one class, reads as
no label (``note`` says why). OCR gives no class probabilities.

Spec: ``ocr`` or ``ocr:mode=det,size=64,canvas=112,threads=1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, SpecError
from srjudge.images.color import rgb_to_gray
from srjudge.images.resize import imresize
from srjudge.readers.base import Reader, Reading, check_glyphs, register_reader, text_to_class
from srjudge.spec import Choice, Spec, coerce_options

MODES = ("rec", "det")


@lru_cache(maxsize=2)
def _engine(threads: int) -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError(
            f"The ocr reader needs rapidocr-onnxruntime ({exc}): pip install 'srjudge[testbed]'."
        ) from None
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)


def ocr_canvas(image: np.ndarray, *, size: int = 64, canvas: int = 112) -> np.ndarray:
    """The 8-bit RGB canvas the OCR engine sees for one glyph (rule in the module docstring)."""
    gray = np.clip(rgb_to_gray(np.clip(image, 0.0, 1.0)), 0.0, 1.0)
    lo, hi = np.percentile(gray, [1.0, 99.0])
    if hi - lo >= 0.1:
        gray = np.clip((gray - lo) / (hi - lo), 0.0, 1.0)
    h, w = gray.shape
    scale = size / max(h, w)
    out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
    glyph = np.clip(imresize(gray, output_shape=(out_h, out_w)), 0.0, 1.0)
    board = np.ones((canvas, canvas), dtype=np.float64)
    top, left = (canvas - out_h) // 2, (canvas - out_w) // 2
    board[top : top + out_h, left : left + out_w] = glyph
    rgb8 = np.round(board * 255.0).astype(np.uint8)
    return np.repeat(rgb8[:, :, None], 3, axis=2)


class OCRReader(Reader):
    def __init__(self, *, mode: str = "rec", size: int = 64, canvas: int = 112, threads: int = 1) -> None:
        if mode not in MODES:
            raise SpecError(f"ocr mode must be one of {', '.join(MODES)}; got {mode!r}.")
        if not 16 <= size <= canvas:
            raise SpecError(f"ocr size must be in [16, canvas={canvas}]; got {size}.")
        if threads < 1:
            raise SpecError(f"ocr threads must be >= 1; got {threads}.")
        self.mode, self.size, self.canvas, self.threads = mode, size, canvas, threads
        self.config: Mapping[str, Any] = {"mode": mode, "size": size, "canvas": canvas, "engine": "rapidocr"}
        defaults = {"mode": "rec", "size": 64, "canvas": 112}
        changed = [f"{k}={v}" for k, v in self.config.items() if k in defaults and defaults[k] != v]
        self.spec = "ocr" + (":" + ",".join(changed) if changed else "")

    def _text(self, canvas: np.ndarray) -> tuple[str, float] | None:
        result, _ = _engine(self.threads)(canvas, use_cls=False)
        if not result:
            return None
        best = max(result, key=lambda r: float(r[2]))
        return str(best[1]), float(best[2])

    def texts(self, canvases: Sequence[np.ndarray]) -> list[tuple[str, float] | None]:
        """The engine's (text, score) per canvas; ``rec`` mode batches the recogniser (``text_rec``)."""
        if self.mode == "det":
            return [self._text(c) for c in canvases]
        results, _ = _engine(self.threads).text_rec(list(canvases), False)
        return [(str(text), float(score)) for text, score in results]

    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        check_glyphs(images)
        if not images:
            return []
        canvases = [ocr_canvas(image, size=self.size, canvas=self.canvas) for image in images]
        out = []
        for found in self.texts(canvases):
            if found is None or not found[0].strip():
                out.append(Reading(None, 0.0, None, note="OCR found no text", text=""))
                continue
            text, score = found
            label = text_to_class(text)
            if label is None:
                out.append(
                    Reading(
                        None, 0.0, None, note=f"OCR text {text!r} is not one of the 36 classes", text=text
                    )
                )
            else:
                out.append(Reading(label, float(np.clip(score, 0.0, 1.0)), None, text=text))
        return out


_OPTIONS = {"mode": (Choice(*MODES), "rec"), "size": (int, 64), "canvas": (int, 112), "threads": (int, 1)}


@register_reader(
    "ocr",
    "RapidOCR (PP-OCRv4, ONNX, models in the wheel): an independent, untrained reader.",
    options=_OPTIONS,
)
def _make_ocr(spec: Spec) -> Reader:
    if spec.arg is not None:
        raise SpecError(f"ocr takes key=value options only (mode, size, canvas, threads); got {spec.arg!r}.")
    return OCRReader(**coerce_options(spec, _OPTIONS, kind="reader"))
