"""Read the text or symbol an image shows with a vision-language model: the request, the parser, the vote.

The read-out (after the diffusion-SR selection paper) asks a model the versioned ``readout`` prompt
(:data:`READOUT_PROMPT`: the image, then "what text, digits or letters does this image show?", JSON
``{"text": ..., "confidence": ...}``). :func:`read_out` asks it about every image ``samples`` times;
an unparseable answer or a refusal is asked again with the prompt's format reminder, up to
``retries`` times. Per image the answer is the confidence-weighted majority of the parsed texts
(upper-cased, whitespace removed), with the mean confidence of the samples that gave it, or the
reason nothing was read. Calls go through a :class:`~srjudge.vlm.backends.CachedBackend`, so a
re-run asks the model nothing.

Readers use this directly (``srjudge.readers.vlm``), without a judge. The prompt's ``id@version``
enters every cache key; a user's own prompt file (the JSON fields of the judges' prompt templates)
is read with :func:`srjudge.vlm.prompts.load_prompt_file`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from srjudge.vlm.answers import ParseError, extract_json_object, number_field, string_field
from srjudge.vlm.backends.base import CachedBackend
from srjudge.vlm.images import DEFAULT_MAX_SIDE, fit_longest_side
from srjudge.vlm.prompts import PROMPTS, PromptTemplate
from srjudge.vlm.request import ChatRequest, Completion, GenerationParams, ImagePart, TextPart
from srjudge.vlm.settings import check_sampling

__all__ = [
    "READOUT_PROMPT",
    "ReadOut",
    "ReadoutSettings",
    "parse_readout",
    "read_out",
    "readout_request",
    "vote",
]

#: Most tokens of one read-out answer (a short JSON object).
MAX_TOKENS = 64


READOUT_PROMPT: PromptTemplate = PROMPTS.get("readout")
"""The built-in read-out prompt, ``readout@1`` (the readout judge protocol asks the same)."""


@dataclass(frozen=True)
class ReadoutSettings:
    """How a read-out asks: samples per image, temperature, re-asks, image size, seed (sample k: seed + k)."""

    samples: int = 1
    temperature: float = 0.0
    retries: int = 2
    max_side: int = DEFAULT_MAX_SIDE
    seed: int = 0

    def __post_init__(self) -> None:
        check_sampling(self.samples, self.retries, self.temperature)


@dataclass
class ReadOut:
    """What a model read in one image: the vote, every parsed sample, every completion paid for."""

    answer: tuple[str, float] | None = None
    readings: list[tuple[str, float]] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why nothing was read: the last parse error, else ``no answer``."""
        return self.errors[-1] if self.errors else "no answer"


def readout_request(
    image: ImagePart,
    *,
    prompt: PromptTemplate = READOUT_PROMPT,
    settings: ReadoutSettings = ReadoutSettings(),
    sample: int = 0,
    attempt: int = 0,
) -> ChatRequest:
    """The request for one sample of one image (``image``: already fitted to ``settings.max_side``).

    A re-ask (``attempt`` > 0) adds the prompt's format reminder and is cached apart.
    """
    params = GenerationParams(
        max_tokens=MAX_TOKENS,
        temperature=settings.temperature,
        seed=settings.seed,
        json_schema=prompt.schema,
        schema_name=prompt.id.replace("-", "_"),
    )
    return prompt.request([image, TextPart(prompt.render())], params, sample=sample, attempt=attempt)


def parse_readout(text: str) -> tuple[str, float]:
    """(text read, upper-cased, no whitespace; confidence in [0, 1]); :class:`ParseError` if unreadable."""
    obj = extract_json_object(text)
    read = "".join(string_field(obj, "text", required=False).upper().split())
    return read, number_field(obj, "confidence", 0, 1)


def vote(readings: Sequence[tuple[str, float]]) -> tuple[str, float] | None:
    """The confidence-weighted majority text and the mean confidence of its samples; None if none."""
    if not readings:
        return None
    votes: dict[str, float] = {}
    for text, conf in readings:
        votes[text] = votes.get(text, 0.0) + conf + 1e-6
    text = max(votes, key=lambda t: votes[t])
    return text, float(np.mean([c for t, c in readings if t == text]))


def read_out(
    client: CachedBackend,
    images: Sequence[np.ndarray],
    *,
    prompt: PromptTemplate = READOUT_PROMPT,
    settings: ReadoutSettings = ReadoutSettings(),
) -> list[ReadOut]:
    """Ask ``client`` what every image shows (see the module docstring); one :class:`ReadOut` per image.

    Each round sends every pending (image, sample) request in one batch, images in order.
    """
    parts = [ImagePart.of(fit_longest_side(image, settings.max_side)[0]) for image in images]
    outcomes = [ReadOut() for _ in images]
    pending = [(i, s) for i in range(len(images)) for s in range(settings.samples)]
    for attempt in range(settings.retries + 1):
        if not pending:
            break
        requests = [
            readout_request(parts[i], prompt=prompt, settings=settings, sample=s, attempt=attempt)
            for i, s in pending
        ]
        still = []
        for (i, s), completion in zip(pending, client.complete(requests), strict=True):
            outcomes[i].completions.append(completion)
            try:
                if completion.refusal:
                    raise ParseError(f"the model refused: {completion.refusal[:120]!r}")
                outcomes[i].readings.append(parse_readout(completion.text))
            except ParseError as exc:
                outcomes[i].errors.append(str(exc))
                still.append((i, s))
        pending = still
    for outcome in outcomes:
        outcome.answer = vote(outcome.readings)
    return outcomes
