"""``trust``: the offline default judge for ranking N candidates of one LR input (no HR, no internet).

Designed from what people reward on modern SR (SRIQA-Bench, DISRQAD; see the README's "Agreement with
people"): convincing natural detail carries the ranking; detail that is really an artifact (grid steps,
amplified JPEG blocks, noise) is punished; closeness to the blurry upsampled input is *not* a reward,
only a gate against contradiction and a tie-breaker; a semantic change vetoes.

quality Q (in octaves of detail energy)::

    Q = detail - w_grid * grid - w_blocks * max(0, jpeg_blocks - 0.2)
        - w_noise * max(0, noise_excess - 1.5) + w_consistency * clip((lr_consistency - 30) / 10, -1, 1)

    score = 100 * sigmoid(Q) * (0.5 if vetoed)

- detail: log2 of the candidate's fine-scale energy (mean squared one-pixel differences, the
  dominant phase of the upscaling grid left out) over plain bicubic upscaling's. 0 for bicubic,
  negative for blur, about +1 per doubling of the energy; clipped to [-6, 6], never saturating at
  a "plausible" level, so it tells a GAN from a diffusion output. Grid steps do not count: a
  nearest-neighbour upscale has all its energy on the grid and none off it.
- grid: log2 of how much the strongest phase of the scale-periodic grid exceeds the others, beyond
  bicubic's own (nearest-neighbour steps, pixel-replication).
- jpeg_blocks: steps on the LR's 8-pixel JPEG grid beyond the upsampled input's (gray levels).
- noise_excess: estimated noise sigma beyond the input's (gray levels); 1.5 levels are free, since
  the estimator reads GAN texture as about 1 level of noise.
- lr_consistency: PSNR (dB) at LR scale after a Gaussian low-pass (sigma 1 LR pixel) of the
  candidate downsampled and of the LR: it ignores the noise and JPEG blocks a restoration model
  rightly removes and keeps what the LR says about content. Below ``lr_floor`` (20 dB) the
  candidate contradicts its input and is vetoed (``lr-contradiction``).
- veto, consensus: among >= 3 candidates, one with a coherent region whose structure (SSIM's
  correlation term at twice the LR resolution, smoothed) departs from the candidates' median far more
  than the rest of it does, and far more than the other candidates', is a likely semantic
  hallucination (a 3 that became an 8): score halved, tag ``semantic-outlier``. Texture a
  generative model invents differs a little everywhere and is not an outlier for that.

Weights default to w_grid 0.5, w_blocks 1, w_noise 1.5, w_consistency 0.5 (``trust:w_grid=1``).
Each verdict carries ``contributions`` (the signed terms of Q), so a ranking can say which terms
decided between the pick and the runner-up.

Migration from trust 1 (srjudge <= 0.1.0): the linear LR-consistency reward (which made the blurriest
output win), NIQE naturalness and the saturating detail x artifact product are gone; ``w_naturalness``,
``w_detail`` and ``w_artifact`` are refused with a pointer to the new options. Halos are reported
(tag ``ringing`` when overshoot at strong edges comes without new detail) but not scored: on GAN and
diffusion outputs the overshoot measure reads crisp restored edges as ringing.

Optional read-out (``trust:readout=classifier``): a reader (:mod:`srjudge.readers`) scores each
candidate with the ``readout`` judge (agreement of its reading with the candidates' consensus and with
the LR's reading, in [0, 1]); it adds ``w_readout * (R - 0.5) * 4`` to Q, and a candidate whose
reading disagrees with both is vetoed (tag ``semantic-change``).

Optional identity (``trust:identity=true``): faces are found and each candidate's identity is compared
(:class:`srjudge.faces.identity.IdentityChecker`) with the HR face when given, else with the other
candidates' consensus identity and the LR face when it is large enough. A candidate whose worst face
falls below the same-person threshold (``identity_threshold``; dlib's calibrated 0.90 by default, or
give ``arcface=PATH`` for an ArcFace ONNX model) is vetoed: score halved, tag ``identity-drift``, which
the audit treats as blocking. Images without faces are unaffected (the rationale says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import correlate1d, gaussian_filter, maximum_filter, minimum_filter

from srjudge.errors import SpecError, SrjudgeError
from srjudge.faces.detect import FaceFinder
from srjudge.faces.identity import IdentityChecker, IdentityReport, IdentityScale, make_encoder
from srjudge.images.checks import check_lr_scale
from srjudge.images.color import rgb_to_gray
from srjudge.images.resize import imresize
from srjudge.judges.base import CandidateSetJudge, Judge, Verdict
from srjudge.judges.registry import register_judge
from srjudge.metrics.fullref import psnr_value
from srjudge.metrics.lrref import downsample_to_lr
from srjudge.metrics.noref import detail_and_grid, noise_sigma_value
from srjudge.spec import Spec, coerce_options

DEFAULT_WEIGHTS = {"grid": 0.5, "blocks": 1.0, "noise": 1.5, "consistency": 0.5}
NOISE_FREE = 1.5
"""Gray levels of estimated noise beyond the input's that cost nothing (generated texture reads as ~1)."""
DEFAULT_W_READOUT = 0.25
DEFAULT_LR_FLOOR = 20.0
VETO_FACTOR = 0.5
DETAIL_CLIP = 6.0
OPTIONS = {
    "w_grid": (float, DEFAULT_WEIGHTS["grid"]),
    "w_blocks": (float, DEFAULT_WEIGHTS["blocks"]),
    "w_noise": (float, DEFAULT_WEIGHTS["noise"]),
    "w_consistency": (float, DEFAULT_WEIGHTS["consistency"]),
    "lr_floor": (float, DEFAULT_LR_FLOOR),
    "consensus": (bool, True),
    "readout": (str, None),
    "w_readout": (float, DEFAULT_W_READOUT),
    "identity": (bool, False),
    "identity_threshold": (float, None),
    "arcface": (str, None),
}
"""The options of ``trust:...`` (name -> (type, default))."""
GRID_CLIP = 10.0
JPEG_BLOCK = 8
RETIRED_OPTIONS = {
    "w_naturalness": "NIQE naturalness is no longer a trust term (use the niqe judge, or `srjudge fit`)",
    "w_detail": "detail carries the ranking at unit weight; weigh the artifacts (w_grid, w_blocks, w_noise)",
    "w_artifact": "the artifact term is split into w_grid, w_blocks and w_noise",
}


