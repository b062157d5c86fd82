"""``vlm``: a vision-language model reads the glyph with srjudge's VLM read-out protocol.

The reader builds a :class:`srjudge.judges.vlm.VLMJudge` with ``protocol=readout`` and asks it the
versioned ``readout`` prompt (JSON ``{"text": ..., "confidence": ...}``), with the judge's retries,
sampling and completion cache. With ``samples=k`` the answer is the confidence-weighted majority of
the k parsed texts (:meth:`VLMJudge.read_texts`); its confidence is the mean confidence
of the samples that gave it. The text is mapped to a class by
:func:`srjudge.readers.base.text_to_class`; an unparseable answer after the retries, a refusal, an
empty text, or text that is not exactly one class reads as no label (``note`` says why).

Specs: ``vlm:hf,model=/models/Qwen2.5-VL-3B-Instruct`` or ``vlm:openai,model=gpt-4o`` (the backend
may also be given as ``backend=hf``); every ``vlm`` judge option except ``protocol`` is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from srjudge.errors import SpecError
from srjudge.readers.base import Reader, Reading, check_glyphs, register_reader, text_to_class
from srjudge.spec import Spec


class VLMReader(Reader):
    """Reads glyphs with a VLM judge's read-out protocol (see the module docstring)."""

    def __init__(self, judge: Any) -> None:
        if judge.cfg.protocol != "readout":
            raise SpecError(f"The vlm reader needs protocol=readout; got {judge.cfg.protocol!r}.")
        self.judge = judge
        self.config: Mapping[str, Any] = dict(judge.config)
        self.spec = "reader-" + judge.spec

    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        check_glyphs(images)
        if not images:
            return []
        out = []
        for answer in self.judge.read_texts(images):
            if isinstance(answer, str):
                out.append(Reading(None, 0.0, None, note=f"VLM answer could not be read: {answer}"))
                continue
            text, conf = answer
            label = text_to_class(text)
            if label is None:
                note = "VLM read no text" if not text else f"VLM text {text!r} is not one of the 36 classes"
                out.append(Reading(None, 0.0, None, note=note, text=text))
            else:
                out.append(Reading(label, conf, None, text=text))
        return out


def vlm_reader_from_spec(spec: Spec) -> VLMReader:
    """Build the reader: ``vlm:<backend>,model=...`` (``backend=`` as an option works too)."""
    from srjudge.judges.vlm import VLMJudge, config_from_spec

    options = dict(spec.options)
    backend = options.pop("backend", None)
    if spec.arg is not None and backend is not None and spec.arg.lower() != backend.lower():
        raise SpecError(f"The vlm reader got two backends: {spec.arg!r} and backend={backend!r}.")
    kind = spec.arg or backend
    if kind is None:
        raise SpecError("The vlm reader names its backend: vlm:hf,model=/path or vlm:openai,model=NAME.")
    if "protocol" in options and options["protocol"] != "readout":
        raise SpecError(f"The vlm reader always uses protocol=readout; got protocol={options['protocol']}.")
    options["protocol"] = "readout"
    return VLMReader(VLMJudge(config_from_spec(Spec("vlm", kind, options))))


@register_reader(
    "vlm", "A vision-language model with the read-out protocol (vlm:hf,model=/path or vlm:openai,...)."
)
def _make_vlm(spec: Spec) -> Reader:
    return vlm_reader_from_spec(spec)
