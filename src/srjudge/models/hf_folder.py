"""A local Hugging Face model folder: find it (offline), digest its weights, load its processor.

Used by the ``hf`` VLM backend, the reward model and training. Nothing is ever downloaded:
``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` are set and every load passes ``local_files_only=True``;
a hub id is looked up in the local Hugging Face cache only. transformers is imported inside the
functions that need it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

from srjudge.errors import MissingWeightsError

__all__ = ["folder_chat_template", "load_processor", "resolve_model_path", "set_offline", "weights_revision"]

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_CONFIG_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer_config.json",
    "chat_template.json",
    "chat_template.jinja",
    "model.safetensors.index.json",
)


# ----------------------------------------------------------------------------------------------------------
# Locating weights
# ----------------------------------------------------------------------------------------------------------


def set_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def resolve_model_path(model: str) -> Path:
    """The local folder for ``model``: an existing folder, or a hub id found in the local HF cache only.

    Raises :class:`MissingWeightsError` naming the path or id and how to provide it.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MissingWeightsError(
                f"hf backend: {path} has no config.json; point model= at the folder that holds config.json, "
                "the weights (*.safetensors), the tokenizer and preprocessor_config.json"
            )
        return path
    if path.exists():
        raise MissingWeightsError(f"hf backend: model={model!r} is a file; it must be a model folder")
    looks_like_path = model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1
    if looks_like_path or not _HUB_ID_RE.match(model):
        raise MissingWeightsError(
            f"hf backend: model folder {str(path)!r} does not exist. Copy the model folder (config.json, "
            "*.safetensors, tokenizer and processor files) there, or pass model=/path/to/folder."
        )
    set_offline()
    try:
        from huggingface_hub import snapshot_download

        found = Path(snapshot_download(repo_id=model, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, OfflineModeIsEnabled, a missing hub client
        hub_cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        raise MissingWeightsError(
            f"hf backend: no folder named {model!r} and {model!r} is not in the local Hugging Face cache "
            f"({hub_cache}); nothing is downloaded. On a connected machine run `hf download {model}` "
            "(or huggingface-cli download) and copy the cache, or copy the model folder here and pass "
            f"model=/path/to/folder. ({type(exc).__name__})"
        ) from None
    if not (found / "config.json").is_file():
        raise MissingWeightsError(
            f"hf backend: the cached snapshot of {model!r} at {found} has no config.json"
        )
    return found


def _chunk_digest(path: Path, h: Any, chunk: int = 1 << 16) -> None:
    """Feed the size and three 64 KiB samples (start, middle, end) of a large file into ``h``."""
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    with path.open("rb") as f:
        for offset in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            f.seek(offset)
            h.update(f.read(chunk))


def weights_revision(folder: Path) -> str:
    """A 16-hex digest of the folder's config files and weight files (sizes plus sampled content).

    Cheap for multi-GB checkpoints (a few reads per file), unchanged by copying or touching files,
    and different for different checkpoints of the same architecture.
    """
    h = hashlib.sha256()
    for name in _CONFIG_FILES:
        f = folder / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes())
    weights = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    for p in weights:
        _chunk_digest(p, h)
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------------
# Processor loading
# ----------------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _processor_class_name(folder: Path) -> str | None:
    """The processor class a folder declares (processor/preprocessor/tokenizer config, else model type)."""
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        cls = _read_json(folder / name).get("processor_class")
        if isinstance(cls, str) and cls:
            return cls
    model_type = _read_json(folder / "config.json").get("model_type")
    if isinstance(model_type, str):
        try:
            from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

            found = PROCESSOR_MAPPING_NAMES.get(model_type)
            if isinstance(found, str):
                return found
        except ImportError:
            return None
    return None


def folder_chat_template(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = _read_json(folder / "chat_template.json").get("chat_template")
    return template if isinstance(template, str) else None


def _image_only_class(base: type) -> type:
    """A subclass of ``base`` whose sub-processors are only the image processor and the tokenizer.

    transformers derives a processor's parts from its ``__init__`` signature, so dropping the video
    processor (which needs torchvision) from the signature is enough for image-and-text inputs.
    """

    parent: Any = base

    def __init__(
        self: Any, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kw: Any
    ) -> None:
        parent.__init__(
            self, image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template, **kw
        )

    return type(f"ImageOnly{base.__name__}", (base,), {"__init__": __init__, "__module__": __name__})


def _load_part(auto_class: Any, folder: Path, what: str, files: str) -> Any:
    """``auto_class.from_pretrained(folder)`` offline, or :class:`MissingWeightsError` naming ``what``
    and the ``files`` it is read from."""
    try:
        return auto_class.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise MissingWeightsError(
            f"hf backend: cannot load the {what} from {folder} ({files}): {type(exc).__name__}: {exc}"
        ) from None


def load_processor(folder: Path) -> Any:
    """The folder's processor (a ``ProcessorMixin`` with ``image_processor`` and ``tokenizer``), offline.

    First ``AutoProcessor``; when it fails (e.g. a Qwen2-VL processor asks for a video processor that
    needs torchvision) or silently returns a bare tokenizer, an image-only processor is built from the
    folder's tokenizer and image processor with the processor class the folder declares.
    Raises :class:`MissingWeightsError` naming what is missing.
    """
    import transformers
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
    from transformers.processing_utils import ProcessorMixin

    set_offline()
    first_error = ""
    try:
        proc = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        if isinstance(proc, ProcessorMixin) and getattr(proc, "image_processor", None) is not None:
            return proc
        first_error = (
            f"AutoProcessor returned a {type(proc).__name__}, not a processor with an image processor"
        )
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        first_error = f"AutoProcessor failed: {type(exc).__name__}: {first_line}"

    if (
        not (folder / "preprocessor_config.json").is_file()
        and not (folder / "processor_config.json").is_file()
    ):
        raise MissingWeightsError(
            f"hf backend: {folder} has no image processor (preprocessor_config.json or processor_config.json "
            f"is missing); copy the processor files that come with the model into the folder. ({first_error})"
        )
    tokenizer = _load_part(AutoTokenizer, folder, "tokenizer", "tokenizer.json / tokenizer_config.json")
    image_processor = _load_part(AutoImageProcessor, folder, "image processor", "preprocessor_config.json")
    class_name = _processor_class_name(folder)
    base = getattr(transformers, class_name, None) if class_name else None
    if not (isinstance(base, type) and issubclass(base, ProcessorMixin)):
        raise MissingWeightsError(
            f"hf backend: cannot build a processor for {folder}: the folder declares processor class "
            f"{class_name!r}, which this transformers {transformers.__version__} does not provide. "
            f"({first_error})"
        )
    chat_template = getattr(tokenizer, "chat_template", None) or folder_chat_template(folder)
    extra = _read_json(folder / "processor_config.json")
    params = inspect.signature(base.__init__).parameters
    init_kwargs = {
        k: v for k, v in extra.items() if k in params and k not in {"image_processor", "tokenizer"}
    }
    init_kwargs.pop("chat_template", None)
    init_kwargs.pop("video_processor", None)
    try:
        return _image_only_class(base)(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template, **init_kwargs
        )
    except Exception as exc:
        raise MissingWeightsError(
            f"hf backend: cannot build an image-only {class_name} for {folder}: {type(exc).__name__}: {exc} "
            f"({first_error})"
        ) from None
