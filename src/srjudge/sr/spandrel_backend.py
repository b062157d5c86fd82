"""``spandrel:PATH``: SR checkpoints of the architectures spandrel knows (SwinIR, HAT, GFPGAN, ...).

Spec: ``spandrel:/path/model.safetensors[,device=cpu][,tile=0][,overlap=32][,family=...]``.

spandrel (``pip install spandrel``) detects the architecture from the state dict and builds the
network; srjudge checks that the result is a single-image model (``ImageModelDescriptor``) whose
purpose is ``SR`` or ``FaceSR`` with RGB in and out, and runs it at its own scale (the only one
this backend offers). ``family`` defaults to ``prior-guided`` for face models (GFPGAN, CodeFormer)
and ``general`` otherwise; ``blind`` is accepted for BSRGAN-style training (the weights do not say).

Tiling follows the model's own advice: models marked ``INTERNAL`` (they tile or need the whole
image) always run in one pass; ``DISCOURAGED`` ones are tiled only when ``tile`` is set explicitly;
the others are tiled as in ``esrgan:`` (``tile=0``: 256 px tiles above 256x256; ``-1``: never), with
tile sizes rounded to the model's ``size_requirements.multiple_of``; spandrel pads each tile to its
size requirements itself and crops the padding off.

spandrel imports torchvision, and torchvision must be the build made for the installed torch
(srjudge pins ``torch==2.13.0``): a PyPI torchvision made for another torch fails to import. Without
a working torchvision, ``import spandrel`` fails and this backend raises
:class:`~srjudge.errors.MissingDependencyError` saying so; ESRGAN, Real-ESRGAN and BSRGAN
checkpoints need neither, through ``esrgan:PATH``.

Note: srjudge's CI has no torchvision beside its pinned torch, so the success path with a real
spandrel + torchvision installation is not exercised in CI. The tests run the missing-dependency
path for real, and the success path only against a stand-in ``torchvision`` module (spandrel
imports torchvision solely for its LaMa and RestoreFormer architectures), loading an ESRGAN file.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from srjudge.errors import MissingDependencyError, MissingWeightsError, SpecError
from srjudge.models._deps import TORCH_PIN, require_torch
from srjudge.spec import Choice, Spec, coerce_options
from srjudge.sr.base import SRBackend, register_sr_backend, require_arg, spec_text
from srjudge.sr.esrgan import DEFAULT_OVERLAP, check_tiling, resolve_tile, upscale_tiled
from srjudge.sr.interpolation import check_lr, check_scale

SpandrelFamily = Literal["general", "blind", "prior-guided"]
"""The families a spandrel model can be declared as (the file cannot tell)."""
FAMILIES: tuple[SpandrelFamily, ...] = get_args(SpandrelFamily)
SR_PURPOSES = ("SR", "FaceSR")

_ESRGAN_NOTE = (
    "ESRGAN, Real-ESRGAN and BSRGAN checkpoints do not need spandrel: use esrgan:PATH, srjudge's "
    "own RRDBNet loader."
)


def import_spandrel() -> Any:
    """Import spandrel (and through it torchvision), or raise MissingDependencyError naming what is absent."""
    require_torch("The spandrel SR backend")
    try:
        return importlib.import_module("spandrel")
    except ModuleNotFoundError as exc:
        if exc.name == "spandrel":
            raise MissingDependencyError(
                "The spandrel SR backend needs the spandrel package, which is not installed: "
                f"pip install spandrel (it also needs torchvision built for your torch, {TORCH_PIN}). "
                + _ESRGAN_NOTE
            ) from None
        if exc.name is not None and exc.name.split(".")[0] == "torchvision":
            raise MissingDependencyError(
                "spandrel is installed but cannot be imported because torchvision is missing "
                f"(No module named {exc.name!r}); spandrel imports torchvision. Install the torchvision "
                f"release built for your torch ({TORCH_PIN}) from the same index as torch: a torchvision "
                "wheel made for another torch fails to import beside it. " + _ESRGAN_NOTE
            ) from None
        raise MissingDependencyError(
            f"spandrel is installed but cannot be imported: a module it needs is missing ({exc}). "
            + _ESRGAN_NOTE
        ) from None
    except Exception as exc:  # e.g. a torchvision built for another torch fails with RuntimeError
        first = (str(exc).strip().splitlines() or [""])[0]
        raise MissingDependencyError(
            f"spandrel is installed but cannot be imported ({type(exc).__name__}: {first}). This usually "
            f"means torchvision does not match the installed torch ({TORCH_PIN}); install the matching "
            "torchvision from the same index as torch. " + _ESRGAN_NOTE
        ) from None


class SpandrelBackend(SRBackend):
    """An SR model loaded by spandrel; deterministic, one native scale."""

    stochastic = False

    def __init__(
        self,
        path: str,
        *,
        device: str = "cpu",
        tile: int = 0,
        overlap: int = DEFAULT_OVERLAP,
        family: SpandrelFamily | None = None,
    ) -> None:
        if family is not None and family not in FAMILIES:
            raise SpecError(f"spandrel family={family!r}: use one of {', '.join(FAMILIES)}.")
        check_tiling("spandrel", tile, overlap, unit="pixels")
        spandrel = import_spandrel()
        from srjudge.models.tensors import resolve_device

        torch_device = resolve_device(device)
        file = Path(path).expanduser()
        if not file.is_file():
            kind = "is a folder, not a file" if file.is_dir() else "does not exist"
            raise MissingWeightsError(f"The spandrel model file {str(file)!r} {kind}.")
        try:
            descriptor = spandrel.ModelLoader().load_from_file(str(file))
        except Exception as exc:
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            detail = " ".join(lines[:2])
            detail = detail if len(detail) <= 300 else detail[:297] + "..."
            raise MissingWeightsError(
                f"spandrel could not load {str(file)!r} ({type(exc).__name__}: {detail}). It may be an "
                "architecture spandrel does not know, a variant it misreads, or not a model file."
            ) from None
        if not isinstance(descriptor, spandrel.ImageModelDescriptor):
            raise SpecError(
                f"{str(file)!r} is a {type(descriptor).__name__} ({descriptor.architecture.name}, purpose "
                f"{descriptor.purpose}); the spandrel SR backend runs single-image SR models only."
            )
        if (  # Real-ESRGAN x1 files load as purpose "Restoration": esrgan: runs them
            descriptor.purpose not in SR_PURPOSES
            or descriptor.input_channels != 3
            or descriptor.output_channels != 3
        ):
            raise SpecError(
                f"{str(file)!r} is a {descriptor.architecture.name} model for {descriptor.purpose!r} with "
                f"{descriptor.input_channels} -> {descriptor.output_channels} channels; the spandrel SR "
                f"backend runs RGB super-resolution models (purpose {' or '.join(SR_PURPOSES)}, 3 -> 3). "
                "ESRGAN-family x1 models run through esrgan:PATH."
            )
        self.descriptor = descriptor.to(torch_device).eval()
        self.path = str(file)
        self.device = device
        self.tile = tile
        self.overlap = overlap
        self.architecture = str(descriptor.architecture.name)
        self.tiling = str(getattr(descriptor.tiling, "name", descriptor.tiling))
        self.scales = (int(descriptor.scale),)
        self.family = (
            family
            if family is not None
            else ("prior-guided" if descriptor.purpose == "FaceSR" else "general")
        )
        options = {"device": device, "tile": tile, "overlap": overlap, "family": family}
        self.spec = spec_text("spandrel", self.path, options, _OPTIONS)

    def _tile_for(self, h: int, w: int) -> int:
        if self.tiling == "INTERNAL":
            return 0
        if self.tiling == "DISCOURAGED" and self.tile <= 0:
            return 0
        return resolve_tile(self.tile, h, w)

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        image = check_lr(lr)
        factor = check_scale(scale, self.scales, what=f"spandrel model {Path(self.path).name}")
        h, w = image.shape[:2]
        return upscale_tiled(
            self.descriptor,
            image,
            self.descriptor.device,
            scale=factor,
            tile=self._tile_for(h, w),
            overlap=self.overlap,
            multiple=max(1, int(getattr(self.descriptor.size_requirements, "multiple_of", 1))),
        )

    def settings(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "architecture": self.architecture,
            "scale": self.scales[0],
            "tiling": self.tiling,
            "device": self.device,
            "tile": self.tile,
            "overlap": self.overlap,
        }


_OPTIONS = {
    "device": (str, "cpu"),
    "tile": (int, 0),
    "overlap": (int, DEFAULT_OVERLAP),
    "family": (Choice(*FAMILIES), None),
}


@register_sr_backend(
    "spandrel",
    "Any architecture spandrel loads (SwinIR, HAT, SPAN, ...), from a local checkpoint.",
    options=_OPTIONS,
    arg="checkpoint path (required)",
)
def _make(spec: Spec) -> SRBackend:
    options = coerce_options(spec, _OPTIONS, kind="SR backend")
    path = require_arg(spec, "spandrel needs the model path: spandrel:/path/model.safetensors (or .pth).")
    return SpandrelBackend(path, **options)
