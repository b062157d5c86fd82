"""``trust``: the offline default judge for ranking N candidates of one LR input (no HR, no internet).

Score = 100 * veto * (w_c*C + w_n*N + w_d*D + w_a*A) / (w_c + w_n + w_d + w_a), each term in [0, 1]:

- C, LR consistency: the candidate downsampled to LR size should give back the LR input
  (PSNR at LR scale; 24 dB -> 0, 38 dB -> 1). A faithful SR output never contradicts its input.
- N, naturalness: NIQE (lower is better; 3 -> 1, 12 -> 0), so that smooth or noisy outputs that
  have lost natural-image statistics rank lower.
- D, real detail: energy that the LR cannot explain (the candidate minus its own down-up-sampled
  version) relative to the energy a natural image would carry there, extrapolated from the LR's
  own finest octave. Saturates at 1, so inventing more detail than plausible earns nothing.
- A, artifact suppression: penalises what looks sharp but is not detail: steps on the upscaling
  grid beyond plain interpolation's (nearest-neighbour upscales), block edges on the LR's 8-pixel
  JPEG grid beyond the upsampled input's (compression blocks amplified), overshoot beyond the
  local range of the input along strong edges (halos and ringing from over-sharpening) and noise
  above what the input carries. D is multiplied by A: high frequencies that are artifacts are
  not detail, so blockiness or ringing can never be mistaken for it.
- veto, consensus: among the candidates, one whose mid-scale *structure* (the correlation term of
  SSIM, contrast-invariant, at twice the LR resolution) disagrees with the candidates' median much
  more than the others do is a likely semantic hallucination (a 3 that became an 8). Consensus
  vetoes outliers (score x 0.5, tag ``semantic-outlier``); it never rewards being average, so the
  most detailed output of a set of different models is not punished for differing in texture.

Weights default to 0.30 / 0.20 / 0.25 / 0.25 and can be set in the spec (``trust:w_detail=0.4``).

Optional read-out (``trust:readout=classifier``, off by default): for symbols and text, a reader
(:mod:`srjudge.readers`) scores each candidate with the ``readout`` judge (agreement of its reading
with the candidates' consensus and with the LR input's reading, in [0, 1]); that score is one more
weighted term R (``w_readout``, default 0.25), and a candidate whose reading disagrees with both the
consensus and the LR reading is vetoed like a structural outlier (tag ``semantic-change``). A candidate
the reader cannot read keeps the other terms and says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import correlate1d, maximum_filter, minimum_filter

from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.checks import check_lr_scale
from srjudge.images.color import rgb_to_gray
from srjudge.images.resize import imresize
from srjudge.judges.base import CandidateSetJudge, Judge, Verdict
from srjudge.judges.registry import register_judge
from srjudge.metrics.fullref import psnr_value
from srjudge.metrics.lrref import downsample_to_lr
from srjudge.metrics.niqe import niqe as niqe_value
from srjudge.metrics.noref import noise_sigma_value
from srjudge.spec import Spec, coerce_options

DEFAULT_WEIGHTS = {"consistency": 0.30, "naturalness": 0.20, "detail": 0.25, "artifact": 0.25}
DEFAULT_W_READOUT = 0.25
VETO_FACTOR = 0.5


@dataclass(frozen=True)
class TrustFeatures:
    """Raw measurements behind the trust terms of one candidate."""

    lr_psnr: float
    niqe: float | None
    detail_ratio: float
    grid_steps: float
    jpeg_blocks: float
    overshoot: float
    noise_excess: float


def _linear(value: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (value - lo) / (hi - lo))))


def _down_up(gray: np.ndarray, scale: int) -> np.ndarray:
    """What a gray image keeps after a round trip through the LR grid."""
    h, w = gray.shape
    small = imresize(gray, output_shape=(h // scale, w // scale))
    return imresize(small, output_shape=(h, w))


def expected_detail_energy(lr_gray: np.ndarray, scale: int) -> float:
    """Energy a natural image should carry in the log2(scale) octaves above LR Nyquist.

    For natural images the band energy per octave is roughly constant (a 1/f^2 spectrum), so those
    octaves should carry about log2(scale) times the LR's own finest octave.
    """
    lh, lw = lr_gray.shape
    if min(lh, lw) < 8 or scale < 2:
        return 0.0
    lr_band = lr_gray - imresize(imresize(lr_gray, output_shape=(lh // 2, lw // 2)), output_shape=(lh, lw))
    return math.log2(scale) * float(np.mean(lr_band**2)) * DETAIL_GAIN


def detail_ratio(gray: np.ndarray, scale: int, expected: float) -> float:
    """Energy of the candidate that the LR grid cannot explain, over the expected energy."""
    if scale < 2 or expected <= 0.0:
        return 0.0
    new_energy = float(np.mean((gray - _down_up(gray, scale)) ** 2))
    return new_energy / max(expected, 1e-8)


DETAIL_GAIN = 1.0
"""Calibration of the expected-detail extrapolation (set from scikit-image photos, see tests)."""


def block_steps(gray: np.ndarray, period: int) -> float:
    """Typical step at the boundaries of a grid of the given period, beyond the change beside them.

    In 8-bit gray levels: per boundary pixel, the gradient across the boundary minus the mean
    gradient one pixel to either side; the mean of the middle half over all boundary pixels.
    Grid artifacts (nearest-neighbour steps, JPEG block edges) sit on every boundary, while a
    natural edge that happens to fall on one is an outlier the trimmed mean ignores.
    """
    if period < 2 or min(gray.shape) < 2 * period:
        return 0.0
    steps = []
    for axis in (0, 1):
        diff = np.abs(np.diff(gray, axis=axis))
        on_index = np.flatnonzero(np.arange(diff.shape[axis]) % period == period - 1)
        on_index = on_index[(on_index >= 1) & (on_index + 1 < diff.shape[axis])]
        on = np.take(diff, on_index, axis=axis)
        beside = 0.5 * (np.take(diff, on_index - 1, axis=axis) + np.take(diff, on_index + 1, axis=axis))
        steps.append((on - beside).ravel())
    values = np.sort(np.concatenate(steps))
    quarter = values.size // 4
    return 255.0 * float(np.mean(values[quarter : values.size - quarter]))


JPEG_BLOCK = 8


@dataclass(frozen=True)
class EdgeRange:
    """Local min/max of the upsampled input around its strongest edges (computed once per LR)."""

    hi: np.ndarray
    lo: np.ndarray
    mask: np.ndarray

    @classmethod
    def of(cls, reference: np.ndarray, scale: int) -> EdgeRange:
        size = 2 * scale + 1
        hi = maximum_filter(reference, size=size, mode="nearest")
        lo = minimum_filter(reference, size=size, mode="nearest")
        grad = np.hypot(*np.gradient(reference))
        mask = maximum_filter(grad >= np.quantile(grad, 0.9), size=scale + 1)
        return cls(hi=hi[mask], lo=lo[mask], mask=mask)


def overshoot(gray: np.ndarray, edges: EdgeRange) -> float:
    """Halo and ringing at strong edges: excursion beyond the local range of the upsampled input.

    Measured only along the strongest edges of the input (top 10 % gradient, widened by the
    scale), where over-sharpening overshoots and a true sharp edge stays within the step's range;
    inside textures, real detail may legitimately leave the blurry input's range.
    """
    if not edges.mask.any():
        return 0.0
    values = gray[edges.mask]
    excursion = np.maximum(values - edges.hi, 0.0) + np.maximum(edges.lo - values, 0.0)
    return float(np.mean(excursion)) / (float(np.mean(edges.hi - edges.lo)) + 1e-3)


def _structure_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Local correlation (SSIM's structure term): contrast-invariant agreement of two gray images."""
    x = np.arange(-5, 6, dtype=np.float64)
    taps = np.exp(-(x**2) / (2 * sigma**2))
    taps /= taps.sum()

    def blur(z: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(z, taps, axis=0, mode="reflect"), taps, axis=1, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    va = np.maximum(blur(a * a) - mu_a**2, 0.0)
    vb = np.maximum(blur(b * b) - mu_b**2, 0.0)
    cov = blur(a * b) - mu_a * mu_b
    c3 = (0.03**2) / 2
    return (cov + c3) / (np.sqrt(va * vb) + c3)


def consensus_distances(grays: Sequence[np.ndarray], lr_shape: tuple[int, int]) -> list[float]:
    """Per candidate: 1 - mean of the worst 5 % of its structural agreement with the median candidate."""
    h, w = lr_shape
    mid = [imresize(g, output_shape=(2 * h, 2 * w)) for g in grays]
    median = np.median(np.stack(mid), axis=0)
    out = []
    for m in mid:
        agreement = _structure_map(m, median).ravel()
        k = max(1, agreement.size // 20)
        out.append(float(1.0 - np.mean(np.partition(agreement, k)[:k])))
    return out


def consensus_vetoes(distances: Sequence[float], *, z: float = 3.5, floor: float = 0.35) -> list[bool]:
    """Robust outliers: far above the median distance (in MAD units) and above an absolute floor."""
    d = np.asarray(distances, dtype=np.float64)
    if d.size < 3:
        return [False] * d.size
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med))) * 1.4826 + 0.02
    return [bool(v > floor and (v - med) / mad > z) for v in d]