@dataclass(frozen=True)
class TrustFeatures:
    """Raw measurements behind the trust terms of one candidate."""

    detail: float
    grid: float
    jpeg_blocks: float
    noise_excess: float
    lr_consistency: float
    overshoot: float


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def lowpass_lr_psnr(image: np.ndarray, lr: np.ndarray, sigma: float = 1.0) -> float:
    """PSNR at LR scale between low-passed versions of the downsampled candidate and the LR input."""
    down = np.clip(downsample_to_lr(image, lr), 0.0, 1.0)
    blur = (sigma, sigma, 0) if lr.ndim == 3 else sigma
    return psnr_value(gaussian_filter(down, blur), gaussian_filter(lr.astype(np.float64), blur))


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
        out: np.ndarray = correlate1d(
            correlate1d(z, taps, axis=0, mode="reflect"), taps, axis=1, mode="reflect"
        )
        return out

    mu_a, mu_b = blur(a), blur(b)
    va = np.maximum(blur(a * a) - mu_a**2, 0.0)
    vb = np.maximum(blur(b * b) - mu_b**2, 0.0)
    cov = blur(a * b) - mu_a * mu_b
    c3 = (0.03**2) / 2
    structure: np.ndarray = (cov + c3) / (np.sqrt(va * vb) + c3)
    return structure


