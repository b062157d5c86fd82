"""``diffusion`` / ``diffusion:PATH``: a small LR-conditioned pixel-space diffusion model for x4 glyph SR.

This is the generative SR model of the glyph testbed (issue 8): from one ambiguous 8x8 LR glyph it draws
many plausible 32x32 HR glyphs, and at high severity some of them show the wrong symbol (a 3 becomes an
8), which is what the judges must catch.

Model: a diffusers ``UNet2DModel`` (in_channels=2, out_channels=1) denoises the grayscale HR image,
with the LR upsampled by MATLAB bicubic (:func:`srjudge.images.resize.imresize`) to the HR size as the
second input channel. Images are scaled to [-1, 1]. Sampling is DDIM: the timesteps and noise levels
come from a ``DDIMScheduler`` built from the saved training scheduler config (``trailing`` spacing, so
the first step starts from pure noise); the update is DDIM's, written out in :func:`_ddim_update`
because diffusers' ``step`` returns NaN at eta=1 on the zero-SNR first step of a cosine schedule.

Spec: ``diffusion`` loads the bundled checkpoint (``srjudge/data/testbed/diffusion-x4``);
``diffusion:PATH`` loads a folder with the same layout (what :func:`save_checkpoint` writes)::

    unet/config.json  unet/diffusion_pytorch_model.safetensors  scheduler/scheduler_config.json
    srjudge_diffusion.json   (the training record: optional for loading, recorded in settings)

Options: ``steps`` (DDIM steps, default :data:`DEFAULT_STEPS`), ``eta`` (0 = deterministic DDIM given
the start noise, 1 = DDPM-like ancestral noise; default :data:`DEFAULT_ETA`), ``device`` (cpu, cuda,
cuda:N; default cpu).

Inputs: RGB float arrays in [0, 1]. The model is grayscale: the three channels are averaged (the glyph
testbed's images are gray replicated to RGB) and the output gray is replicated back to RGB, rounded to
8-bit levels. Scale 4 only. The network is fully convolutional and halves its input twice, so any LR
side from :data:`MIN_LR_SIDE` to :data:`MAX_LR_SIDE` is accepted; it was trained on 8x8 LR only.

Noise: sample ``i`` draws all its noise (the start image and every DDIM step's noise) from its own
``torch.Generator().manual_seed(seed_i)`` on the CPU, so a seed gives the same image on every call, in
any batch, and different seeds give different samples.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge import atomic
from srjudge.errors import ImageError, MissingWeightsError, SpecError
from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize
from srjudge.provenance import file_sha256
from srjudge.spec import Spec, coerce_options
from srjudge.sr.base import SRBackend, register_sr_backend
from srjudge.sr.diffusion import read_json_object

if TYPE_CHECKING:
    import torch

SCALE = 4
MIN_LR_SIDE = 4
MAX_LR_SIDE = 32
DEFAULT_STEPS = 25
DEFAULT_ETA = 1.0
MAX_STEPS = 1000
FORMAT = "srjudge-conditional-diffusion-sr"
FORMAT_VERSION = 1
UNET_DIR = "unet"
SCHEDULER_DIR = "scheduler"
RECORD_NAME = "srjudge_diffusion.json"
UNET_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
SCHEDULER_FILE = "scheduler_config.json"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "testbed" / "diffusion-x4"
"""The bundled checkpoint (made by ``scripts/train_testbed_diffusion.py``)."""

_SCHEMA: dict[str, tuple[type, object]] = {
    "steps": (int, DEFAULT_STEPS),
    "eta": (float, DEFAULT_ETA),
    "device": (str, "cpu"),
}
_LAYOUT_HINT = (
    "A diffusion SR folder holds unet/config.json and unet/diffusion_pytorch_model.safetensors "
    "(UNet2DModel.save_pretrained) and scheduler/scheduler_config.json (DDPMScheduler.save_pretrained), "
    "as srjudge.sr.conditional_diffusion.save_checkpoint writes them; "
    "scripts/train_testbed_diffusion.py trains and writes one."
)


# ----------------------------------------------------------------------------------------------------
# Pure helpers shared with the trainer (srjudge.train.diffusion_sr)
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UNetSettings:
    """The architecture of the conditional UNet (diffusers ``UNet2DModel``).

    ``block_out_channels[i]`` channels at resolution HR / 2**i; ``attention`` puts self-attention in the
    last (lowest-resolution) down block, its up block and the mid block.
    """

    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention: bool = True
    norm_num_groups: int = 8
    attention_head_dim: int = 32
    sample_size: int = 32

    def __post_init__(self) -> None:
        if len(self.block_out_channels) < 2 or any(c < 1 for c in self.block_out_channels):
            raise SpecError(
                f"block_out_channels must list >= 2 positive widths, got {self.block_out_channels}"
            )
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise SpecError(
                f"every block width must be divisible by norm_num_groups={self.norm_num_groups}, "
                f"got {self.block_out_channels}"
            )
        if self.layers_per_block < 1:
            raise SpecError(f"layers_per_block must be >= 1, got {self.layers_per_block}")

    def unet_config(self) -> dict[str, Any]:
        """Keyword arguments of ``UNet2DModel``."""
        n = len(self.block_out_channels)
        down = ["DownBlock2D"] * n
        up = ["UpBlock2D"] * n
        if self.attention:
            down[-1] = "AttnDownBlock2D"
            up[0] = "AttnUpBlock2D"
        return {
            "sample_size": self.sample_size,
            "in_channels": 2,
            "out_channels": 1,
            "block_out_channels": tuple(self.block_out_channels),
            "layers_per_block": self.layers_per_block,
            "down_block_types": tuple(down),
            "up_block_types": tuple(up),
            "norm_num_groups": self.norm_num_groups,
            "attention_head_dim": self.attention_head_dim,
            "add_attention": self.attention,
        }


def build_unet(settings: UNetSettings, *, seed: int = 0) -> Any:
    """A freshly initialised ``UNet2DModel`` (weights drawn under ``torch.manual_seed(seed)``)."""
    import torch
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DModel(**settings.unet_config())


def scheduler_config(
    *,
    prediction_type: str = "v_prediction",
    beta_schedule: str = "squaredcos_cap_v2",
    num_train_timesteps: int = 1000,
) -> dict[str, Any]:
    """Keyword arguments of the training ``DDPMScheduler`` (DDIM sampling reuses them)."""
    if prediction_type not in ("epsilon", "v_prediction"):
        raise SpecError(f"prediction_type must be epsilon or v_prediction, got {prediction_type!r}")
    if beta_schedule not in ("squaredcos_cap_v2", "linear", "scaled_linear"):
        raise SpecError(
            f"beta_schedule must be squaredcos_cap_v2, linear or scaled_linear, got {beta_schedule!r}"
        )
    return {
        "num_train_timesteps": int(num_train_timesteps),
        "beta_schedule": beta_schedule,
        "prediction_type": prediction_type,
        "clip_sample": True,
        "clip_sample_range": 1.0,
        "timestep_spacing": "trailing",
    }


def ddim_scheduler(config: Mapping[str, Any]) -> Any:
    """A ``DDIMScheduler`` from a (DDPM) scheduler config: only the keys DDIM understands are passed."""
    import inspect

    from diffusers import DDIMScheduler

    accepted = set(inspect.signature(DDIMScheduler.__init__).parameters) - {"self"}
    kwargs = {k: v for k, v in config.items() if k in accepted}
    kwargs["set_alpha_to_one"] = True  # the last step returns the predicted clean image
    return DDIMScheduler(**kwargs)


def to_gray(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) RGB -> (..., H, W) gray: the channel mean (exact for gray replicated to RGB)."""
    gray: np.ndarray = np.asarray(images, dtype=np.float32).mean(axis=-1)
    return gray