class TrustJudge(CandidateSetJudge):
    def __init__(
        self,
        *,
        w_consistency: float = DEFAULT_WEIGHTS["consistency"],
        w_naturalness: float = DEFAULT_WEIGHTS["naturalness"],
        w_detail: float = DEFAULT_WEIGHTS["detail"],
        w_artifact: float = DEFAULT_WEIGHTS["artifact"],
        consensus: bool = True,
        readout: str | None = None,
        w_readout: float = DEFAULT_W_READOUT,
    ) -> None:
        weights = {
            "consistency": w_consistency,
            "naturalness": w_naturalness,
            "detail": w_detail,
            "artifact": w_artifact,
        }
        if readout is not None:
            weights["readout"] = w_readout
        elif w_readout != DEFAULT_W_READOUT:
            raise SpecError(
                "trust: w_readout weighs the read-out term; give the reader too (readout=classifier)."
            )
        if any(not (v >= 0 and math.isfinite(v)) for v in weights.values()) or sum(weights.values()) <= 0:
            raise SpecError(f"trust weights must be non-negative with a positive sum; got {weights}.")
        self.weights = weights
        self.consensus = consensus
        self.config: dict[str, Any] = {**{f"w_{k}": v for k, v in weights.items()}, "consensus": consensus}
        changed = [
            f"w_{k}={v:g}" for k, v in weights.items() if v != DEFAULT_WEIGHTS.get(k, DEFAULT_W_READOUT)
        ]
        if not consensus:
            changed.append("consensus=false")
        self.readout: Judge | None = None
        if readout is not None:
            from srjudge.judges.readout import readout_from_spec

            self.readout = readout_from_spec(Spec("readout", readout))
            self.config["readout"] = self.readout.config
            changed.append(f"readout={readout}")
        self.spec = "trust" + (":" + ",".join(changed) if changed else "")

    def features(self, images: Sequence[np.ndarray], lr: np.ndarray) -> list[TrustFeatures]:
        """Raw measurements for each candidate; what depends on the LR alone is computed once."""
        scale = check_lr_scale(images[0], lr, "SR candidate", "LR input")
        for image in images[1:]:
            check_lr_scale(image, lr, "SR candidate", "LR input")
        lr_gray = rgb_to_gray(lr)
        shape = images[0].shape[:2]
        expected = expected_detail_energy(lr_gray, scale)
        reference = imresize(lr_gray, output_shape=shape)
        edges = EdgeRange.of(reference, scale) if scale > 1 else None
        # Plain interpolation's own grid structure (and the input's JPEG blocks it carries) is the
        # baseline: only what a candidate adds on top counts.
        ref_steps = block_steps(reference, scale)
        ref_jpeg = block_steps(reference, JPEG_BLOCK * scale)
        noise_in = max(noise_sigma_value(lr), 1.0)
        lr64 = lr.astype(np.float64)
        out = []
        for image in images:
            gray = rgb_to_gray(image)
            down = np.clip(downsample_to_lr(image, lr), 0.0, 1.0)
            try:
                niqe: float | None = niqe_value(image)
            except SrjudgeError:
                niqe = None  # smaller than NIQE's 96x96 blocks: the term is dropped and the verdict says so
            out.append(
                TrustFeatures(
                    lr_psnr=psnr_value(down, lr64),
                    niqe=niqe,
                    detail_ratio=detail_ratio(gray, scale, expected),
                    grid_steps=max(0.0, block_steps(gray, scale) - ref_steps),
                    jpeg_blocks=max(0.0, block_steps(gray, JPEG_BLOCK * scale) - ref_jpeg)
                    if scale > 1
                    else 0.0,
                    overshoot=overshoot(gray, edges) if edges is not None else 0.0,
                    noise_excess=max(0.0, noise_sigma_value(image) - noise_in),
                )
            )
        return out

    @staticmethod
    def terms(f: TrustFeatures) -> dict[str, float]:
        blocks = 0.5 * f.grid_steps + 0.5 * max(0.0, f.jpeg_blocks - 0.1)
        artifact = math.exp(-(blocks + 8.0 * f.overshoot + 0.15 * f.noise_excess))
        terms = {
            "consistency": _linear(f.lr_psnr, 24.0, 38.0),
            "detail": min(1.0, math.sqrt(max(f.detail_ratio, 0.0))) * artifact,
            "artifact": artifact,
        }
        if f.niqe is not None:
            terms["naturalness"] = _linear(-f.niqe, -12.0, -3.0)
        return terms

    def score_many(
        self, images: Sequence[np.ndarray], *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> list[Verdict]:
        if lr is None:
            raise SrjudgeError("The trust judge anchors every candidate on its LR input: give it (--lr).")
        if not images:
            return []
        features = self.features(images, lr)
        vetoes = [False] * len(images)
        distances: list[float] = [0.0] * len(images)
        if self.consensus and len(images) >= 3:
            distances = consensus_distances([rgb_to_gray(i) for i in images], lr.shape[:2])
            vetoes = consensus_vetoes(distances)
        readouts = self.readout.score_many(images, lr=lr) if self.readout is not None else None
        verdicts = []
        for index, (f, vetoed, dist) in enumerate(zip(features, vetoes, distances, strict=True)):
            terms = self.terms(f)
            read = readouts[index] if readouts is not None else None
            read_veto = False
            if read is not None and read.raw is not None and math.isfinite(read.raw):
                terms["readout"] = read.raw
                read_veto = {"semantic-change", "consensus-outlier"} <= set(read.tags)
            used = {k: w for k, w in self.weights.items() if k in terms and w > 0}
            base = sum(used[k] * terms[k] for k in used) / sum(used.values())
            value = base * (VETO_FACTOR if vetoed or read_veto else 1.0)
            tags = []
            if vetoed:
                tags.append("semantic-outlier")
            if read_veto:
                tags.append("semantic-change")
            if f.grid_steps > 1.0:
                tags.append("blockiness")
            if f.jpeg_blocks > 0.3:
                tags.append("jpeg-blocks")
            if f.overshoot > 0.02:
                tags.append("ringing")
            if f.noise_excess > 3.0:
                tags.append("noise")
            if terms["consistency"] < 0.3:
                tags.append("lr-inconsistent")
            if f.detail_ratio < 0.1:
                tags.append("blur")
            rationale = "; ".join(f"{k} {v:.2f}" for k, v in terms.items())
            if vetoed:
                rationale += (
                    f"; structure disagrees with the other candidates (distance {dist:.2f}): score halved"
                )
            if f.niqe is None:
                rationale += "; naturalness omitted (image smaller than NIQE's 96x96 blocks)"
            if read is not None:
                rationale += f"; read-out: {read.rationale}"
                if read.raw is None:
                    rationale += f" (term omitted: {read.abstain_reason})"
                if read_veto:
                    rationale += "; reads another symbol than the consensus and the LR: score halved"
            components = {
                **terms,
                "consensus_distance": dist,
                "lr_psnr": f.lr_psnr,
                "detail_ratio": f.detail_ratio,
                "grid_steps": f.grid_steps,
                "jpeg_blocks": f.jpeg_blocks,
                "overshoot": f.overshoot,
                "noise_excess": f.noise_excess,
            }
            if f.niqe is not None:
                components["niqe"] = f.niqe
            verdicts.append(
                Verdict(
                    judge=self.spec,
                    score=100.0 * value,
                    raw=value,
                    provenance=self.provenance(),
                    tags=tuple(tags),
                    rationale=rationale,
                    components=components,
                )
            )
        return verdicts


@register_judge(
    "trust",
    "Offline default: LR consistency, NIQE naturalness, real detail, artifact suppression, consensus veto.",
    needs_lr=True,
)
def _make_trust(spec: Spec) -> Judge:
    schema = {
        "w_consistency": float,
        "w_naturalness": float,
        "w_detail": float,
        "w_artifact": float,
        "consensus": bool,
        "readout": str,
        "w_readout": float,
    }
    if spec.arg is not None:
        raise SpecError(f"trust takes key=value options only; got {spec.arg!r}.")
    return TrustJudge(**coerce_options(spec, schema, kind="judge"))
