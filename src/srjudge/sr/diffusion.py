"""``diffusers:/path/to/folder``: generative x4 SR with a local Hugging Face ``diffusers`` pipeline.

The folder is what ``pipeline.save_pretrained(folder)`` writes: ``model_index.json`` plus one
sub-folder per component. Two pipelines are supported, both x4:

* ``sd-x4``: ``StableDiffusionUpscalePipeline`` (e.g. stable-diffusion-x4-upscaler): text-conditioned,
  options ``steps`` (default 50), ``guidance`` (classifier-free guidance scale, default 9.0; 1 or
  less turns guidance off), ``noise_level`` (noise added to the LR input, default 20, at most the
  pipeline's ``max_noise_level``) and ``prompt`` (default empty; spec options are comma-separated,
  so a prompt cannot hold a comma).
* ``ldm``: ``LDMSuperResolutionPipeline`` (e.g. ldm-super-resolution-4x-openimages): option
  ``steps`` (default 100).

``pipeline=auto`` (the default) reads ``_class_name`` from ``model_index.json``. Common options:
``device`` (cpu, cuda, cuda:N; default cpu) and ``dtype`` (float32, or float16 on CUDA only).

Each call draws its noise from ``torch.Generator(device).manual_seed(seed)``, so one seed on one
device always gives the same image and different seeds give different samples (the point of
sampling candidates). Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set and every load passes
``local_files_only=True``.

Sizes: both pipelines denoise latents at the LR resolution and decode them at 4x, and their UNets
halve the latents once per down block, so the LR side must be a multiple of ``2**(down blocks - 1)``
(8 for the released x4 models); the x4 upscaler's image processor also rounds the LR down to a
multiple of its VAE factor (4), which would be a silent resize. The LR is therefore padded at the
bottom and right by reflection to the least common multiple, and the output is cropped back to
exactly 4x the original LR size. Nothing is resized.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from srjudge.errors import ImageError, MissingDependencyError, MissingWeightsError, SpecError
from srjudge.images.io import quantize_8bit
from srjudge.models._deps import TORCH_PIN, import_extra
from srjudge.spec import Spec, coerce_options
from srjudge.sr.base import SRBackend, register_sr_backend, require_arg

PIPELINE_CLASSES: dict[str, str] = {
    "sd-x4": "StableDiffusionUpscalePipeline",
    "ldm": "LDMSuperResolutionPipeline",
}
"""Pipeline kinds and the diffusers class each one loads."""

DEFAULT_STEPS: dict[str, int] = {"sd-x4": 50, "ldm": 100}
DEFAULT_GUIDANCE = 9.0
DEFAULT_NOISE_LEVEL = 20
DEFAULT_MAX_NOISE_LEVEL = 350
SCALE = 4

_SCHEMA: dict[str, tuple[type, object]] = {
    "pipeline": (str, None),
    "steps": (int, None),
    "guidance": (float, 9.0),
    "noise_level": (int, 20),
    "prompt": (str, ""),
    "device": (str, "cpu"),
    "dtype": (str, "float32"),
}
_SD_ONLY = ("guidance", "noise_level", "prompt")
_DEVICE_RE = re.compile(r"^(cpu|cuda|cuda:\d+)$")
_DTYPES = ("float32", "float16")

_FOLDER_HINT = (
    "A valid folder is what a diffusers pipeline's save_pretrained(folder) writes: model_index.json "
    "plus one sub-folder per component (for StableDiffusionUpscalePipeline: unet, vae, text_encoder, "
    "tokenizer, scheduler, low_res_scheduler; for LDMSuperResolutionPipeline: unet, vqvae, scheduler)."
)
_INSTALL_HINT = f"pip install 'srjudge[diffusion]' (diffusers with transformers and {TORCH_PIN})"


@dataclass
class _Loaded:
    """A loaded pipeline, the lock that serialises its calls (schedulers keep state), its device and
    the LR side multiple it needs."""

    pipe: Any
    lock: threading.Lock
    device: Any
    multiple: int


_CACHE: dict[tuple[str, str, str, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def clear_pipeline_cache() -> None:
    """Forget every loaded pipeline (frees its memory once no backend holds it)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def require_diffusers(feature: str = "the diffusers SR backend") -> ModuleType:
    """Import and return ``diffusers`` (offline), or raise :class:`MissingDependencyError`."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    return import_extra(feature, ("torch", "diffusers"), "diffusers and PyTorch", _INSTALL_HINT)


def read_model_index(folder: Path) -> dict[str, Any]:
    """The folder's parsed ``model_index.json``; a missing folder or file raises MissingWeightsError."""
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise MissingWeightsError(
            f"diffusers backend: the pipeline folder {str(folder)!r} {what}. {_FOLDER_HINT}"
        )
    index = folder / "model_index.json"
    if not index.is_file():
        raise MissingWeightsError(
            f"diffusers backend: {str(folder)!r} has no model_index.json, so it is not a saved "
            f"diffusers pipeline. {_FOLDER_HINT}"
        )
    return read_json_object(index, backend="diffusers", hint=_FOLDER_HINT)


