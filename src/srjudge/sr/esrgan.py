"""``esrgan:PATH``: ESRGAN-family checkpoints (ESRGAN, Real-ESRGAN, BSRGAN) on srjudge's own RRDBNet.

Spec: ``esrgan:/path/model.pth[,device=cpu][,tile=0][,overlap=N][,family=general|blind]``
(``.pth``/``.pt`` or ``.safetensors``; weights are never downloaded).

Checkpoint layouts, told apart by their keys (:func:`srjudge.models.rrdbnet.detect_layout`):

- Real-ESRGAN / BSRGAN: ``conv_first.weight``, ``body.0.rdb1.conv1.weight``, ..., ``conv_body``,
  ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last`` (Real-ESRGAN files wrap them in
  ``params_ema`` and/or ``params``; ``params_ema`` is preferred, as Real-ESRGAN's inference does);
- original ESRGAN: ``model.0.weight``, ``model.1.sub.0.RDB1.conv1.0.weight``, ... (renamed by
  :func:`~srjudge.models.rrdbnet.convert_old_esrgan`);
- the ESRGAN repository's later release: ``RRDB_trunk.0.RDB1.conv1.weight``, ``trunk_conv``,
  ``upconv1``, ``HRconv`` (renamed likewise).

``num_feat``, ``num_block``, ``num_grow_ch``, the number of upsampling stages and the
pixel-unshuffle factor (hence the scale: x4, x2 or x1 for Real-ESRGAN; x2/x8 for old-layout models
with one/three stages) are read off the shapes and keys (:func:`~srjudge.models.rrdbnet.infer_config`);
every key and shape is then checked against the network built from them.

Options:

- ``device``: torch device (``cpu`` default, ``cuda``, ``cuda:N``, ``mps``).
- ``tile``: LR tile size in pixels; ``0`` (default) = auto, i.e. 256 px tiles for inputs larger than
  256x256 and one pass otherwise; ``-1`` = never tile. Tiles overlap so seams do not show.
- ``overlap``: LR pixels of context added on each side of a tile (default ``32 * unshuffle``: 32
  pixels at the resolution the network's trunk runs at). Where the overlap covers the network's
  receptive field, tiled and untiled outputs agree to float precision; for full-size models
  (23 blocks, receptive field of hundreds of pixels) the residual difference at seams is tiny.
- ``family``: ``general`` (default; ESRGAN / Real-ESRGAN) or ``blind`` (BSRGAN). The weights do
  not say which they are, so the user does; the family decides which audit knobs apply.

Output: float32 RGB clipped to [0, 1], exactly ``scale`` times the LR size; not rounded to 8 bits
(saving it as a PNG does that). Deterministic for a given device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from srjudge.errors import ImageError, MissingWeightsError, SpecError
from srjudge.models._deps import require_torch
from srjudge.spec import Choice, Spec, coerce_options
from srjudge.sr.base import SRBackend, register_sr_backend, require_arg, spec_text
from srjudge.sr.interpolation import check_lr, check_scale

if TYPE_CHECKING:  # torch is imported lazily: listing SR backends must not need it
    import torch

    from srjudge.models.rrdbnet import RRDBNet

AUTO_TILE = 256
"""With ``tile=0``, inputs with a side above this are processed in tiles of this many LR pixels."""

DEFAULT_OVERLAP = 32
"""Default tile context per side, in pixels of the network's trunk resolution (LR / unshuffle)."""

EsrganFamily = Literal["general", "blind"]
"""The families an RRDBNet checkpoint can be (ESRGAN and Real-ESRGAN: general; BSRGAN: blind)."""
FAMILIES: tuple[EsrganFamily, ...] = get_args(EsrganFamily)

_HINT = (
    "esrgan: loads ESRGAN, Real-ESRGAN and BSRGAN generators (RRDBNet); for other architectures "
    "(SwinIR, HAT, GFPGAN, ...) use spandrel:PATH."
)