def consensus_distances(grays: Sequence[np.ndarray], lr_shape: tuple[int, int]) -> list[float]:
    """Per candidate: how much worse its worst region agrees with the median candidate than it does overall.

    Structural agreement (SSIM's correlation term) with the median, at twice the LR resolution,
    smoothed over a few pixels; the distance is its median minus the mean of its worst 5 %. A
    semantic change is a coherent region of disagreement (high distance); a generative model's
    invented texture disagrees everywhere a little (low distance), and is not an outlier for it.
    """
    h, w = lr_shape
    mid = [imresize(g, output_shape=(2 * h, 2 * w)) for g in grays]
    median = np.median(np.stack(mid), axis=0)
    out = []
    for m in mid:
        agreement = gaussian_filter(_structure_map(m, median), 2.0).ravel()
        k = max(1, agreement.size // 20)
        out.append(float(np.median(agreement) - np.mean(np.partition(agreement, k)[:k])))
    return out


def consensus_vetoes(distances: Sequence[float], *, z: float = 3.5, floor: float = 0.5) -> list[bool]:
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
        w_grid: float = DEFAULT_WEIGHTS["grid"],
        w_blocks: float = DEFAULT_WEIGHTS["blocks"],
        w_noise: float = DEFAULT_WEIGHTS["noise"],
        w_consistency: float = DEFAULT_WEIGHTS["consistency"],
        lr_floor: float = DEFAULT_LR_FLOOR,
        consensus: bool = True,
        readout: str | None = None,
        w_readout: float = DEFAULT_W_READOUT,
        identity: bool = False,
        identity_threshold: float | None = None,
        arcface: str | None = None,
    ) -> None:
        weights = {"grid": w_grid, "blocks": w_blocks, "noise": w_noise, "consistency": w_consistency}
        if readout is not None:
            weights["readout"] = w_readout
        elif w_readout != DEFAULT_W_READOUT:
            raise SpecError(
                "trust: w_readout weighs the read-out term; give the reader too (readout=classifier)."
            )
        if any(not (v >= 0 and math.isfinite(v)) for v in weights.values()):
            raise SpecError(f"trust weights must be finite and non-negative; got {weights}.")
        if not math.isfinite(lr_floor):
            raise SpecError(f"trust: lr_floor must be a finite PSNR in dB; got {lr_floor}.")
        self.weights = weights
        self.lr_floor = lr_floor
        self.consensus = consensus
        self.config: dict[str, Any] = {
            "version": 2,
            **{f"w_{k}": v for k, v in weights.items()},
            "lr_floor": lr_floor,
            "consensus": consensus,
        }
        changed = [
            f"w_{k}={v:g}" for k, v in weights.items() if v != DEFAULT_WEIGHTS.get(k, DEFAULT_W_READOUT)
        ]
        if lr_floor != DEFAULT_LR_FLOOR:
            changed.append(f"lr_floor={lr_floor:g}")
        if not consensus:
            changed.append("consensus=false")
        self.readout: Judge | None = None
        if readout is not None:
            from srjudge.judges.readout import readout_from_spec

            self.readout = readout_from_spec(Spec("readout", readout))
            self.config["readout"] = self.readout.config
            changed.append(f"readout={readout}")
        self.identity: IdentityChecker | None = None
        self.identity_scale: IdentityScale | None = None
        if identity:
            encoder = make_encoder(arcface)
            self.identity = IdentityChecker(FaceFinder(), encoder)
            self.identity_scale = IdentityScale(
                encoder.default_threshold if identity_threshold is None else identity_threshold
            )
            self.config["identity"] = {"encoder": encoder.name, "threshold": self.identity_scale.threshold}
            changed.append("identity=true")
            if identity_threshold is not None:
                changed.append(f"identity_threshold={identity_threshold:g}")
            if arcface:
                changed.append(f"arcface={arcface}")
        elif identity_threshold is not None or arcface:
            raise SpecError(
                "trust: identity_threshold and arcface configure the identity check; add identity=true."
            )
        self.spec = "trust" + (":" + ",".join(changed) if changed else "")

    def features(self, images: Sequence[np.ndarray], lr: np.ndarray) -> list[TrustFeatures]:
        """Raw measurements for each candidate; what depends on the LR alone is computed once."""
        scale = check_lr_scale(images[0], lr, "SR candidate", "LR input")
        for image in images[1:]:
            check_lr_scale(image, lr, "SR candidate", "LR input")
        # Plain bicubic upscaling of the input is the baseline: its detail is 0, its own grid
        # structure (and the input's JPEG blocks it carries) is not held against a candidate.
        reference = imresize(rgb_to_gray(lr), output_shape=images[0].shape[:2])
        ref_energy, ref_grid = detail_and_grid(reference, scale)
        ref_jpeg = block_steps(reference, JPEG_BLOCK * scale) if scale > 1 else 0.0
        edges = EdgeRange.of(reference, scale) if scale > 1 else None
        noise_in = max(noise_sigma_value(lr), 1.0)
        out = []
        for image in images:
            gray = rgb_to_gray(image)
            jpeg = max(0.0, block_steps(gray, JPEG_BLOCK * scale) - ref_jpeg) if scale > 1 else 0.0
            energy, grid = detail_and_grid(gray, scale)
            detail = math.log2(max(energy, 1e-12) / max(ref_energy, 1e-12))
            out.append(
                TrustFeatures(
                    detail=float(np.clip(detail, -DETAIL_CLIP, DETAIL_CLIP)),
                    grid=float(np.clip(grid - ref_grid, 0.0, GRID_CLIP)),
                    jpeg_blocks=jpeg,
                    noise_excess=max(0.0, noise_sigma_value(image) - noise_in),
                    lr_consistency=lowpass_lr_psnr(image, lr),
                    overshoot=overshoot(gray, edges) if edges is not None else 0.0,
                )
            )
        return out

    def contributions(self, f: TrustFeatures) -> dict[str, float]:
        """The signed terms of Q for one candidate (their sum is the logit of the score)."""
        w = self.weights
        return {
            "detail": f.detail,
            "grid": -w["grid"] * f.grid,
            "blocks": -w["blocks"] * max(0.0, f.jpeg_blocks - 0.2),
            "noise": -w["noise"] * max(0.0, f.noise_excess - NOISE_FREE),
            "consistency": w["consistency"] * float(np.clip((f.lr_consistency - 30.0) / 10.0, -1.0, 1.0)),
        }

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
        identities = self.identity.compare(images, hr=hr, lr=lr) if self.identity is not None else None
        verdicts = []
        for index, (f, outlier, dist) in enumerate(zip(features, vetoes, distances, strict=True)):
            contributions = self.contributions(f)
            read = readouts[index] if readouts is not None else None
            read_veto = False
            if read is not None and read.raw is not None and math.isfinite(read.raw):
                contributions["readout"] = self.weights["readout"] * (read.raw - 0.5) * 4.0
                read_veto = {"semantic-change", "consensus-outlier"} <= set(read.tags)
            contradiction = f.lr_consistency < self.lr_floor
            who = identities[index] if identities is not None else None
            drift = bool(
                who is not None
                and who.similarity is not None
                and self.identity_scale is not None
                and who.similarity < self.identity_scale.threshold
            )
            quality = sum(contributions.values())
            vetoed = outlier or read_veto or contradiction or drift
            value = _sigmoid(quality) * (VETO_FACTOR if vetoed else 1.0)
            tags = _tags(f, outlier=outlier, read_veto=read_veto, contradiction=contradiction, drift=drift)
            rationale = _rationale(f, contributions, dist, outlier=outlier, floor=self.lr_floor)
            if who is not None and self.identity_scale is not None:
                rationale += "; " + _identity_rationale(who, self.identity_scale.threshold)
            if read is not None:
                rationale += f"; read-out: {read.rationale}"
                if read.raw is None:
                    rationale += f" (term omitted: {read.abstain_reason})"
                if read_veto:
                    rationale += "; reads another symbol than the consensus and the LR: score halved"
            components = {
                "quality": quality,
                "consensus_distance": dist,
                **{k: float(getattr(f, k)) for k in TrustFeatures.__dataclass_fields__},
            }
            if "readout" in contributions and read is not None and read.raw is not None:
                components["readout"] = read.raw
            if who is not None and who.similarity is not None:
                components["identity"] = who.similarity
            verdicts.append(
                self.verdict(
                    100.0 * value,
                    value,
                    tags=tuple(tags),
                    rationale=rationale,
                    components=components,
                    contributions=contributions,
                )
            )
        return verdicts