def read_json_object(path: Path, *, backend: str, hint: str) -> dict[str, Any]:
    """A model folder's JSON file that must hold an object; anything else raises MissingWeightsError
    naming the ``backend``, the file and the ``hint`` (what a valid folder holds)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MissingWeightsError(f"{backend} backend: cannot read {str(path)!r} ({exc}). {hint}") from None
    if not isinstance(data, dict):
        raise MissingWeightsError(f"{backend} backend: {str(path)!r} is not a JSON object. {hint}")
    return data


def resolve_kind(requested: str, class_name: str, folder: Path) -> str:
    """The pipeline kind from ``pipeline=`` and ``model_index.json``'s ``_class_name``."""
    known = {cls: kind for kind, cls in PIPELINE_CLASSES.items()}
    detected = known.get(class_name)
    supported = ", ".join(f"{cls} ({kind})" for kind, cls in PIPELINE_CLASSES.items())
    if requested == "auto":
        if detected is None:
            raise SpecError(
                f"diffusers backend: {str(folder)!r} holds a {class_name or 'pipeline with no _class_name'} "
                f"pipeline, which is not an x4 SR pipeline srjudge supports ({supported}). If it is a "
                "subclass of one of them, force the class with pipeline=sd-x4 or pipeline=ldm."
            )
        return detected
    if requested not in PIPELINE_CLASSES:
        raise SpecError(
            f"diffusers backend: pipeline={requested!r} is not one of auto, {', '.join(PIPELINE_CLASSES)}."
        )
    if detected is not None and detected != requested:
        raise SpecError(
            f"diffusers backend: pipeline={requested} asks for {PIPELINE_CLASSES[requested]}, but "
            f"{str(folder)!r} holds a {class_name}; use pipeline=auto or pipeline={detected}."
        )
    return requested


@dataclass(frozen=True)
class DiffusionOptions:
    """Validated options of one ``diffusers`` backend (the sd-x4-only ones are None for ldm)."""

    kind: str
    steps: int
    guidance: float | None
    noise_level: int | None
    prompt: str | None
    device: str
    dtype: str


def parse_options(options: dict[str, Any], kind: str, max_noise_level: int) -> DiffusionOptions:
    """Check coerced spec options against the pipeline kind; bad values raise :class:`SpecError`."""
    if kind != "sd-x4":
        given = [key for key in _SD_ONLY if key in options]
        if given:
            raise SpecError(
                f"diffusers backend: option(s) {', '.join(given)} apply to pipeline=sd-x4 only "
                f"(this folder is {kind})."
            )
    steps = int(options.get("steps", DEFAULT_STEPS[kind]))
    if steps < 1:
        raise SpecError(f"diffusers backend: steps must be at least 1, got {steps}.")
    device = str(options.get("device", "cpu")).strip().lower() or "cpu"
    if not _DEVICE_RE.match(device):
        raise SpecError(f"diffusers backend: device must be cpu, cuda or cuda:N, got {device!r}.")
    dtype = str(options.get("dtype", "float32")).strip().lower().removeprefix("torch.") or "float32"
    if dtype not in _DTYPES:
        raise SpecError(f"diffusers backend: dtype must be float32 or float16, got {dtype!r}.")
    if dtype == "float16" and device == "cpu":
        raise SpecError("diffusers backend: dtype=float16 needs device=cuda; use float32 on the CPU.")
    guidance = noise_level = prompt = None
    if kind == "sd-x4":
        guidance = float(options.get("guidance", DEFAULT_GUIDANCE))
        if not math.isfinite(guidance) or guidance < 0:
            raise SpecError(f"diffusers backend: guidance must be a finite number >= 0, got {guidance}.")
        noise_level = int(options.get("noise_level", DEFAULT_NOISE_LEVEL))
        if not 0 <= noise_level <= max_noise_level:
            raise SpecError(
                f"diffusers backend: noise_level must be in [0, {max_noise_level}] (the pipeline's "
                f"max_noise_level), got {noise_level}."
            )
        prompt = str(options.get("prompt", ""))
    return DiffusionOptions(kind, steps, guidance, noise_level, prompt, device, dtype)


