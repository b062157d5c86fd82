"""Talking to vision-language models: requests, backends (OpenAI-compatible HTTP, local transformers), cache.

Judge logic (prompts, parsing, protocols) lives in :mod:`srjudge.judges.vlm`; this package moves
requests to models and completions back, with caching, retries and accounting. The one question it
asks itself is the read-out (:mod:`srjudge.vlm.readout`: what text or symbol an image shows), which
readers use without a judge; :mod:`srjudge.vlm.answers` reads JSON out of a model's answer.
"""

from srjudge.vlm.request import (
    ChatMessage,
    ChatRequest,
    Completion,
    GenerationParams,
    ImagePart,
    TextPart,
    TokenLogprobs,
    Usage,
)

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "GenerationParams",
    "ImagePart",
    "TextPart",
    "TokenLogprobs",
    "Usage",
]