def upsample_condition(lr_gray: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """(B, h, w) gray LR in [0, 1] -> (B, h*scale, w*scale) MATLAB-bicubic upsampled, clipped to [0, 1]."""
    b, h, w = lr_gray.shape
    if b == 0:
        return np.zeros((0, h * scale, w * scale), np.float32)
    stacked = np.ascontiguousarray(np.transpose(lr_gray, (1, 2, 0)), dtype=np.float64)
    up = imresize(stacked, output_shape=(h * scale, w * scale))
    if up.ndim == 2:
        up = up[:, :, None]
    return np.clip(np.transpose(up, (2, 0, 1)), 0.0, 1.0).astype(np.float32)


def condition_tensor(lrs: np.ndarray) -> torch.Tensor:
    """(B, h, w, 3) RGB LR in [0, 1] -> (B, 1, 4h, 4w) float32 conditioning tensor in [-1, 1]."""
    import torch

    up = upsample_condition(to_gray(lrs))
    return torch.from_numpy(up[:, None] * 2.0 - 1.0)


def hr_tensor(hrs: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) RGB HR in [0, 1] -> (B, 1, H, W) float32 in [-1, 1] (the diffusion target)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(to_gray(hrs)[:, None] * 2.0 - 1.0, dtype=np.float32))


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """(B, 1, H, W) in [-1, 1] -> (B, H, W, 3) float32 RGB in [0, 1] at 8-bit levels."""
    gray = ((x.detach().float().cpu().numpy()[:, 0] + 1.0) / 2.0).clip(0.0, 1.0)
    return quantize_8bit(np.repeat(gray[..., None], 3, axis=-1))


