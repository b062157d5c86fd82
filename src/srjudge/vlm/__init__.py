"""Talking to vision-language models: requests, backends (OpenAI-compatible HTTP, local transformers), cache.

Judge logic (prompts, parsing, protocols) lives in :mod:`srjudge.judges.vlm`; this package only
moves requests to models and completions back, with caching, retries and accounting.
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
