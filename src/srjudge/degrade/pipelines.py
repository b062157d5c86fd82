"""Degradation pipelines: each samples a complete list of steps from a seeded generator.

A pipeline never touches pixels; it only decides what will be done to an image of a given size, so
the decision can be stored and replayed (see :mod:`srjudge.degrade.ops`). The parameter ranges are the
published ones; the code is written from the papers' descriptions.

* ``realesrgan``: the second-order pipeline of Real-ESRGAN (Wang et al., 2021), with the ranges of
  its ``train_realesrgan_x4plus`` configuration.
* ``face``: a milder one-stage pipeline in the style of blind face restoration papers
  (blur, random resize, noise, second blur, JPEG).
* ``bicubic``: MATLAB-style bicubic downsampling, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from srjudge.degrade.kernels import GAUSSIAN_KERNELS
from srjudge.degrade.ops import JPEG_ENCODER, RESIZE_MODES
from srjudge.degrade.record import Step
from srjudge.registry import Registry

Size = tuple[int, int]


@dataclass(frozen=True)
class BlurRanges:
    """Sampling ranges for one blur stage."""

    sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    types: tuple[str, ...] = GAUSSIAN_KERNELS
    type_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1


@dataclass(frozen=True)
class ResizeRanges:
    """Sampling ranges for one random resize (factor relative to the stage's reference size)."""

    probs: tuple[float, float, float]  # up, down, keep
    factor: tuple[float, float]
    modes: tuple[str, ...] = tuple(RESIZE_MODES)


@dataclass(frozen=True)
class NoiseRanges:
    """Sampling ranges for one noise stage (Gaussian sigma in 0..255 units)."""

    gaussian_prob: float
    sigma: tuple[float, float]
    poisson_scale: tuple[float, float]
    gray_prob: float = 0.4


# Real-ESRGAN train_realesrgan_x4plus.yml ranges.
REALESRGAN_BLUR1 = BlurRanges(sigma=(0.2, 3.0))
REALESRGAN_BLUR2 = BlurRanges(sigma=(0.2, 1.5))
REALESRGAN_BLUR2_PROB = 0.8
REALESRGAN_RESIZE1 = ResizeRanges(probs=(0.2, 0.7, 0.1), factor=(0.15, 1.5))
REALESRGAN_RESIZE2 = ResizeRanges(probs=(0.3, 0.4, 0.3), factor=(0.3, 1.2))
REALESRGAN_NOISE1 = NoiseRanges(gaussian_prob=0.5, sigma=(1.0, 30.0), poisson_scale=(0.05, 3.0))
REALESRGAN_NOISE2 = NoiseRanges(gaussian_prob=0.5, sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5))
REALESRGAN_JPEG = (30, 95)
REALESRGAN_FINAL_SINC_PROB = 0.8
REALESRGAN_FINAL_OMEGA = (math.pi / 3, math.pi)

# Face pipeline ranges. The up/down/keep probabilities, the Poisson scale range and the gray-noise
# probability are not given by the face papers; these values are this package's choice.
FACE_BLUR = BlurRanges(sizes=(7, 9, 11), types=("aniso",), type_probs=(1.0,), sigma=(0.2, 3.0), sinc_prob=0.0)
FACE_RESIZE = ResizeRanges(probs=(1 / 3, 1 / 3, 1 / 3), factor=(0.5, 2.0))
FACE_NOISE = NoiseRanges(gaussian_prob=0.5, sigma=(0.0, 15.0), poisson_scale=(0.05, 2.0), gray_prob=0.4)
FACE_JPEG = (30, 90)

FINAL_ORDERS = ("resize_sinc_jpeg", "jpeg_resize_sinc")


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _pick(rng: np.random.Generator, options: Sequence[str], probs: Sequence[float] | None = None) -> str:
    return options[int(rng.choice(len(options), p=None if probs is None else list(probs)))]


def _noise_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


def sinc_omega_range(size: int) -> tuple[float, float]:
    """Cutoff range for a stage sinc kernel: a wider band for small kernels, as in Real-ESRGAN."""
    return (math.pi / 3, math.pi) if size < 13 else (math.pi / 5, math.pi)