def ddim_sample(
    unet: Any,
    config: Mapping[str, Any],
    cond: torch.Tensor,
    seeds: Sequence[int],
    *,
    steps: int = DEFAULT_STEPS,
    eta: float = DEFAULT_ETA,
) -> torch.Tensor:
    """DDIM sampling of one HR image per row of ``cond`` (B, 1, H, W), one forward pass per step.

    Row ``i`` draws its start noise and its per-step noise from a CPU generator seeded with
    ``seeds[i]``, so its result does not depend on the other rows. Returns (B, 1, H, W) in [-1, 1].
    """
    import torch

    if len(seeds) != cond.shape[0]:
        raise SpecError(f"ddim_sample: {len(seeds)} seeds for {cond.shape[0]} conditioning images")
    device = next(unet.parameters()).device
    scheduler = ddim_scheduler(config)
    scheduler.set_timesteps(int(steps))
    shape = (1, 1, int(cond.shape[2]), int(cond.shape[3]))
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]

    def noise() -> torch.Tensor:
        return torch.cat([torch.randn(shape, generator=g) for g in generators]).to(device)

    cond = cond.to(device)
    x = noise()
    acp = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    jump = int(config.get("num_train_timesteps", 1000)) // int(steps)
    v_pred = config.get("prediction_type") == "v_prediction"
    with torch.inference_mode():
        for t in scheduler.timesteps.tolist():
            tt = torch.full((x.shape[0],), int(t), device=device, dtype=torch.long)
            out = unet(torch.cat([x, cond], dim=1), tt).sample
            x = _ddim_update(
                x, out, acp, int(t), int(t) - jump, float(eta), v_pred, noise if eta > 0 else None
            )
    return x.clamp(-1.0, 1.0)


def _ddim_update(
    x: torch.Tensor,
    out: torch.Tensor,
    acp: torch.Tensor,
    t: int,
    prev: int,
    eta: float,
    v_pred: bool,
    noise: Callable[[], torch.Tensor] | None,
) -> torch.Tensor:
    """One DDIM step: :func:`ddim_step_mean` plus ``std * noise()`` (no noise when ``noise`` is None)."""
    mean, std = ddim_step_mean(x, out, acp, t, prev, eta, v_pred)
    if noise is not None:
        return mean + std * noise()
    return mean


