"""Metrics: pure functions with typed metadata, in one registry (``create_metric("niqe")``)."""

from __future__ import annotations

from srjudge.metrics.base import (
    METRICS,
    Metric,
    MetricEntry,
    MetricInfo,
    ScoreMap,
    create_metric,
    list_metrics,
    register_metric,
    register_metric_factory,
)

__all__ = [
    "METRICS",
    "Metric",
    "MetricEntry",
    "MetricInfo",
    "ScoreMap",
    "create_metric",
    "list_metrics",
    "register_metric",
    "register_metric_factory",
]