def resolve_tile(tile: int, height: int, width: int) -> int:
    """The tile size actually used: 0 (one pass) or a positive number of LR pixels."""
    if tile < 0:
        return 0
    if tile == 0:
        return AUTO_TILE if max(height, width) > AUTO_TILE else 0
    return tile


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def run_tiled(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    scale: int,
    tile: int,
    overlap: int,
    multiple: int = 1,
) -> torch.Tensor:
    """Apply an image-to-image network to a 1 x C x H x W tensor, tile by tile when ``tile > 0``.

    Each tile's core is ``tile`` x ``tile`` LR pixels; the network sees it with ``overlap`` pixels of
    real context on every side (clipped at the image border), and only the core's output is kept.
    Tile origins, sizes and overlaps are multiples of ``multiple`` (e.g. a pixel-unshuffle factor),
    and H and W must be too, so every tile is processed in the same phase as the whole image.
    """
    import torch

    h, w = int(x.shape[-2]), int(x.shape[-1])
    if tile <= 0 or (h <= tile and w <= tile):
        return forward(x)
    tile = _round_up(tile, multiple)
    overlap = _round_up(max(overlap, 0), multiple)
    out: torch.Tensor | None = None
    for y0 in range(0, h, tile):
        y1 = min(y0 + tile, h)
        cy0, cy1 = max(0, y0 - overlap), min(h, y1 + overlap)
        for x0 in range(0, w, tile):
            x1 = min(x0 + tile, w)
            cx0, cx1 = max(0, x0 - overlap), min(w, x1 + overlap)
            piece = forward(x[:, :, cy0:cy1, cx0:cx1])
            if out is None:
                out = torch.empty(
                    (x.shape[0], piece.shape[1], h * scale, w * scale), dtype=piece.dtype, device=piece.device
                )
            oy, ox = (y0 - cy0) * scale, (x0 - cx0) * scale
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = piece[
                :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    if out is None:  # H or W is 0: there was no tile to run
        raise ImageError(f"Cannot run a network on an empty {w}x{h} (WxH) input.")
    return out


def check_tiling(backend: str, tile: int, overlap: int | None, *, unit: str = "LR pixels") -> None:
    """Refuse a ``tile`` below -1 or a negative ``overlap`` (None: the backend's default) for ``backend``."""
    if tile < -1:
        raise SpecError(f"{backend} tile={tile}: use 0 (auto), -1 (never tile) or a tile size in {unit}.")
    if overlap is not None and overlap < 0:
        raise SpecError(f"{backend} overlap={overlap} must be >= 0.")


def upscale_tiled(
    forward: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray,
    device: torch.device,
    *,
    scale: int,
    tile: int,
    overlap: int,
    multiple: int = 1,
    pad: bool = False,
) -> np.ndarray:
    """Upscale an LR image (H x W x 3 float32) with ``forward`` on ``device``, in tiles (:func:`run_tiled`).

    The output is exactly ``scale`` times the LR size, clipped to [0, 1], float32. With ``pad``, H and W
    are first padded up to multiples of ``multiple`` by reflection (replication for tiny inputs) and the
    padding is cropped off the output, as Real-ESRGAN does for pixel-unshuffle models.
    """
    import torch
    import torch.nn.functional as F

    from srjudge.models.tensors import image_to_tensor

    h, w = image.shape[:2]
    with torch.inference_mode():
        x = image_to_tensor(image, device, name="LR image")
        pad_h, pad_w = ((-h) % multiple, (-w) % multiple) if pad else (0, 0)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = run_tiled(forward, x, scale=scale, tile=tile, overlap=overlap, multiple=multiple)
        out = y[0, :, : h * scale, : w * scale].clamp(0.0, 1.0).permute(1, 2, 0).to("cpu", torch.float32)
    return np.ascontiguousarray(out.numpy(), dtype=np.float32)


def _read_state(path: str) -> dict[str, torch.Tensor]:
    """The checkpoint's flat state dict (``params_ema`` preferred over ``params`` when a file has both)."""
    require_torch("The esrgan SR backend")
    import torch

    from srjudge.models.checkpoints import load_state_dict_file

    what = "ESRGAN checkpoint"
    try:
        return load_state_dict_file(path, what=what, hint=_HINT)
    except MissingWeightsError as exc:
        # load_state_dict_file unwraps single wrappers only; BasicSR training checkpoints hold both.
        file = Path(path).expanduser()
        if not file.is_file() or file.suffix == ".safetensors":
            raise
        try:
            raw = torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            raise exc from None
        for key in ("params_ema", "params"):
            inner = raw.get(key) if isinstance(raw, Mapping) else None
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in inner.items())
            ):
                return dict(inner)
        raise