def ddim_step_mean(
    x: torch.Tensor,
    out: torch.Tensor,
    acp: torch.Tensor,
    t: int,
    prev: int,
    eta: float,
    v_pred: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the standard deviation of one DDIM step's Gaussian ``p(x_prev | x_t)``.

    DDIM (Song et al. 2021, eqs. 12 and 16), as diffusers' ``DDIMScheduler.step`` with
    ``set_alpha_to_one`` and x0 clipped to [-1, 1], except that the square root of the direction term
    is taken of a value clamped at 0: with eta=1 at the first (zero-SNR) step it is 0 up to rounding,
    and diffusers' step then returns NaN. The std does not depend on the model (only on t, prev and
    eta), which is what makes the step's log-probability a policy for alignment
    (:mod:`srjudge.train.align`); at the last step (``prev < 0``) it is 0: that step is deterministic.
    """
    import torch

    a_t = acp[t]
    a_prev = acp[prev] if prev >= 0 else torch.ones((), dtype=acp.dtype, device=acp.device)
    if v_pred:
        x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * out
        eps = a_t.sqrt() * out + (1 - a_t).sqrt() * x
    else:
        eps = out
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    x0 = x0.clamp(-1.0, 1.0)
    variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    std = eta * variance.clamp(min=0).sqrt()
    direction = (1 - a_prev - std**2).clamp(min=0).sqrt() * eps
    return a_prev.sqrt() * x0 + direction, std


# ----------------------------------------------------------------------------------------------------
# Checkpoint folder I/O
# ----------------------------------------------------------------------------------------------------


def missing_files(folder: Path) -> list[str]:
    """The required files of a checkpoint folder that are absent (relative paths; empty when complete)."""
    required = [f"{UNET_DIR}/{name}" for name in UNET_FILES] + [f"{SCHEDULER_DIR}/{SCHEDULER_FILE}"]
    return [rel for rel in required if not (folder / rel).is_file()]


def check_folder(folder: Path) -> None:
    """Raise :class:`MissingWeightsError` naming what is missing unless ``folder`` is a full checkpoint."""
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        extra = (
            " It is the bundled checkpoint: reinstall srjudge or rebuild it with "
            "`python scripts/train_testbed_diffusion.py`."
            if folder.resolve() == BUNDLED_DIR
            else ""
        )
        raise MissingWeightsError(
            f"diffusion backend: the checkpoint folder {str(folder)!r} {what}.{extra} {_LAYOUT_HINT}"
        )
    missing = missing_files(folder)
    if missing:
        raise MissingWeightsError(
            f"diffusion backend: the checkpoint folder {str(folder)!r} is incomplete: missing "
            f"{', '.join(missing)}. {_LAYOUT_HINT}"
        )


def save_checkpoint(
    folder: str | os.PathLike[str],
    unet: Any,
    config: Mapping[str, Any],
    record: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``unet`` (safetensors), the scheduler config and the record (if given) into ``folder``."""
    from diffusers import DDPMScheduler

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(str(out / UNET_DIR), safe_serialization=True)
    scheduler: Any = DDPMScheduler(**dict(config))
    scheduler.save_pretrained(str(out / SCHEDULER_DIR))
    if record is not None:
        atomic.write_json(out / RECORD_NAME, dict(record))
    return out


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, backend="diffusion", hint=_LAYOUT_HINT)


@dataclass
class _Loaded:
    unet: Any
    config: dict[str, Any]
    device: Any


