"""SR backends: a registry like the judges', each turning an LR image into one or more SR candidates.

``create_sr_backend(spec)``: ``bicubic``, ``lanczos``, ``realesrgan:model=x4plus``,
``esrgan:/path/model.pth``, ``spandrel:/path/model.safetensors``, ``diffusers:/path/folder``.
Stochastic backends (diffusion) make N samples with recorded seeds; deterministic ones make one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from srjudge.errors import SpecError
from srjudge.registry import Entry, OptionSchema, Registry
from srjudge.spec import Spec, coerce_options, parse_spec

Family = Literal["interpolation", "general", "blind", "prior-guided", "diffusion"]
"""The face-SR paper's families (general: Real-ESRGAN; blind: BSRGAN; prior-guided: GFPGAN), plus
interpolation and diffusion. The family decides which bounded knobs an audit may apply."""


@dataclass(frozen=True)
class Candidate:
    """One SR output with everything needed to reproduce it."""

    image: np.ndarray = field(repr=False)
    backend: str
    seed: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        h, w = self.image.shape[:2]
        return {"backend": self.backend, "seed": self.seed, "settings": dict(self.settings), "size": [w, h]}


class SRBackend(ABC):
    """Upscales canonical images (float32 RGB in [0, 1]). Subclasses implement :meth:`upscale`.

    ``stochastic``: a seed changes the output, so the backend makes N seeded samples per LR input
    (:meth:`sample_seeds`); a deterministic backend makes one. :meth:`sample` is the batched form of
    :meth:`upscale` (backends with a batched sampler override it).
    """

    spec: str = ""
    family: Family = "general"
    stochastic: bool = False
    scales: tuple[int, ...] = (4,)

    @abstractmethod
    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        """One SR image of exactly ``scale`` times the LR size."""

    def sample(
        self, lrs: Sequence[np.ndarray], *, scale: int, seeds: Sequence[int | None]
    ) -> list[np.ndarray]:
        """One SR image per (LR, seed) pair, in order. By default :meth:`upscale` one by one."""
        if len(seeds) != len(lrs):
            raise SpecError(
                f"{self.spec or type(self).__name__}: {len(seeds)} seeds for {len(lrs)} LR images."
            )
        return [self.upscale(lr, scale=scale, seed=s) for lr, s in zip(lrs, seeds, strict=True)]

    def sample_seeds(self, samples: int, seed: int = 0) -> list[int | None]:
        """The seeds of one LR input's outputs: ``seed``, ``seed+1``, ... (``samples`` of them) for a
        stochastic backend; one None for a deterministic one."""
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise SpecError(f"samples must be an integer >= 1, got {samples!r}.")
        return [seed + i for i in range(samples)] if self.stochastic else [None]

    def candidates(self, lr: np.ndarray, *, scale: int, samples: int = 1, seed: int = 0) -> list[Candidate]:
        """``samples`` outputs (seeds ``seed``, ``seed+1``, ...) for stochastic backends, one otherwise;
        drawn with :meth:`sample`, in one batch where the backend batches."""
        seeds = self.sample_seeds(samples, seed)
        images = self.sample([lr] * len(seeds), scale=scale, seeds=seeds)
        settings = self.settings()
        return [Candidate(image, self.spec, s, settings) for image, s in zip(images, seeds, strict=True)]

    def settings(self) -> dict[str, Any]:
        """The backend's own settings, recorded in manifests."""
        return {}


SRFactory = Callable[[Spec], SRBackend]


@dataclass(frozen=True, kw_only=True)
class SREntry(Entry):
    """A registered SR backend: ``factory(spec) -> SRBackend``; ``arg`` says what a bare argument is."""

    arg: str = ""


SR_BACKENDS: Registry[SREntry] = Registry("SR backend", packages=("srjudge.sr",), entry_type=SREntry)


def register_sr_backend(
    name: str,
    description: str,
    *,
    options: OptionSchema | None = None,
    arg: str = "",
    aliases: tuple[str, ...] = (),
) -> Callable[[SRFactory], SRFactory]:
    """Register a factory ``f(spec) -> SRBackend`` under ``name``, with its option schema."""
    return SR_BACKENDS.register(name, description, options=options, aliases=aliases, arg=arg)


def require_arg(spec: Spec, message: str) -> str:
    """The spec's bare argument (a checkpoint path, a folder), or a :class:`SpecError` saying ``message``."""
    if not spec.arg:
        raise SpecError(message)
    return spec.arg


def spec_text(name: str, arg: str, values: Mapping[str, Any], schema: OptionSchema) -> str:
    """``name:arg,key=value,...`` with the options (in ``schema`` order) whose value is not the default."""
    given = {key: str(values[key]) for key, (_, default) in schema.items() if values[key] != default}
    return str(Spec(name, arg, given))


def create_sr_backend(spec: str | Spec) -> SRBackend:
    """Build an SR backend from its spec (did-you-mean on unknown names and options)."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    entry = SR_BACKENDS.get(parsed.name)
    coerce_options(parsed, entry.options, kind="SR backend")
    factory: SRFactory = entry.factory
    return factory(parsed)


def list_sr_backends() -> list[str]:
    return SR_BACKENDS.names()
