"""srjudge: judge super-resolution outputs so that people can trust what they keep.

One-call entry points (imported lazily so that ``import srjudge`` stays light)::

    import srjudge
    judge = srjudge.create_judge("trust")
    metric = srjudge.create_metric("psnr:channel=y,crop_border=4")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "create_judge": "srjudge.judges",
    "list_judges": "srjudge.judges",
    "create_metric": "srjudge.metrics",
    "list_metrics": "srjudge.metrics",
    "SrjudgeError": "srjudge.errors",
}

__all__ = ["SrjudgeError", "__version__", "create_judge", "create_metric", "list_judges", "list_metrics"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'srjudge' has no attribute {name!r}")
