"""DISTS, deep image structure and texture similarity (Ding et al., TPAMI 2020), written for srjudge.

The backbone is VGG16 with every max-pool replaced by L2 pooling. For the input image (stage 0) and
the relu1_2 .. relu5_3 activations (stages 1-5; 3 + 64 + 128 + 256 + 512 + 512 = 1475 channels),
each channel j of stage i gives a texture term l = (2 μx μy + c1) / (μx² + μy² + c1) and a structure
term s = (2 σxy + c2) / (σx² + σy² + c2) from global spatial statistics, and

    D(x, y) = 1 - Σ_ij (α_ij l_ij + β_ij s_ij),   with α, β ≥ 0 scaled so that Σ α + Σ β = 1.

α and β come from the DISTS weights file (``weights.pt``: ``alpha`` and ``beta``, 1475 values each,
stored as ``(1, 1475, 1, 1)``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from srjudge.errors import MissingWeightsError, SrjudgeError
from srjudge.models import bundled
from srjudge.models.backbones import (
    VGG16_TAP_CHANNELS,
    VGG16_TAPS,
    VGG16Features,
    backbone_part,
)
from srjudge.models.checkpoints import check_state_dict, load_state_dict_file
from srjudge.models.files import (
    DISTS_WEIGHTS_FILE,
    DISTS_WEIGHTS_URL,
    DISTS_WEIGHTS_WHEEL,
    VGG16_FILE,
    VGG16_URL,
)
from srjudge.models.tensors import image_to_tensor, imagenet_normalize, resolve_device

STAGE_CHANNELS = (3, *VGG16_TAP_CHANNELS)
N_WEIGHTS = sum(STAGE_CHANNELS)  # 1475

_C1 = 1e-6
_C2 = 1e-6


class DISTS(nn.Module):
    """DISTS distance on N x 3 x H x W inputs in [0, 1]; lower is more similar, 0 for identical images."""

    alpha: torch.Tensor
    beta: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.backbone = VGG16Features(pool="l2")
        self.register_buffer("alpha", torch.full((1, N_WEIGHTS, 1, 1), 1.0 / (2 * N_WEIGHTS)))
        self.register_buffer("beta", torch.full((1, N_WEIGHTS, 1, 1), 1.0 / (2 * N_WEIGHTS)))
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The image itself followed by the five L2-pooled VGG16 stages."""
        return [x, *self.backbone.forward_taps(imagenet_normalize(x), VGG16_TAPS)]

    def distance_from_features(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """DISTS from :meth:`features` outputs; returns a length-N tensor."""
        total_weight = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total_weight, list(STAGE_CHANNELS), dim=1)
        betas = torch.split(self.beta / total_weight, list(STAGE_CHANNELS), dim=1)
        similarity: torch.Tensor | None = None
        for a, b, alpha, beta in zip(fx, fy, alphas, betas, strict=True):
            mean_a = a.mean(dim=(2, 3), keepdim=True)
            mean_b = b.mean(dim=(2, 3), keepdim=True)
            texture = (2 * mean_a * mean_b + _C1) / (mean_a**2 + mean_b**2 + _C1)
            da, db = a - mean_a, b - mean_b
            var_a = (da * da).mean(dim=(2, 3), keepdim=True)
            var_b = (db * db).mean(dim=(2, 3), keepdim=True)
            cov = (da * db).mean(dim=(2, 3), keepdim=True)
            structure = (2 * cov + _C2) / (var_a + var_b + _C2)
            stage = (alpha * texture + beta * structure).sum(dim=(1, 2, 3))
            similarity = stage if similarity is None else similarity + stage
        if similarity is None:
            raise SrjudgeError("DISTS was given no feature maps: features() returns one per stage.")
        return 1.0 - similarity

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance_from_features(self.features(x), self.features(y))

    def compare(
        self, a: np.ndarray, b: np.ndarray, *, names: tuple[str, str] = ("first image", "second image")
    ) -> float:
        """DISTS between two H x W x 3 images in [0, 1] (same size), as a float."""
        device = self.alpha.device
        with torch.inference_mode():
            fa = self.features(image_to_tensor(a, device, name=names[0]))
            fb = self.features(image_to_tensor(b, device, name=names[1]))
            if [f.shape for f in fa] != [f.shape for f in fb]:
                raise SrjudgeError("DISTS compares images of the same size.")
            return float(self.distance_from_features(fa, fb)[0].item())

    def load_weights(self, path: str | os.PathLike[str], *, hint: str = "") -> None:
        """Load α and β from a DISTS weights file (keys ``alpha`` and ``beta``, 1475 values each)."""
        state = load_state_dict_file(path, what="DISTS alpha/beta weights", hint=hint)
        self.set_weights(state, source=path, hint=hint)

    def set_weights(
        self, state: Mapping[str, torch.Tensor], *, source: str | os.PathLike[str], hint: str = ""
    ) -> None:
        """Copy α and β from a state dict (``alpha``, ``beta``); ``source`` names it in errors."""
        what = "DISTS alpha/beta weights"
        flat = {k: v.reshape(1, -1, 1, 1) if v.numel() == N_WEIGHTS else v for k, v in state.items()}
        shape = (1, N_WEIGHTS, 1, 1)
        weights = check_state_dict(flat, {"alpha": shape, "beta": shape}, path=source, what=what, hint=hint)
        alpha, beta = weights["alpha"].float(), weights["beta"].float()
        total = float(alpha.sum() + beta.sum())
        if not (torch.isfinite(alpha).all() and torch.isfinite(beta).all()) or not total > 0:
            raise MissingWeightsError(
                f"The {what} file {str(source)!r} holds non-finite values or weights that sum to {total}; "
                f"it must hold DISTS's trained alpha and beta. {hint}".strip()
            )
        self.alpha.copy_(alpha)
        self.beta.copy_(beta)


def load_dists(
    backbone: str | os.PathLike[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    device: str = "cpu",
) -> DISTS:
    """Build DISTS from torchvision's VGG16 checkpoint and a DISTS ``weights.pt`` (alpha, beta).

    A part given as ``None`` comes from the bundled weights (:func:`srjudge.models.bundled.load_parts`).
    """
    target = resolve_device(device)
    model = DISTS()
    backbone_hint = f"DISTS needs torchvision's ImageNet VGG16 weights {VGG16_FILE} ({VGG16_URL})."
    weights_hint = (
        f"DISTS needs its weights file {DISTS_WEIGHTS_FILE} ({DISTS_WEIGHTS_URL}; or {DISTS_WEIGHTS_WHEEL})."
    )
    bundled.load_parts(
        backbone_part(model.backbone, backbone, "vgg", what="DISTS VGG16 backbone", hint=backbone_hint),
        bundled.WeightPart(weights, bundled.DISTS_FILE, model.load_weights, model.set_weights, weights_hint),
    )
    return model.to(target).eval()