def pad_multiple(lr: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad the bottom and right of an H x W x C image up to multiples of ``multiple``."""
    h, w = lr.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return lr
    return np.pad(lr, ((0, ph), (0, pw), (0, 0)), mode="reflect")


def _downsampling(unet_config: Any) -> int:
    """How many times a diffusers UNet halves its input: once per down block but the last."""
    blocks = getattr(unet_config, "down_block_types", None) or ()
    return int(2 ** max(len(blocks) - 1, 0))


def _decoder_factor(vae_config: Any) -> int:
    """The upsampling factor of a diffusers VAE/VQ decoder: 2 per block but the last."""
    return int(2 ** max(len(getattr(vae_config, "block_out_channels", ()) or ()) - 1, 0))


class DiffusersSR(SRBackend):
    """Stochastic x4 SR with a local ``StableDiffusionUpscalePipeline`` or ``LDMSuperResolutionPipeline``."""

    family = "diffusion"
    stochastic = True
    scales = (SCALE,)

    def __init__(self, folder: str | os.PathLike[str], options: dict[str, Any] | None = None) -> None:
        raw = dict(options or {})
        self.folder = Path(folder).expanduser()
        index = read_model_index(self.folder)
        self.class_name = str(index.get("_class_name", ""))
        requested = str(raw.pop("pipeline", "auto")).strip().lower() or "auto"
        kind = resolve_kind(requested, self.class_name, self.folder)
        max_noise = index.get("max_noise_level", DEFAULT_MAX_NOISE_LEVEL)
        max_noise = int(max_noise) if isinstance(max_noise, int | float) else DEFAULT_MAX_NOISE_LEVEL
        self.options = parse_options(raw, kind, max_noise)
        self.index_digest = hashlib.sha256((self.folder / "model_index.json").read_bytes()).hexdigest()
        require_diffusers()

    # ------------------------------------------------------------------------------------------------
    # Loading
    # ------------------------------------------------------------------------------------------------

    def _cache_key(self) -> tuple[str, str, str, str]:
        o = self.options
        return (str(self.folder.resolve()), o.kind, o.device, o.dtype)

    def _loaded(self) -> _Loaded:
        key = self._cache_key()
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                cached = self._load()
                _CACHE[key] = cached
            return cached

    def pipeline(self) -> Any:
        """The loaded diffusers pipeline (loaded once per folder, kind, device and dtype)."""
        return self._loaded().pipe

    def multiple(self) -> int:
        """The LR side multiple the loaded pipeline needs (see the module docstring)."""
        return self._loaded().multiple

    def _load(self) -> _Loaded:
        diffusers = require_diffusers()
        import torch

        from srjudge.models.tensors import resolve_device

        o = self.options
        device = resolve_device(o.device)
        cls = getattr(diffusers, PIPELINE_CLASSES[o.kind], None)
        if cls is None:
            raise MissingDependencyError(
                f"diffusers {getattr(diffusers, '__version__', '?')} has no {PIPELINE_CLASSES[o.kind]}; "
                f"update it: {_INSTALL_HINT}."
            )
        dtype = torch.float16 if o.dtype == "float16" else torch.float32
        kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
        if importlib.util.find_spec("accelerate") is None:
            kwargs["low_cpu_mem_usage"] = False  # the default would only warn and fall back
        if o.kind == "sd-x4":  # unused by SR; the feature extractor may need torchvision
            kwargs.update(safety_checker=None, feature_extractor=None, watermarker=None)
        try:
            pipe = cls.from_pretrained(str(self.folder), **kwargs)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise MissingWeightsError(
                f"diffusers backend: could not load {PIPELINE_CLASSES[o.kind]} from {str(self.folder)!r} "
                f"({type(exc).__name__}: {first}). {_FOLDER_HINT}"
            ) from None
        pipe = pipe.to(device)
        if pipe.unet.dtype != dtype:  # a diffusers older than the `dtype` keyword ignores it
            pipe = pipe.to(dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        decoder = pipe.vae if o.kind == "sd-x4" else pipe.vqvae
        factor = _decoder_factor(decoder.config)
        if factor != SCALE:
            raise SpecError(
                f"diffusers backend: the pipeline in {str(self.folder)!r} upscales by {factor}, not {SCALE}; "
                f"srjudge's diffusers backend supports x{SCALE} pipelines only."
            )
        multiple = _downsampling(pipe.unet.config)
        if o.kind == "sd-x4":  # its image processor rounds sizes down to the VAE factor
            multiple = math.lcm(multiple, int(getattr(pipe, "vae_scale_factor", 1) or 1))
        return _Loaded(pipe, threading.Lock(), device, multiple)

    # ------------------------------------------------------------------------------------------------
    # SR
    # ------------------------------------------------------------------------------------------------

    def upscale(self, lr: np.ndarray, *, scale: int = SCALE, seed: int | None = None) -> np.ndarray:
        """One x4 sample for ``seed`` (None means 0), 8-bit quantised float32 RGB in [0, 1]."""
        if scale not in self.scales:
            raise SpecError(
                f"diffusers backend: scale {scale} is not supported; {PIPELINE_CLASSES[self.options.kind]} "
                f"upscales by {SCALE} only (scales={list(self.scales)})."
            )
        array = np.asarray(lr)
        if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
            raise ImageError(
                f"diffusers backend: the LR image must be an H x W x 3 RGB array; got {array.shape}."
            )
        import torch

        h, w = array.shape[:2]
        image = np.clip(array.astype(np.float32), 0.0, 1.0)
        loaded = self._loaded()
        pipe = loaded.pipe
        padded = pad_multiple(image, loaded.multiple)
        o = self.options
        with loaded.lock, torch.inference_mode():
            generator = torch.Generator(device=loaded.device).manual_seed(int(seed or 0))
            if o.kind == "sd-x4":
                out = pipe(
                    prompt=o.prompt,
                    image=padded[None],
                    num_inference_steps=o.steps,
                    guidance_scale=o.guidance,
                    noise_level=o.noise_level,
                    generator=generator,
                    output_type="np",
                ).images
            else:
                tensor = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
                out = pipe(
                    image=tensor * 2.0 - 1.0,
                    num_inference_steps=o.steps,
                    generator=generator,
                    output_type="np",
                ).images
        sr = np.asarray(out[0], dtype=np.float32)
        ph, pw = padded.shape[:2]
        if sr.shape != (ph * SCALE, pw * SCALE, 3):
            raise ImageError(
                f"diffusers backend: the pipeline returned {sr.shape} for a padded {pw}x{ph} input; "
                f"expected {(ph * SCALE, pw * SCALE, 3)}."
            )
        return quantize_8bit(sr[: h * SCALE, : w * SCALE])

    def settings(self) -> dict[str, Any]:
        o = self.options
        return {
            "pipeline": o.kind,
            "pipeline_class": self.class_name or PIPELINE_CLASSES[o.kind],
            "steps": o.steps,
            "guidance": o.guidance,
            "noise_level": o.noise_level,
            "prompt": o.prompt,
            "device": o.device,
            "dtype": o.dtype,
            "model_index_sha256": self.index_digest,
        }


@register_sr_backend(
    "diffusers",
    "A diffusers upscaling pipeline folder (SD x4 upscaler, LDM SR): stochastic, seeded samples.",
    options=_SCHEMA,
    arg="pipeline folder (required)",
)
def _factory(spec: Spec) -> SRBackend:
    folder = require_arg(
        spec,
        "diffusers backend: give the pipeline folder, e.g. diffusers:/models/sd-x4-upscaler "
        "(the folder a diffusers pipeline's save_pretrained wrote).",
    )
    backend = DiffusersSR(folder, coerce_options(spec, _SCHEMA, kind="SR backend"))
    backend.spec = str(spec)
    return backend
