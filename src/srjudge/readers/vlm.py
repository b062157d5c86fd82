"""``vlm``: a vision-language model reads the glyph with srjudge's VLM read-out.

The reader asks the versioned ``readout`` prompt (JSON ``{"text": ..., "confidence": ...}``) through
:func:`srjudge.vlm.readout.read_out`, with retries, sampling and the completion cache. With
``samples=k`` the answer is the confidence-weighted majority of the k parsed texts; its confidence is
the mean confidence of the samples that gave it. The text is mapped to a class by
:func:`srjudge.readers.base.text_to_class`; an unparseable answer after the retries, a refusal, an
empty text, or text that is not exactly one class reads as no label (``note`` says why).

Specs: ``vlm:hf,model=/models/Qwen2.5-VL-3B-Instruct`` or ``vlm:openai,model=gpt-4o`` (the backend
may also be given as ``backend=hf``), with the backend's options and those of :data:`OPTIONS`.
The ``vlm`` judge's other options (``protocol=readout`` only, ``rank``, ``budget``,
``fidelity_weight``) are accepted and recorded too, so that a reader is written like that judge;
they change nothing in a reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from srjudge.errors import SpecError
from srjudge.readers.base import Reader, Reading, check_glyphs, register_reader, text_to_class
from srjudge.spec import Spec
from srjudge.vlm.backends import CachedBackend, RunStats, create_backend
from srjudge.vlm.cache import CompletionCache
from srjudge.vlm.prompts import PromptTemplate, load_prompt_file
from srjudge.vlm.readout import READOUT_PROMPT, ReadoutSettings, read_out
from srjudge.vlm.settings import SETTINGS_OPTIONS, settings_from_spec

#: The reader's options (the backend's come from its registry entry), with their defaults; the vlm
#: judge's ``protocol`` (readout only), ``rank``, ``budget`` and ``fidelity_weight`` are accepted and
#: recorded as that judge records them, and change nothing in a reading.
OPTIONS: dict[str, tuple[Any, Any]] = {"protocol": (str, "readout"), **SETTINGS_OPTIONS}


class VLMReader(Reader):
    """Reads glyphs with :func:`srjudge.vlm.readout.read_out` (see the module docstring).

    ``config`` is what enters the readout judge's provenance (backend and its options, the read-out
    settings, the model's identity, the prompt's ``id@version``); it never holds a secret.
    """

    def __init__(
        self,
        client: CachedBackend,
        config: Mapping[str, Any],
        *,
        prompt: PromptTemplate = READOUT_PROMPT,
        settings: ReadoutSettings | None = None,
    ) -> None:
        self.client = client
        self.prompt = prompt
        self.settings = settings or ReadoutSettings()
        identity = client.backend.identity()
        self.config: Mapping[str, Any] = {**config, "identity": identity, "templates": [prompt.ref]}
        self.spec = f"reader-vlm:{config['backend']},model={identity['model']},protocol=readout"

    def read(self, images: Sequence[np.ndarray]) -> list[Reading]:
        check_glyphs(images)
        if not images:
            return []
        out = []
        for outcome in read_out(self.client, images, prompt=self.prompt, settings=self.settings):
            if outcome.answer is None:
                out.append(Reading(None, 0.0, None, note=f"VLM answer could not be read: {outcome.reason}"))
                continue
            text, conf = outcome.answer
            label = text_to_class(text)
            if label is None:
                note = "VLM read no text" if not text else f"VLM text {text!r} is not one of the 36 classes"
                out.append(Reading(None, 0.0, None, note=note, text=text))
            else:
                out.append(Reading(label, conf, None, text=text))
        return out


def vlm_reader_from_spec(spec: Spec) -> VLMReader:
    """Build the reader: ``vlm:<backend>,model=...`` (``backend=`` as an option works too)."""
    options = dict(spec.options)
    backend = options.pop("backend", None)
    if spec.arg is not None and backend is not None and spec.arg.lower() != backend.lower():
        raise SpecError(f"The vlm reader got two backends: {spec.arg!r} and backend={backend!r}.")
    kind = spec.arg or backend
    if kind is None:
        raise SpecError("The vlm reader names its backend: vlm:hf,model=/path or vlm:openai,model=NAME.")
    if "protocol" in options and options["protocol"] != "readout":
        raise SpecError(f"The vlm reader always uses protocol=readout; got protocol={options['protocol']}.")
    vlm = settings_from_spec(
        kind, options, protocol="readout", what="The vlm reader names its backend", role="reader"
    )
    settings = ReadoutSettings(
        samples=vlm.samples,
        temperature=vlm.temperature,
        retries=vlm.retries,
        max_side=vlm.max_side,
        seed=vlm.seed,
    )
    prompt = load_prompt_file(vlm.prompt) if vlm.prompt else READOUT_PROMPT
    cache_off = (vlm.cache or "").lower() in ("off", "none", "false")
    client = CachedBackend(
        create_backend(vlm.backend, vlm.backend_options),
        None if cache_off else CompletionCache(vlm.cache),
        RunStats(price_in_per_mtok=vlm.price_in, price_out_per_mtok=vlm.price_out),
    )
    config = vlm.public()
    return VLMReader(client, config, prompt=prompt, settings=settings)


@register_reader(
    "vlm",
    "A vision-language model with the read-out protocol (vlm:hf,model=/path or vlm:openai,...); "
    "the backend's options are listed under VLM backends.",
    options=OPTIONS,
)
def _make_vlm(spec: Spec) -> Reader:
    return vlm_reader_from_spec(spec)
