"""LPIPS, the learned perceptual image patch similarity of Zhang et al. (CVPR 2018), written for srjudge.

d(x, y) = sum over layers l of mean over pixels of  w_l · (f̂_l(x) - f̂_l(y))²,  where f̂_l are the
channel-normalised ReLU activations of an ImageNet backbone fed ImageNet-standardised input (the
paper's scaling layer on [-1, 1] input is the same affine map) and w_l are non-negative 1x1 linear
heads. The heads come from the LPIPS v0.1 files (``alex.pth``, ``vgg.pth``) whose keys are
``lin<l>.model.1.weight`` with shape ``(1, C_l, 1, 1)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch
from torch import nn

from srjudge.errors import SpecError, SrjudgeError
from srjudge.models import bundled
from srjudge.models.backbones import (
    ALEXNET_TAP_CHANNELS,
    ALEXNET_TAPS,
    VGG16_TAP_CHANNELS,
    VGG16_TAPS,
    AlexNetFeatures,
    FeatureExtractor,
    VGG16Features,
    backbone_part,
)
from srjudge.models.checkpoints import check_state_dict, load_state_dict_file
from srjudge.models.files import LPIPS_HEADS_URL, LPIPS_HEADS_WHEEL, TORCHVISION_FILES
from srjudge.models.tensors import check_min_size, image_to_tensor, imagenet_normalize, resolve_device

LpipsNet = Literal["alex", "vgg"]
NETS: tuple[LpipsNet, ...] = ("alex", "vgg")

#: Smallest image side each backbone can reach its last tapped layer with.
MIN_SIDE = {"alex": 31, "vgg": 16}

_EPS = 1e-10


def head_key(layer: int) -> str:
    """Key of layer ``layer``'s linear head in an LPIPS v0.1 weight file."""
    return f"lin{layer}.model.1.weight"


def _unit_channels(x: torch.Tensor) -> torch.Tensor:
    norm = torch.sqrt(torch.sum(x * x, dim=1, keepdim=True))
    return x / (norm + _EPS)


class LPIPS(nn.Module):
    """LPIPS distance with an AlexNet or VGG16 backbone; inputs are N x 3 x H x W in [0, 1]."""

    backbone: FeatureExtractor

    def __init__(self, net: LpipsNet = "alex") -> None:
        super().__init__()
        if net not in NETS:
            raise SpecError(f"Unknown LPIPS net {net!r}: use one of {', '.join(NETS)}.")
        self.net: LpipsNet = net
        if net == "alex":
            self.backbone, self.taps, channels = AlexNetFeatures(), ALEXNET_TAPS, ALEXNET_TAP_CHANNELS
        else:
            self.backbone, self.taps, channels = VGG16Features(), VGG16_TAPS, VGG16_TAP_CHANNELS
        self.channels: tuple[int, ...] = channels
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in channels)
        self.requires_grad_(False)
        self.eval()

    @property
    def min_side(self) -> int:
        return MIN_SIDE[self.net]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised activations at the five tapped layers."""
        return [_unit_channels(f) for f in self.backbone.forward_taps(imagenet_normalize(x), self.taps)]

    def distance_from_features(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS from :meth:`features` outputs; returns a length-N tensor."""
        total: torch.Tensor | None = None
        for head, a, b in zip(self.heads, fx, fy, strict=True):
            layer = head((a - b) ** 2).mean(dim=(1, 2, 3))
            total = layer if total is None else total + layer
        if total is None:
            raise SrjudgeError("LPIPS was given no feature maps: features() returns one per tapped layer.")
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance_from_features(self.features(x), self.features(y))

    def compare(
        self, a: np.ndarray, b: np.ndarray, *, names: tuple[str, str] = ("first image", "second image")
    ) -> float:
        """LPIPS between two H x W x 3 images in [0, 1] (same size), as a float."""
        for image, name in zip((a, b), names, strict=True):
            check_min_size(image, self.min_side, metric=f"LPIPS (net={self.net})", name=name)
        device = next(self.parameters()).device
        with torch.inference_mode():
            fa = self.features(image_to_tensor(a, device, name=names[0]))
            fb = self.features(image_to_tensor(b, device, name=names[1]))
            if [f.shape for f in fa] != [f.shape for f in fb]:
                raise SrjudgeError("LPIPS compares images of the same size.")
            return float(self.distance_from_features(fa, fb)[0].item())

    def expected_head_keys(self) -> dict[str, tuple[int, ...]]:
        """Keys and shapes an LPIPS v0.1 head file for this net holds."""
        return {head_key(i): (1, c, 1, 1) for i, c in enumerate(self.channels)}

    def load_heads(self, path: str | os.PathLike[str], *, hint: str = "") -> None:
        """Load the linear heads from an LPIPS v0.1 file (``lin<l>.model.1.weight``)."""
        state = load_state_dict_file(path, what=f"LPIPS {self.net} heads", hint=hint)
        self.set_heads(state, source=path, hint=hint)

    def set_heads(
        self, state: Mapping[str, torch.Tensor], *, source: str | os.PathLike[str], hint: str = ""
    ) -> None:
        """Copy LPIPS v0.1 heads (``lin<l>.model.1.weight``) from a state dict; ``source`` names it."""
        what = f"LPIPS {self.net} heads"
        other: LpipsNet = "vgg" if self.net == "alex" else "alex"
        other_channels = VGG16_TAP_CHANNELS if other == "vgg" else ALEXNET_TAP_CHANNELS
        mismatch = all(
            k in state and tuple(state[k].shape) == (1, c, 1, 1)
            for k, c in ((head_key(i), c) for i, c in enumerate(other_channels))
        )
        extra = f"These look like the heads for net={other}; pass net={other} or the {self.net}.pth file."
        heads = check_state_dict(
            state,
            self.expected_head_keys(),
            path=source,
            what=what,
            hint=(extra + " " + hint).strip() if mismatch else hint,
        )
        with torch.no_grad():
            for i, head in enumerate(self.heads):
                weight = head.get_parameter("weight")  # each head is a bias-free 1x1 Conv2d
                weight.copy_(heads[head_key(i)].to(weight))


def load_lpips(
    net: LpipsNet,
    backbone: str | os.PathLike[str] | None = None,
    heads: str | os.PathLike[str] | None = None,
    *,
    device: str = "cpu",
) -> LPIPS:
    """Build LPIPS for ``net`` from a torchvision backbone checkpoint and an LPIPS v0.1 heads file.

    A part given as ``None`` comes from the bundled weights (:func:`srjudge.models.bundled.load_parts`).
    """
    if net not in NETS:
        raise SpecError(f"Unknown LPIPS net {net!r}: use one of {', '.join(NETS)}.")
    target = resolve_device(device)
    model = LPIPS(net)
    file, url = TORCHVISION_FILES[net]
    backbone_hint = f"LPIPS net={net} needs torchvision's ImageNet weights {file} ({url})."
    heads_hint = (
        f"LPIPS net={net} needs the v0.1 heads {net}.pth ({LPIPS_HEADS_URL.format(net=net)}; "
        f"or {LPIPS_HEADS_WHEEL.format(net=net)})."
    )
    bundled.load_parts(
        backbone_part(model.backbone, backbone, net, what=f"LPIPS {net} backbone", hint=backbone_hint),
        bundled.WeightPart(
            heads, bundled.lpips_heads_file(net), model.load_heads, model.set_heads, heads_hint
        ),
    )
    return model.to(target).eval()