def load_rrdbnet(path: str, *, device: str = "cpu") -> tuple[RRDBNet, str]:
    """Build and load an :class:`~srjudge.models.rrdbnet.RRDBNet` from an ESRGAN-family file.

    Returns the network (eval mode, on ``device``) and the layout the file used. A missing file
    raises :class:`MissingWeightsError` naming it; a file whose keys are not an ESRGAN-family
    state dict raises :class:`MissingWeightsError` naming the file and its first unexpected keys.
    """
    from srjudge.models.checkpoints import check_state_dict
    from srjudge.models.rrdbnet import RRDBNet, infer_config, to_new_layout
    from srjudge.models.tensors import resolve_device

    torch_device = resolve_device(device)
    state = _read_state(path)
    converted, layout = to_new_layout(state)
    shown = ", ".join(sorted(state)[:6]) + (f" (and {len(state) - 6} more)" if len(state) > 6 else "")
    if layout is None:
        raise MissingWeightsError(
            f"The ESRGAN checkpoint file {str(Path(path))!r} is not an ESRGAN-family (RRDBNet) state dict: "
            "expected conv_first.weight and body.N.rdbK.convJ.* (Real-ESRGAN/BSRGAN), model.0.weight and "
            f"model.1.sub.N.RDBK.convJ.0.* (original ESRGAN) or RRDB_trunk.N.* keys; its first keys are "
            f"{shown}. {_HINT}"
        )
    try:
        config = infer_config(converted)
    except ValueError as exc:
        raise MissingWeightsError(
            f"The ESRGAN checkpoint file {str(Path(path))!r} ({layout} layout) has inconsistent keys "
            f"or shapes: {exc}. Its first keys are {shown}. {_HINT}"
        ) from None
    if config.out_ch != 3:
        raise MissingWeightsError(
            f"The ESRGAN checkpoint file {str(Path(path))!r} outputs {config.out_ch} channels; "
            "srjudge runs RGB models (3 in, 3 out)."
        )
    net = RRDBNet(config)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    what = f"ESRGAN checkpoint ({layout} layout)"
    checked = check_state_dict(converted, expected, path=path, what=what, hint=_HINT)
    net.load_state_dict(checked, strict=True)
    net.requires_grad_(False)
    net.eval()
    return net.to(torch_device), layout


class ESRGANBackend(SRBackend):
    """An ESRGAN-family generator from a local checkpoint; deterministic, one native scale."""

    stochastic = False

    def __init__(
        self,
        path: str,
        *,
        device: str = "cpu",
        tile: int = 0,
        overlap: int | None = None,
        family: EsrganFamily = "general",
    ) -> None:
        if family not in FAMILIES:
            raise SpecError(
                f"esrgan family={family!r}: use general (ESRGAN, Real-ESRGAN) or blind (BSRGAN); "
                "the checkpoint cannot tell, so you say which it is."
            )
        check_tiling("esrgan", tile, overlap)
        self.family = family
        self.path = str(Path(path).expanduser())
        self.device = device
        self.tile = tile
        self.net, self.layout = load_rrdbnet(self.path, device=device)
        self.config = self.net.config
        self.overlap = DEFAULT_OVERLAP * self.config.unshuffle if overlap is None else overlap
        self.scales = (int(self.config.scale),)
        options = {"device": device, "tile": tile, "overlap": overlap, "family": family}
        self.spec = spec_text("esrgan", self.path, options, _OPTIONS)

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        image = check_lr(lr)
        factor = check_scale(scale, self.scales, what=f"esrgan checkpoint {Path(self.path).name}")
        h, w = image.shape[:2]
        return upscale_tiled(
            self.net,
            image,
            next(self.net.parameters()).device,
            scale=factor,
            tile=resolve_tile(self.tile, h, w),
            overlap=self.overlap,
            multiple=self.net.multiple,
            pad=True,
        )

    def settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "path": self.path,
            "layout": self.layout,
            "num_feat": c.num_feat,
            "num_block": c.num_block,
            "num_grow_ch": c.num_grow_ch,
            "num_upsample": c.num_upsample,
            "unshuffle": c.unshuffle,
            "scale": c.scale,
            "device": self.device,
            "tile": self.tile,
            "overlap": self.overlap,
        }


_OPTIONS = {
    "device": (str, "cpu"),
    "tile": (int, 0),
    "overlap": (int, None),
    "family": (Choice(*FAMILIES), "general"),
}


@register_sr_backend(
    "esrgan",
    "An RRDBNet checkpoint (ESRGAN, Real-ESRGAN, BSRGAN .pth/.safetensors) run with torch.",
    options=_OPTIONS,
    arg="checkpoint path (required)",
)
def _make(spec: Spec) -> SRBackend:
    options = coerce_options(spec, _OPTIONS, kind="SR backend")
    path = require_arg(spec, "esrgan needs the checkpoint path: esrgan:/path/model.pth (or .safetensors).")
    return ESRGANBackend(path, **options)