def sample_blur(rng: np.random.Generator, name: str, ranges: BlurRanges) -> Step:
    """A blur step: sinc with ``sinc_prob``, else one of the Gaussian-family kernels."""
    size = int(ranges.sizes[int(rng.integers(len(ranges.sizes)))])
    if ranges.sinc_prob > 0 and rng.random() < ranges.sinc_prob:
        return {
            "name": name,
            "op": "blur",
            "kernel": "sinc",
            "size": size,
            "omega_c": _uniform(rng, sinc_omega_range(size)),
        }
    kind = _pick(rng, ranges.types, ranges.type_probs)
    step: Step = {"name": name, "op": "blur", "kernel": kind, "size": size}
    if kind.endswith("aniso"):
        step["sigma_x"] = _uniform(rng, ranges.sigma)
        step["sigma_y"] = _uniform(rng, ranges.sigma)
        step["theta"] = _uniform(rng, (-math.pi, math.pi))
    else:
        sigma = _uniform(rng, ranges.sigma)
        step["sigma_x"] = step["sigma_y"] = sigma
        step["theta"] = 0.0
    if kind.startswith("generalized"):
        step["beta"] = _uniform(rng, ranges.beta_generalized)
    elif kind.startswith("plateau"):
        step["beta"] = _uniform(rng, ranges.beta_plateau)
    return step


def sample_resize(rng: np.random.Generator, name: str, ranges: ResizeRanges, reference: Size) -> Step:
    """A random resize of ``reference`` (height, width) up, down or not at all."""
    direction = _pick(rng, ("up", "down", "keep"), ranges.probs)
    if direction == "up":
        factor = _uniform(rng, (1.0, ranges.factor[1]))
    elif direction == "down":
        factor = _uniform(rng, (ranges.factor[0], 1.0))
    else:
        factor = 1.0
    mode = _pick(rng, ranges.modes)
    size = [max(1, int(reference[0] * factor)), max(1, int(reference[1] * factor))]
    return {
        "name": name,
        "op": "resize",
        "direction": direction,
        "factor": factor,
        "mode": mode,
        "size": size,
    }


def sample_target_resize(rng: np.random.Generator, name: str, target: Size) -> Step:
    """A resize to the final LR size with a randomly chosen mode."""
    mode = _pick(rng, tuple(RESIZE_MODES))
    return {
        "name": name,
        "op": "resize",
        "direction": "target",
        "factor": None,
        "mode": mode,
        "size": [target[0], target[1]],
    }


def sample_noise(rng: np.random.Generator, name: str, ranges: NoiseRanges) -> Step:
    """Gaussian (with ``gaussian_prob``) or Poisson noise, gray with ``gray_prob``, with its own seed."""
    if rng.random() < ranges.gaussian_prob:
        step: Step = {"name": name, "op": "noise", "type": "gaussian", "sigma": _uniform(rng, ranges.sigma)}
    else:
        step = {"name": name, "op": "noise", "type": "poisson", "scale": _uniform(rng, ranges.poisson_scale)}
    step["gray"] = bool(rng.random() < ranges.gray_prob)
    step["noise_seed"] = _noise_seed(rng)
    return step


def sample_jpeg(rng: np.random.Generator, name: str, quality: tuple[int, int]) -> Step:
    """JPEG round trip at an integer quality drawn uniformly from ``quality`` (inclusive)."""
    q = int(rng.integers(quality[0], quality[1] + 1))
    return {"name": name, "op": "jpeg", "quality": q, "encoder": JPEG_ENCODER, "subsampling": "4:2:0"}


