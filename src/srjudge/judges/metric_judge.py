"""Any registered metric used as a judge: the raw value mapped to 0-100 by the metric's ScoreMap."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from srjudge.judges.base import Judge, Verdict
from srjudge.metrics import Metric, create_metric
from srjudge.spec import Spec


class MetricJudge(Judge):
    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.spec = metric.spec
        self.config: dict[str, Any] = {"metric": metric.info.name, **metric.options}

    @classmethod
    def from_spec(cls, spec: Spec) -> MetricJudge:
        return cls(create_metric(spec))

    def score(
        self, image: np.ndarray, *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> Verdict:
        value = self.metric(image, hr=hr, lr=lr)
        info = self.metric.info
        if math.isnan(value):
            return self.abstention(
                f"{info.name} is undefined for this image (NaN)",
                raw_higher_is_better=info.higher_is_better,
            )
        direction = "higher" if info.higher_is_better else "lower"
        unit = f" {info.unit}" if info.unit else ""
        return self.verdict(
            self.metric.score(value),
            value,
            rationale=f"{info.name} = {value:.4g}{unit} ({direction} is better)",
            raw_higher_is_better=info.higher_is_better,
        )
