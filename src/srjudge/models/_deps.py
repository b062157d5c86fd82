"""Torch-free helpers that import the optional deep-learning extras on demand."""

from __future__ import annotations

import importlib
from types import ModuleType

from srjudge.errors import MissingDependencyError

TORCH_PIN = "torch==2.13.0"


def require_torch(feature: str) -> ModuleType:
    """Import and return ``torch``, or raise :class:`MissingDependencyError` saying how to install it."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs PyTorch, which is not installed ({exc}). "
            f"Install the extra: pip install 'srjudge[torch]' (it pins {TORCH_PIN}; "
            "a looser torch requirement can pull a multi-GB CUDA build)."
        ) from None


def require_transformers(feature: str) -> ModuleType:
    """Import and return ``transformers`` (and torch), or raise :class:`MissingDependencyError`."""
    try:
        importlib.import_module("torch")
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs PyTorch and transformers, which are not installed ({exc}). "
            f"Install the extra: pip install 'srjudge[clip]' (it pins {TORCH_PIN})."
        ) from None