def plan_realesrgan(rng: np.random.Generator, hr: Size, scale: int) -> list[Step]:
    """Real-ESRGAN second-order degradation: two stages of blur, resize, noise, JPEG, then the final step."""
    lr = (hr[0] // scale, hr[1] // scale)
    steps = [
        sample_blur(rng, "blur1", REALESRGAN_BLUR1),
        sample_resize(rng, "resize1", REALESRGAN_RESIZE1, hr),
        sample_noise(rng, "noise1", REALESRGAN_NOISE1),
        sample_jpeg(rng, "jpeg1", REALESRGAN_JPEG),
    ]
    if rng.random() < REALESRGAN_BLUR2_PROB:
        steps.append(sample_blur(rng, "blur2", REALESRGAN_BLUR2))
    else:
        steps.append({"name": "blur2", "op": "blur", "kernel": "none"})
    steps += [
        # Stage-2 resize factors are relative to the final LR size, as in the reference pipeline.
        sample_resize(rng, "resize2", REALESRGAN_RESIZE2, lr),
        sample_noise(rng, "noise2", REALESRGAN_NOISE2),
        sample_jpeg(rng, "jpeg2", REALESRGAN_JPEG),
    ]
    order = FINAL_ORDERS[0] if rng.random() < 0.5 else FINAL_ORDERS[1]
    resize_final = sample_target_resize(rng, "resize_final", lr)
    if rng.random() < REALESRGAN_FINAL_SINC_PROB:
        size = int(REALESRGAN_BLUR1.sizes[int(rng.integers(len(REALESRGAN_BLUR1.sizes)))])
        sinc: Step = {
            "name": "sinc_final",
            "op": "blur",
            "kernel": "sinc",
            "size": size,
            "omega_c": _uniform(rng, REALESRGAN_FINAL_OMEGA),
        }
    else:
        sinc = {"name": "sinc_final", "op": "blur", "kernel": "pulse", "size": 21}
    jpeg_final = sample_jpeg(rng, "jpeg_final", REALESRGAN_JPEG)
    steps.append({"name": "final_order", "op": "choice", "order": order})
    if order == "resize_sinc_jpeg":
        steps += [resize_final, sinc, jpeg_final]
    else:
        steps += [jpeg_final, resize_final, sinc]
    return steps


def plan_face(rng: np.random.Generator, hr: Size, scale: int) -> list[Step]:
    """Milder one-stage pipeline: anisotropic blur, random resize, resize to target, noise, blur, JPEG."""
    lr = (hr[0] // scale, hr[1] // scale)
    return [
        sample_blur(rng, "blur1", FACE_BLUR),
        sample_resize(rng, "resize1", FACE_RESIZE, hr),
        sample_target_resize(rng, "resize_target", lr),
        sample_noise(rng, "noise1", FACE_NOISE),
        sample_blur(rng, "blur2", FACE_BLUR),
        sample_jpeg(rng, "jpeg1", FACE_JPEG),
    ]


def plan_bicubic(rng: np.random.Generator, hr: Size, scale: int) -> list[Step]:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')``; draws nothing from ``rng``."""
    return [{"name": "bicubic", "op": "bicubic", "size": [hr[0] // scale, hr[1] // scale]}]


@dataclass(frozen=True)
class Pipeline:
    """A named degradation pipeline: ``plan(rng, (H, W), scale)`` returns the steps to apply."""

    name: str
    description: str
    plan: Callable[[np.random.Generator, Size, int], list[Step]]
    step_names: tuple[tuple[str, str], ...]
    """(step name, op) of every step it can emit, in a stable order (used for table columns)."""


PIPELINES: Registry[Pipeline] = Registry("degradation pipeline")
"""The registered pipelines: ``realesrgan``, ``face``, ``bicubic``."""

PIPELINES.add(
    Pipeline(
        "realesrgan",
        "Real-ESRGAN second-order degradation: blur, resize, noise, JPEG twice; then resize + sinc, JPEG.",
        plan_realesrgan,
        (
            ("blur1", "blur"),
            ("resize1", "resize"),
            ("noise1", "noise"),
            ("jpeg1", "jpeg"),
            ("blur2", "blur"),
            ("resize2", "resize"),
            ("noise2", "noise"),
            ("jpeg2", "jpeg"),
            ("final_order", "choice"),
            ("resize_final", "resize"),
            ("sinc_final", "blur"),
            ("jpeg_final", "jpeg"),
        ),
    ),
    aliases=("real-esrgan", "real_esrgan"),
)
PIPELINES.add(
    Pipeline(
        "face",
        "Milder one-stage face degradation: anisotropic blur, random resize, noise, second blur, JPEG.",
        plan_face,
        (
            ("blur1", "blur"),
            ("resize1", "resize"),
            ("resize_target", "resize"),
            ("noise1", "noise"),
            ("blur2", "blur"),
            ("jpeg1", "jpeg"),
        ),
    ),
)
PIPELINES.add(
    Pipeline(
        "bicubic",
        "MATLAB-style antialiased bicubic downsampling; deterministic.",
        plan_bicubic,
        (("bicubic", "bicubic"),),
    ),
)
