"""AlexNet and VGG16 convolutional feature extractors (written for srjudge).

The layer order follows the published architectures (Krizhevsky et al. 2012 as in the "one weird
trick" single-tower variant; Simonyan & Zisserman 2015, configuration D), laid out in one
``features`` sequence so that ``state_dict`` keys are ``features.<index>.weight`` / ``.bias``, the
layout of torchvision's ImageNet checkpoints (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``).
Only the convolutional part is built; a checkpoint's ``classifier.*`` entries are ignored.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from srjudge.models.bundled import Net, WeightPart, backbone_file
from srjudge.models.checkpoints import check_state_dict, load_state_dict_file
from srjudge.models.files import ALEXNET_FILE, ALEXNET_URL, VGG16_FILE, VGG16_URL

__all__ = [
    "ALEXNET_FILE",
    "ALEXNET_TAPS",
    "ALEXNET_TAP_CHANNELS",
    "ALEXNET_URL",
    "VGG16_FILE",
    "VGG16_TAPS",
    "VGG16_TAP_CHANNELS",
    "VGG16_URL",
    "AlexNetFeatures",
    "FeatureExtractor",
    "L2Pool2d",
    "VGG16Features",
    "backbone_part",
    "load_backbone_weights",
    "set_backbone_state",
]

# Indices (into ``features``) of the ReLU outputs that perceptual metrics read.
ALEXNET_TAPS = (1, 4, 7, 9, 11)  # relu1 .. relu5
ALEXNET_TAP_CHANNELS = (64, 192, 384, 256, 256)
VGG16_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
VGG16_TAP_CHANNELS = (64, 128, 256, 512, 512)

# (out_channels, kernel, stride, padding) per conv; "M" is a 3x3/2 max-pool (AlexNet) or 2x2/2 (VGG).
_ALEXNET_LAYOUT: tuple[tuple[int, int, int, int] | str, ...] = (
    (64, 11, 4, 2),
    "M",
    (192, 5, 1, 2),
    "M",
    (384, 3, 1, 1),
    (256, 3, 1, 1),
    (256, 3, 1, 1),
    "M",
)
_VGG16_LAYOUT: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class L2Pool2d(nn.Module):
    """L2 pooling (Hénaff & Simoncelli 2016, used by DISTS): sqrt of a 3x3 Hann-weighted mean of x², stride 2.

    The window is the outer product of ``[0.5, 1, 0.5]`` normalised to sum 1; it is a non-persistent
    buffer, so replacing a max-pool by this layer leaves the ``state_dict`` keys unchanged.
    """

    kernel: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([0.5, 1.0, 0.5])
        window = torch.outer(taps, taps)
        window = window / window.sum()
        self.channels = channels
        self.register_buffer("kernel", window.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.conv2d(x * x, self.kernel, stride=2, padding=1, groups=self.channels)
        return torch.sqrt(pooled + 1e-12)


class FeatureExtractor(nn.Module):
    """A ``features`` sequence whose intermediate activations can be read at chosen indices."""

    features: nn.Sequential

    def forward_taps(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """Run ``features`` up to ``max(taps)`` and return the outputs of the layers at ``taps``."""
        wanted = set(taps)
        last = max(taps)
        out: list[torch.Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                out.append(x)
            if index == last:
                break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.features(x)
        return out

    def expected_keys(self) -> dict[str, tuple[int, ...]]:
        """Parameter names and shapes a checkpoint must provide."""
        return {k: tuple(v.shape) for k, v in self.state_dict().items()}


class AlexNetFeatures(FeatureExtractor):
    """AlexNet's five convolutions with ReLUs and max-pools (torchvision key layout)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _ALEXNET_LAYOUT:
            if isinstance(item, str):  # "M"
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            else:
                out, kernel, stride, padding = item
                layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=padding), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*layers)


class VGG16Features(FeatureExtractor):
    """VGG16's thirteen 3x3 convolutions with ReLUs and pools (torchvision key layout, no batch norm).

    ``pool="l2"`` swaps every max-pool for :class:`L2Pool2d`, as DISTS does.
    """

    def __init__(self, pool: Literal["max", "l2"] = "max") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG16_LAYOUT:
            if isinstance(item, str):  # "M"
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2) if pool == "max" else L2Pool2d(channels))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)


def _guess_backbone(state: Mapping[str, torch.Tensor]) -> str:
    """Which torchvision family a checkpoint's first convolution looks like ("" if unknown)."""
    first = state.get("features.0.weight")
    if first is None:
        return ""
    shape = tuple(first.shape)
    if shape == (64, 3, 11, 11):
        return "AlexNet"
    if shape == (64, 3, 3, 3):
        return "VGG-with-batch-norm" if "features.1.running_mean" in state else "VGG"
    return ""


def load_backbone_weights(
    model: FeatureExtractor, path: str | os.PathLike[str], *, what: str, hint: str = ""
) -> FeatureExtractor:
    """Load a torchvision-layout checkpoint into ``model`` (``classifier.*`` ignored); bad keys raise.

    Raises :class:`~srjudge.errors.MissingWeightsError` naming the file and the offending keys.
    """
    state = load_state_dict_file(path, what=what, hint=hint)
    return set_backbone_state(model, state, source=path, what=what, hint=hint)


def set_backbone_state(
    model: FeatureExtractor,
    state: Mapping[str, torch.Tensor],
    *,
    source: str | os.PathLike[str],
    what: str,
    hint: str = "",
) -> FeatureExtractor:
    """Copy a torchvision-layout state dict into ``model``; ``source`` names where it came from in errors."""
    family = _guess_backbone(state)
    wanted = "AlexNet" if isinstance(model, AlexNetFeatures) else "VGG"
    article = "an" if family.startswith("A") else "a"
    guess = f"It looks like {article} {family} checkpoint." if family and family != wanted else ""
    weights = check_state_dict(
        state,
        model.expected_keys(),
        path=source,
        what=what,
        ignore_prefixes=("classifier.",),
        hint=(guess + " " + hint).strip(),
    )
    model.load_state_dict(weights, strict=True)
    return model


def backbone_part(
    model: FeatureExtractor, path: str | os.PathLike[str] | None, net: Net, *, what: str, hint: str
) -> WeightPart:
    """``model``'s weights for :func:`~srjudge.models.bundled.load_parts`: the torchvision checkpoint
    ``path``, or when it is None the bundled ImageNet ``net`` features."""
    return WeightPart(
        path,
        backbone_file(net),
        load=functools.partial(load_backbone_weights, model, what=what),
        copy=functools.partial(set_backbone_state, model, what=what),
        hint=hint,
    )