def _tags(
    f: TrustFeatures, *, outlier: bool, read_veto: bool, contradiction: bool, drift: bool = False
) -> list[str]:
    """Named problems, in the vocabulary the audit's knobs answer to."""
    checks = [
        (drift, "identity-drift"),
        (outlier, "semantic-outlier"),
        (read_veto, "semantic-change"),
        (contradiction, "lr-contradiction"),
        (f.grid > 1.0, "blockiness"),
        (f.jpeg_blocks > 0.3, "jpeg-blocks"),
        # Overshoot without new detail is sharpening's halo; with it, it is a restored crisp edge.
        (f.overshoot > 0.03 and f.detail < 2.0, "ringing"),
        (f.noise_excess > NOISE_FREE + 1.0, "noise"),
        (f.detail < -0.3 and f.grid <= 1.0, "blur"),
    ]
    return [tag for hit, tag in checks if hit]


def _identity_rationale(report: IdentityReport, threshold: float) -> str:
    if report.similarity is None:
        return f"identity not measured ({report.note})"
    text = f"identity cos {report.similarity:.3f} vs {'+'.join(report.references)}"
    if report.similarity < threshold:
        return text + f" < {threshold:.3f}: another person's face, score halved"
    return text + f" (same person above {threshold:.3f})"


def _rationale(
    f: TrustFeatures, contributions: dict[str, float], dist: float, *, outlier: bool, floor: float
) -> str:
    parts = [f"detail {f.detail:+.2f} octaves vs bicubic"]
    parts += [f"{k} {v:+.2f}" for k, v in contributions.items() if k != "detail" and abs(v) >= 0.005]
    parts.append(f"LR consistency {f.lr_consistency:.1f} dB")
    text = "; ".join(parts)
    if outlier:
        text += f"; structure disagrees with the other candidates (distance {dist:.2f}): score halved"
    if f.lr_consistency < floor:
        text += f"; contradicts its LR input (below {floor:g} dB): score halved"
    return text


@register_judge(
    "trust",
    "Offline default: natural detail beyond bicubic, grid/JPEG/noise artifacts, LR-contradiction gate, "
    "consensus veto.",
    options=OPTIONS,
    needs_lr=True,
)
def _make_trust(spec: Spec) -> Judge:
    retired = sorted(set(spec.options) & set(RETIRED_OPTIONS))
    if retired:
        raise SpecError(
            "trust 2 no longer takes "
            + "; ".join(f"{k} ({RETIRED_OPTIONS[k]})" for k in retired)
            + ". See the trust migration note in the README."
        )
    if spec.arg is not None:
        raise SpecError(f"trust takes key=value options only; got {spec.arg!r}.")
    return TrustJudge(**coerce_options(spec, OPTIONS, kind="judge"))
