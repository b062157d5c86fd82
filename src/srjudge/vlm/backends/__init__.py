"""VLM backends: ``openai`` (any OpenAI-compatible endpoint) and ``hf`` (local transformers model)."""

from srjudge.vlm.backends.base import (
    BACKENDS,
    BackendEntry,
    BackendError,
    CachedBackend,
    RunStats,
    VLMBackend,
    create_backend,
    register_backend,
)

__all__ = [
    "BACKENDS",
    "BackendEntry",
    "BackendError",
    "CachedBackend",
    "RunStats",
    "VLMBackend",
    "create_backend",
    "register_backend",
]
