"""Metric metadata, the metric registry and the callable :class:`Metric` built from a spec."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from srjudge.errors import SrjudgeError
from srjudge.images.checks import (
    as_image,
    as_optional_image,
    check_lr_scale,
    check_same_size,
    checked_inputs,
    inputs_checked,
)
from srjudge.registry import Entry, OptionSchema, Registry
from srjudge.spec import Spec, coerce_options, parse_spec

Image = np.ndarray
"""Canonical image: float32 RGB in [0, 1], shape H x W x 3."""

MetricFn = Callable[[Image, Image | None, Image | None], float]
"""A bound metric: (sr, hr, lr) -> raw value."""


@dataclass(frozen=True)
class ScoreMap:
    """Monotone map from a metric's raw value to a 0-100 score (higher is better).

    ``linear``: ``lo`` maps to 0 and ``hi`` to 100 (clipped), for bounded metrics.
    ``logistic``: 50 at ``mid``, slope set by ``scale``; strictly monotone, so ranking by score
    equals ranking by raw value. Direction is applied by the metric's ``higher_is_better``.
    """

    kind: Literal["linear", "logistic"]
    a: float
    b: float

    def __call__(self, value: float, higher_is_better: bool) -> float:
        if math.isnan(value):
            raise ValueError("a NaN metric value has no score")
        if math.isinf(value):
            t = 1.0 if value > 0 else 0.0
        elif self.kind == "linear":
            t = (value - self.a) / (self.b - self.a)
            t = min(1.0, max(0.0, t))
        else:
            t = 1.0 / (1.0 + math.exp(-(value - self.a) / self.b))
        if not higher_is_better:
            t = 1.0 - t
        return 100.0 * t


@dataclass(frozen=True)
class MetricInfo:
    """Typed metadata, as torchmetrics and pyiqa users expect (``higher_is_better``, ``lower_better``)."""

    name: str
    description: str
    higher_is_better: bool
    score_map: ScoreMap
    needs_hr: bool = False
    needs_lr: bool = False
    value_range: tuple[float, float] | None = None
    unit: str = ""
    needs_weights: bool = False
    reference: str = ""

    @property
    def lower_better(self) -> bool:
        return not self.higher_is_better

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata: every field in declaration order but the score map (range as a list)."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "score_map"}
        record["value_range"] = list(self.value_range) if self.value_range else None
        return record


@dataclass(frozen=True, kw_only=True)
class MetricEntry(Entry):
    """A registered metric: its factory ``f(**options) -> (sr, hr, lr) -> float`` and its metadata."""

    info: MetricInfo


METRICS: Registry[MetricEntry] = Registry("metric", packages=("srjudge.metrics",), entry_type=MetricEntry)


def register_metric(
    info: MetricInfo, *, options: OptionSchema | None = None, aliases: tuple[str, ...] = ()
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register a pure function ``fn(sr, *, hr, lr, **options) -> float``."""

    def decorate(fn: Callable[..., float]) -> Callable[..., float]:
        def factory(**opts: Any) -> MetricFn:
            def bound(sr: Image, hr: Image | None, lr: Image | None) -> float:
                return float(fn(sr, hr=hr, lr=lr, **opts))

            return bound

        factory.__module__, factory.__qualname__ = fn.__module__, fn.__qualname__
        register_metric_factory(info, options=options, aliases=aliases)(factory)
        return fn

    return decorate


def register_metric_factory(
    info: MetricInfo, *, options: OptionSchema | None = None, aliases: tuple[str, ...] = ()
) -> Callable[[Callable[..., MetricFn]], Callable[..., MetricFn]]:
    """Register a factory ``f(**options) -> (sr, hr, lr) -> float`` for metrics that load models once."""

    return METRICS.register(info.name, info.description, options=options, aliases=aliases, info=info)


def require_hr(hr: Image | None, metric: str) -> Image:
    """``hr``, or the error that says the metric compares with a high-resolution reference."""
    if hr is None:
        raise SrjudgeError(f"Metric {metric!r} compares with a high-resolution reference: give one (--hr).")
    return hr


def require_lr(lr: Image | None, metric: str) -> Image:
    """``lr``, or the error that says the metric compares with the LR input."""
    if lr is None:
        raise SrjudgeError(f"Metric {metric!r} compares with the LR input: give one (--lr).")
    return lr


@dataclass(frozen=True)
class Metric:
    """A metric bound to its options; call it with arrays."""

    info: MetricInfo
    options: Mapping[str, Any]
    spec: str
    _fn: MetricFn = field(repr=False, compare=False)

    def __call__(self, sr: Image, *, hr: Image | None = None, lr: Image | None = None) -> float:
        """The raw value for ``sr`` (with ``hr`` and ``lr`` where the metric needs them).

        Arrays are checked and converted by :func:`srjudge.images.checks.as_image`: H x W x 3, float in
        [0, 1] or uint8 / uint16 (scaled by 1/255 / 1/65535); a 0-255 float array is an error.
        """
        if inputs_checked():  # called by a judge that has checked them already
            return self._call(sr, hr, lr)
        sr = as_image(sr, "SR image")
        hr = as_optional_image(hr, "HR reference")
        lr = as_optional_image(lr, "LR input")
        with checked_inputs():
            return self._call(sr, hr, lr)

    def _call(self, sr: Image, hr: Image | None, lr: Image | None) -> float:
        if self.info.needs_hr:
            check_same_size(sr, require_hr(hr, self.info.name), "SR image", "HR reference")
        if self.info.needs_lr:
            check_lr_scale(sr, require_lr(lr, self.info.name), "SR image", "LR input")
        return self._fn(sr, hr, lr)

    def score(self, value: float) -> float:
        """Raw value to the 0-100 scale (higher is better)."""
        return self.info.score_map(value, self.info.higher_is_better)


def create_metric(spec: str | Spec) -> Metric:
    """Build a metric from a spec string, e.g. ``create_metric("psnr:channel=y,crop_border=4")``."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    entry = METRICS.get(parsed.name)
    if parsed.arg is not None:
        raise SrjudgeError(
            f"Metric spec {str(parsed)!r} has a bare argument {parsed.arg!r}: "
            "metrics take key=value options only."
        )
    given = coerce_options(parsed, entry.option_types(), kind="metric")
    options = {k: given.get(k, default) for k, (_, default) in entry.options.items()}
    fn = entry.factory(**options)
    canonical = Spec(entry.info.name, None, {k: str(v) for k, v in given.items()})
    return Metric(info=entry.info, options=options, spec=str(canonical), _fn=fn)


def list_metrics() -> list[MetricInfo]:
    return [entry.info for entry in METRICS.entries()]
