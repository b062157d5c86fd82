"""SR backends: a registry like the judges', each turning an LR image into one or more SR candidates.

``create_sr_backend(spec)``: ``bicubic``, ``lanczos``, ``realesrgan:model=x4plus``,
``esrgan:/path/model.pth``, ``spandrel:/path/model.safetensors``, ``diffusers:/path/folder``.
Stochastic backends (diffusion) make N samples with recorded seeds; deterministic ones make one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from srjudge.registry import Registry
from srjudge.spec import Spec, parse_spec

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
    """Upscales canonical images (float32 RGB in [0, 1]). Subclasses implement :meth:`upscale`."""

    spec: str = ""
    family: Family = "general"
    stochastic: bool = False
    scales: tuple[int, ...] = (4,)

    @abstractmethod
    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        """One SR image of exactly ``scale`` times the LR size."""

    def candidates(self, lr: np.ndarray, *, scale: int, samples: int = 1, seed: int = 0) -> list[Candidate]:
        """``samples`` outputs (seeds ``seed``, ``seed+1``, ...) for stochastic backends, one otherwise."""
        count = samples if self.stochastic else 1
        return [
            Candidate(
                self.upscale(lr, scale=scale, seed=seed + i),
                self.spec,
                seed + i if self.stochastic else None,
                self.settings(),
            )
            for i in range(count)
        ]

    def settings(self) -> dict[str, Any]:
        """The backend's own settings, recorded in manifests."""
        return {}


SRFactory = Callable[[Spec], SRBackend]
SR_BACKENDS: Registry[SRFactory] = Registry("SR backend")

_MODULES = (
    "srjudge.sr.interpolation",
    "srjudge.sr.realesrgan",
    "srjudge.sr.esrgan",
    "srjudge.sr.spandrel_backend",
    "srjudge.sr.diffusion",
    "srjudge.sr.conditional_diffusion",
)


def _load_modules() -> None:
    import importlib

    for module in _MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a backend module not written yet must not break the others
            if exc.name != module:
                raise


def create_sr_backend(spec: str | Spec) -> SRBackend:
    """Build an SR backend from its spec (did-you-mean on unknown names)."""
    _load_modules()
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return SR_BACKENDS.get(parsed.name)(parsed)


def list_sr_backends() -> list[str]:
    _load_modules()
    return SR_BACKENDS.names()