_CACHE: dict[tuple[str, str, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget every loaded model."""
    with _CACHE_LOCK:
        _CACHE.clear()


def load_model(folder: Path, device: str = "cpu") -> tuple[Any, dict[str, Any], Any]:
    """(unet in eval mode on ``device``, scheduler config, torch device); cached per folder and digest."""
    check_folder(folder)
    digest = file_sha256(folder / UNET_DIR / UNET_FILES[1])
    key = (str(folder.resolve()), digest, device)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            cached = _load(folder, device)
            _CACHE[key] = cached
    return cached.unet, cached.config, cached.device


def _load(folder: Path, device_name: str) -> _Loaded:
    from diffusers import UNet2DModel

    from srjudge.models.tensors import resolve_device

    os.environ["HF_HUB_OFFLINE"] = "1"
    device = resolve_device(device_name)
    unet_config = _read_json(folder / UNET_DIR / UNET_FILES[0])
    if unet_config.get("in_channels") != 2 or unet_config.get("out_channels") != 1:
        raise MissingWeightsError(
            f"diffusion backend: {str(folder / UNET_DIR)!r} holds a UNet with in_channels="
            f"{unet_config.get('in_channels')} and out_channels={unet_config.get('out_channels')}; "
            f"this backend needs in_channels=2 (noisy HR + upsampled LR) and out_channels=1. {_LAYOUT_HINT}"
        )
    config = _read_json(folder / SCHEDULER_DIR / SCHEDULER_FILE)
    if config.get("prediction_type") not in ("epsilon", "v_prediction"):
        raise MissingWeightsError(
            f"diffusion backend: {str(folder / SCHEDULER_DIR / SCHEDULER_FILE)!r} has prediction_type="
            f"{config.get('prediction_type')!r}; epsilon or v_prediction is needed."
        )
    try:
        unet = UNet2DModel.from_pretrained(str(folder / UNET_DIR), local_files_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise MissingWeightsError(
            f"diffusion backend: could not load the UNet from {str(folder / UNET_DIR)!r} "
            f"({type(exc).__name__}: {first}). {_LAYOUT_HINT}"
        ) from None
    unet = unet.to(device).eval()
    return _Loaded(unet, {k: v for k, v in config.items() if not k.startswith("_")}, device)


# ----------------------------------------------------------------------------------------------------
# The backend
# ----------------------------------------------------------------------------------------------------


def check_lr_batch(lrs: np.ndarray) -> np.ndarray:
    """A (B, h, w, 3) float32 batch in [0, 1] with accepted LR sides; anything else raises ImageError."""
    array = np.asarray(lrs)
    if array.ndim != 4 or array.shape[3] != 3:
        raise ImageError(
            f"diffusion backend: LR images must be (B, h, w, 3) RGB arrays (or one h x w x 3 image); "
            f"got shape {array.shape}."
        )
    h, w = array.shape[1:3]
    if not (MIN_LR_SIDE <= h <= MAX_LR_SIDE and MIN_LR_SIDE <= w <= MAX_LR_SIDE):
        raise ImageError(
            f"diffusion backend: LR size {w}x{h} is not accepted: each side must be in "
            f"{MIN_LR_SIDE}..{MAX_LR_SIDE} pixels (the model is trained on 8x8 glyphs; output is x4)."
        )
    data = array.astype(np.float32)
    if not np.isfinite(data).all() or data.min() < 0.0 or data.max() > 1.0:
        raise ImageError(
            "diffusion backend: LR values must be finite and in [0, 1] (srjudge's canonical float images); "
            f"got min {float(np.nanmin(data)):.4g}, max {float(np.nanmax(data)):.4g}."
        )
    return data


class ConditionalDiffusionSR(SRBackend):
    """Stochastic x4 SR by a small LR-conditioned DDIM-sampled UNet (grayscale glyph model)."""

    family = "diffusion"
    stochastic = True
    scales = (SCALE,)

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        steps: int = DEFAULT_STEPS,
        eta: float = DEFAULT_ETA,
        device: str = "cpu",
    ) -> None:
        self.folder = Path(folder).expanduser()
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise SpecError(f"diffusion backend: steps must be an integer in 1..{MAX_STEPS}, got {steps!r}.")
        if not (0.0 <= float(eta) <= 1.0):
            raise SpecError(
                f"diffusion backend: eta must be in [0, 1] (0 = DDIM, 1 = DDPM-like), got {eta!r}."
            )
        self.steps = int(steps)
        self.eta = float(eta)
        self.device = str(device).strip().lower() or "cpu"
        check_folder(self.folder)
        self._digest: str | None = None
        self.bundled = self.folder.resolve() == BUNDLED_DIR
        self.spec = "diffusion" if self.bundled else f"diffusion:{self.folder}"

    def model(self) -> tuple[Any, dict[str, Any]]:
        """The loaded UNet and its scheduler config (loaded once per folder, weights and device)."""
        unet, config, _ = load_model(self.folder, self.device)
        return unet, config

    def sample_batch(
        self,
        lrs: np.ndarray,
        seeds: Sequence[int],
        steps: int | None = None,
        *,
        eta: float | None = None,
    ) -> np.ndarray:
        """Batched SR on one array: (B, h, w, 3) LR -> (B, 4h, 4w, 3), row ``i`` drawn with ``seeds[i]``.

        ``steps``/``eta`` default to the backend's options. One forward pass per DDIM step for the batch.
        """
        data = check_lr_batch(lrs)
        seed_list = [int(s) for s in seeds]
        if len(seed_list) != data.shape[0]:
            raise SpecError(f"diffusion backend: {len(seed_list)} seeds for {data.shape[0]} LR images.")
        n_steps = self.steps if steps is None else int(steps)
        if not 1 <= n_steps <= MAX_STEPS:
            raise SpecError(f"diffusion backend: steps must be in 1..{MAX_STEPS}, got {steps!r}.")
        if data.shape[0] == 0:
            h, w = data.shape[1:3]
            return np.zeros((0, h * SCALE, w * SCALE, 3), np.float32)
        unet, config = self.model()
        x = ddim_sample(
            unet,
            config,
            condition_tensor(data),
            seed_list,
            steps=n_steps,
            eta=self.eta if eta is None else eta,
        )
        return tensor_to_images(x)

    def sample(
        self, lrs: Sequence[np.ndarray], *, scale: int, seeds: Sequence[int | None]
    ) -> list[np.ndarray]:
        """One x4 sample per (LR, seed) pair (a None seed means 0); LR images of one size go in one batch."""
        self._check_scale(scale)
        if len(seeds) != len(lrs):
            raise SpecError(f"diffusion backend: {len(seeds)} seeds for {len(lrs)} LR images.")
        arrays = [np.asarray(lr) for lr in lrs]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, array in enumerate(arrays):
            by_shape.setdefault(array.shape, []).append(i)
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(arrays)
        for members in by_shape.values():
            images = self.sample_batch(
                np.stack([arrays[i] for i in members]), [int(seeds[i] or 0) for i in members]
            )
            for i, image in zip(members, images, strict=True):
                out[i] = image
        return out

    def upscale(self, lr: np.ndarray, *, scale: int = SCALE, seed: int | None = None) -> np.ndarray:
        """One x4 sample for ``seed`` (None means 0)."""
        self._check_scale(scale)
        sample: np.ndarray = self.sample_batch(np.asarray(lr)[None], [int(seed or 0)])[0]
        return sample

    def _check_scale(self, scale: object) -> None:
        if isinstance(scale, bool) or scale != SCALE:
            raise SpecError(
                f"diffusion backend: scale {scale!r} is not supported; this model upscales by {SCALE} only."
            )

    def weights_digest(self) -> str:
        """sha256 of the UNet weights file (computed once per backend)."""
        if self._digest is None:
            self._digest = file_sha256(self.folder / UNET_DIR / UNET_FILES[1])
        return self._digest

    def settings(self) -> dict[str, Any]:
        record = self.folder / RECORD_NAME
        return {
            "steps": self.steps,
            "eta": self.eta,
            "device": self.device,
            "sampler": "ddim",
            "folder": "bundled:diffusion-x4" if self.bundled else str(self.folder),
            "weights_sha256": self.weights_digest(),
            "record_sha256": hashlib.sha256(record.read_bytes()).hexdigest() if record.is_file() else None,
        }


@register_sr_backend(
    "diffusion",
    "LR-conditioned pixel diffusion SR (the bundled glyph testbed model, or a folder): seeded samples.",
    options=_SCHEMA,
    arg="model folder (default: the bundled testbed model)",
)
def _factory(spec: Spec) -> SRBackend:
    options = coerce_options(spec, _SCHEMA, kind="SR backend")
    folder = Path(spec.arg) if spec.arg else BUNDLED_DIR
    backend = ConditionalDiffusionSR(
        folder,
        steps=int(options.get("steps", DEFAULT_STEPS)),
        eta=float(options.get("eta", DEFAULT_ETA)),
        device=str(options.get("device", "cpu")),
    )
    backend.spec = str(spec)
    return backend
