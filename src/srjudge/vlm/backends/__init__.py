"""VLM backends: ``openai`` (any OpenAI-compatible endpoint) and ``hf`` (local transformers model)."""

from srjudge.vlm.backends.base import (
    BACKENDS,
    BackendError,
    CachedBackend,
    RunStats,
    VLMBackend,
    create_backend,
)

__all__ = ["BACKENDS", "BackendError", "CachedBackend", "RunStats", "VLMBackend", "create_backend"]
