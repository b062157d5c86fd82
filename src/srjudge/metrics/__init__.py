"""Metrics: pure functions with typed metadata, in one registry (``create_metric("niqe")``)."""

from __future__ import annotations

import importlib

from srjudge.metrics.base import (
    METRICS,
    Metric,
    MetricInfo,
    ScoreMap,
    create_metric,
    list_metrics,
    register_metric,
    register_metric_factory,
)

# Modules that register built-in metrics on import. Optional-dependency metrics (lpips, dists)
# register metadata only and import torch lazily when built.
_BUILTIN = ("fullref", "lrref", "niqe", "brisque", "noref", "deep")
for _module in _BUILTIN:
    importlib.import_module(f"srjudge.metrics.{_module}")

__all__ = [
    "METRICS",
    "Metric",
    "MetricInfo",
    "ScoreMap",
    "create_metric",
    "list_metrics",
    "register_metric",
    "register_metric_factory",
]
