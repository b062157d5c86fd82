"""Trustworthiness Score (TWS) of the diffusion-SR selection paper (arXiv 2506.20832).

TWS = (w_sem * S_sem + w_str * S_str + w_art * S_art) / (sum of the weights of the terms present)

- S_sem, semantic similarity: cosine similarity of CLIP image embeddings of candidate and
  reference, clipped to [0, 1]. Only with CLIP weights given (``tws:clip=/path/to/clip``);
  without them the term is omitted, the weights renormalised, and the verdict says so.
- S_str, structural integrity: SSIM between Sobel edge maps (edge-SSIM), clipped to [0, 1].
- S_art, artifact suppression: exp(-A), A = log-energy excess of high wavelet bands over the
  reference (``wavelet-artifact``), so 1 means no excess high-frequency energy.

Reference: the HR image when given. Without it, by default (``lr_mode=lr-scale``) S_str and S_art compare
the candidate *downsampled to the LR size* with the LR input itself: at that scale a faithful output
gives back its input whatever detail it adds above the LR's Nyquist frequency, so blur is not rewarded.
The paper's formula (``lr_mode=upsampled``) compares the full-size candidate with the bicubic-upsampled
LR; it rewards the blurriest output (22 % pairwise agreement with people on modern SR, below chance).
Score = 100 * TWS.
Default weights 0.4 / 0.3 / 0.3 (the paper combines the three terms; it gives no weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.checks import check_lr_scale, check_same_size
from srjudge.judges.base import CandidateSetJudge, Judge, Verdict
from srjudge.judges.registry import register_judge
from srjudge.metrics.fullref import edge_ssim_value
from srjudge.metrics.lrref import downsample_to_lr
from srjudge.metrics.noref import upsample_lr, wavelet_artifact_value
from srjudge.spec import Choice, Spec, coerce_options

DEFAULT_WEIGHTS = {"semantic": 0.4, "structure": 0.3, "artifact": 0.3}
LrMode = Literal["lr-scale", "upsampled"]
"""Without the HR: compare at LR scale (candidate downsampled) or with the bicubic-upsampled LR."""
LR_MODES: tuple[LrMode, ...] = get_args(LrMode)
OPTIONS = {
    "clip": (str, None),
    "w_semantic": (float, DEFAULT_WEIGHTS["semantic"]),
    "w_structure": (float, DEFAULT_WEIGHTS["structure"]),
    "w_artifact": (float, DEFAULT_WEIGHTS["artifact"]),
    "lr_mode": (Choice(*LR_MODES), "lr-scale"),
}
"""The options of ``tws:...`` (name -> (type, default)); ``clip`` is a local CLIP folder."""
MIN_LR_SIDE = 16
"""Smallest LR side compared at LR scale (SSIM windows); below it, the paper's reference, said so."""


class TWSJudge(CandidateSetJudge):
    def __init__(
        self,
        *,
        clip: str | None = None,
        w_semantic: float = DEFAULT_WEIGHTS["semantic"],
        w_structure: float = DEFAULT_WEIGHTS["structure"],
        w_artifact: float = DEFAULT_WEIGHTS["artifact"],
        lr_mode: LrMode = "lr-scale",
    ) -> None:
        if lr_mode not in LR_MODES:
            raise SpecError(f"tws: lr_mode={lr_mode!r} is not one of {', '.join(LR_MODES)}.")
        self.lr_mode = lr_mode
        weights = {"semantic": w_semantic, "structure": w_structure, "artifact": w_artifact}
        bad = {k: v for k, v in weights.items() if not (v >= 0 and math.isfinite(v))}
        if bad or sum(weights.values()) <= 0:
            raise SpecError(f"TWS weights must be non-negative with a positive sum; got {weights}.")
        self.clip = clip
        self.weights = weights
        self.config: dict[str, Any] = {
            "clip": clip,
            **{f"w_{k}": v for k, v in weights.items()},
            "lr_mode": lr_mode,
        }
        options = [f"clip={clip}"] if clip else []
        if lr_mode != "lr-scale":
            options.append(f"lr_mode={lr_mode}")
        self.spec = "tws" + (":" + ",".join(options) if options else "")

    def _reference(
        self, image: np.ndarray, lr: np.ndarray | None, hr: np.ndarray | None
    ) -> tuple[np.ndarray, str]:
        if hr is not None:
            check_same_size(image, hr, "SR image", "HR reference")
            return hr, "HR"
        if lr is not None:
            check_lr_scale(image, lr, "SR image", "LR input")
            return upsample_lr(lr, image.shape[:2]), "bicubic-upsampled LR"
        raise SrjudgeError(
            "The tws judge needs a reference: give the HR image (--hr) or the LR input (--lr)."
        )

    def _semantic(self, images: Sequence[np.ndarray], reference: np.ndarray, clip: str) -> list[float]:
        """CLIP cosine similarity of each image to the reference, with the CLIP weights in ``clip``."""
        from srjudge.models.clip import clip_image_embeddings

        embeddings = clip_image_embeddings([reference, *images], clip)
        ref = embeddings[0]
        return [float(np.clip(np.dot(ref, e), 0.0, 1.0)) for e in embeddings[1:]]

    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        if not images:
            return []
        reference, ref_name = self._reference(images[0], lr, hr)
        for image in images[1:]:
            self._reference(image, lr, hr)
        semantic = (
            self._semantic(images, reference, self.clip)
            if self.clip and self.weights["semantic"] > 0
            else None
        )
        lr_scale_ref = lr if hr is None and self.lr_mode == "lr-scale" else None
        if lr_scale_ref is not None and min(lr_scale_ref.shape[:2]) < MIN_LR_SIDE:
            lr_scale_ref = None  # too small for SSIM windows at LR scale: the paper's reference, said so
            ref_name += f" (LR under {MIN_LR_SIDE} px: too small to compare at LR scale)"
        if lr_scale_ref is not None:
            ref_name = "LR input, at LR scale"
        verdicts = []
        for i, image in enumerate(images):
            compared, against = image, reference
            if lr_scale_ref is not None:
                compared, against = downsample_to_lr(image, lr_scale_ref), lr_scale_ref
            terms = {
                "structure": float(np.clip(edge_ssim_value(compared, against), 0.0, 1.0)),
                "artifact": math.exp(-wavelet_artifact_value(compared, against)),
            }
            if semantic is not None:
                terms["semantic"] = semantic[i]
            used = {k: self.weights[k] for k in terms if self.weights[k] > 0}
            tws = sum(used[k] * terms[k] for k in used) / sum(used.values())
            note = (
                ""
                if semantic is not None
                else " Semantic term omitted: no CLIP weights given (use tws:clip=/path/to/clip)."
            )
            parts = ", ".join(f"{k} {v:.3f}" for k, v in terms.items())
            verdicts.append(
                self.verdict(
                    100.0 * tws,
                    tws,
                    rationale=f"TWS {tws:.3f} vs {ref_name} ({parts}).{note}",
                    components={**terms, "tws": tws},
                    tags=() if semantic is not None else ("no-semantic-term",),
                )
            )
        return verdicts


@register_judge(
    "tws",
    "Trustworthiness Score (diffusion-SR selection paper): CLIP semantics (with weights), edge-SSIM, "
    "wavelet artifacts.",
    options=OPTIONS,
)
def _make_tws(spec: Spec) -> Judge:
    options = coerce_options(spec, OPTIONS, kind="judge")
    if spec.arg is not None:
        raise SpecError(f"tws takes key=value options only (e.g. tws:clip=/path); got {spec.arg!r}.")
    return TWSJudge(**options)
