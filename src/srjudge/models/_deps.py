"""Torch-free helpers that import the optional deep-learning extras on demand."""

from __future__ import annotations

import importlib
from types import ModuleType

from srjudge.errors import MissingDependencyError

TORCH_PIN = "torch==2.13.0"


def import_extra(feature: str, modules: tuple[str, ...], needs: str, install: str) -> ModuleType:
    """Import ``modules`` in order and return the last one; when one is missing, raise
    :class:`MissingDependencyError` saying that ``feature`` needs ``needs`` and how to ``install`` them."""
    try:
        imported = [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        which = "which are" if len(modules) > 1 else "which is"
        raise MissingDependencyError(
            f"{feature} needs {needs}, {which} not installed ({exc}). Install the extra: {install}."
        ) from None
    return imported[-1]


def require_torch(feature: str) -> ModuleType:
    """Import and return ``torch``, or raise :class:`MissingDependencyError` saying how to install it."""
    return import_extra(
        feature,
        ("torch",),
        "PyTorch",
        f"pip install 'srjudge[torch]' (it pins {TORCH_PIN}; "
        "a looser torch requirement can pull a multi-GB CUDA build)",
    )


def require_transformers(feature: str) -> ModuleType:
    """Import and return ``transformers`` (and torch), or raise :class:`MissingDependencyError`."""
    return import_extra(
        feature,
        ("torch", "transformers"),
        "PyTorch and transformers",
        f"pip install 'srjudge[clip]' (it pins {TORCH_PIN})",
    )
