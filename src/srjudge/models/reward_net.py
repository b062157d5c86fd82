"""The LR-conditioned reward model (after RefReward-SR, Song et al.): a VLM backbone and a scalar head.

Input: one chat turn with TWO images, the LR input first (the semantic anchor) and then the HR
candidate, followed by a fixed, versioned instruction (:data:`INSTRUCTION`, :data:`PROMPT_VERSION`).
The language model's last hidden state at the final non-pad token goes through a linear head to one
scalar reward: higher is better, meaningful only in differences (a Bradley-Terry reward).

Images are resized so that their longer side is at most ``max_side`` (never enlarged) before the
processor; ``max_side`` is recorded with the model and reused when it is loaded.

A saved model is one folder: the backbone (LoRA merged in) with its processor, so that the folder
is also a plain VLM checkpoint; the raw LoRA adapter in ``adapter/``; the head in
``reward_head.safetensors``; and ``reward_model.json`` (base model, prompt version, instruction,
max_side, reward centre, training record). torch and transformers are imported lazily.

The ``reward`` judge scores with a saved model (:meth:`LRConditionedRewardModel.load`); training builds a
fresh one on a base VLM with :func:`srjudge.train.reward_model.reward_model_from_base`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.config import TRAIN_INSTALL_HINT
from srjudge.errors import MissingDependencyError, MissingWeightsError, SrjudgeError

PROMPT_VERSION = "lr-reward/1"
INSTRUCTION = (
    "The first image is a low-resolution input. The second image is a super-resolution reconstruction "
    "of it. Judge how well the reconstruction keeps the content of the input (no invented or changed "
    "content) and how clean and natural it looks (no blur, noise or compression artifacts)."
)
MODEL_SCHEMA = "srjudge.reward-model/1"
HEAD_FILE = "reward_head.safetensors"
META_FILE = "reward_model.json"
DEFAULT_MAX_SIDE = 448

try:  # torch is an optional extra: the module imports without it, the model class needs it
    import torch
    from torch import nn

    _Module: Any = nn.Module
except ImportError:  # pragma: no cover - exercised only without the train extra
    torch = None  # type: ignore[assignment]
    _Module = object


def _require_torch() -> None:
    if torch is None:
        raise MissingDependencyError(f"the reward model needs torch: {TRAIN_INSTALL_HINT}")


def to_pil_max_side(image: np.ndarray, max_side: int) -> Any:
    """A float RGB array in [0, 1] as an 8-bit PIL image, shrunk (Lanczos) to at most ``max_side``."""
    from PIL import Image

    from srjudge.images.checks import check_image
    from srjudge.images.io import to_uint8

    check_image(image, "reward model input")
    pil = Image.fromarray(to_uint8(image))
    w, h = pil.size
    if max(w, h) > max_side:
        ratio = max_side / max(w, h)
        pil = pil.resize((max(1, round(w * ratio)), max(1, round(h * ratio))), Image.Resampling.LANCZOS)
    return pil


def chat_messages() -> list[dict[str, Any]]:
    """The fixed chat of one judgement: LR image, HR image, then the instruction."""
    return [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": INSTRUCTION}],
        }
    ]


class RewardInputs:
    """(LR, HR) image pairs to the backbone's inputs; shared by the model and the training collator."""

    def __init__(self, processor: Any, max_side: int) -> None:
        if max_side < 28:
            raise SrjudgeError(f"max_side must be at least 28 pixels, got {max_side}")
        self.processor = processor
        self.max_side = int(max_side)
        tok = processor.tokenizer
        template = getattr(processor, "chat_template", None) or getattr(tok, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default") or next(iter(template.values()), None)
        if not isinstance(template, str):
            raise MissingWeightsError(
                "the reward model's processor has no chat template (chat_template.jinja or the tokenizer's); "
                "copy the base model's chat template into the folder"
            )
        self.prompt = str(
            tok.apply_chat_template(
                chat_messages(), chat_template=template, tokenize=False, add_generation_prompt=True
            )
        )

    def __call__(self, lrs: Sequence[np.ndarray], hrs: Sequence[np.ndarray]) -> Any:
        """A ``BatchFeature`` for the pairs ``(lrs[i], hrs[i])``: ids, attention mask, pixel values."""
        if len(lrs) != len(hrs) or not hrs:
            raise SrjudgeError(
                f"reward inputs need as many LR as HR images (>0); got {len(lrs)} and {len(hrs)}"
            )
        images = [
            [to_pil_max_side(lr, self.max_side), to_pil_max_side(hr, self.max_side)]
            for lr, hr in zip(lrs, hrs, strict=True)
        ]
        return self.processor(
            text=[self.prompt] * len(hrs),
            images=images,
            padding=True,
            return_tensors="pt",
            add_special_tokens=False,
        )


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


class LRConditionedRewardModel(_Module):  # type: ignore[misc]  # nn.Module when torch is installed
    """VLM backbone + linear head: ``forward(**inputs) -> rewards`` of shape (batch,), float32."""

    def __init__(
        self,
        backbone: Any,
        processor: Any,
        *,
        base_model: str,
        max_side: int = DEFAULT_MAX_SIDE,
        seed: int = 0,
        reward_center: float = 0.0,
        training: Mapping[str, Any] | None = None,
    ) -> None:
        _require_torch()
        super().__init__()
        self.backbone = backbone
        self.processor = processor
        self.inputs = RewardInputs(processor, max_side)
        self.base_model = base_model
        self.max_side = int(max_side)
        self.reward_center = float(reward_center)
        self.training_record: dict[str, Any] = dict(training or {})
        config = (backbone.get_base_model() if _is_peft(backbone) else backbone).config
        hidden = int(config.get_text_config().hidden_size)
        self.head = nn.Linear(hidden, 1)
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, hidden, generator=generator) / hidden**0.5)
            self.head.bias.zero_()
        self.head.to(device=self.device, dtype=torch.float32)
        self.head.requires_grad_(True)

    # -- forward ---------------------------------------------------------------------------------------------

    @property
    def device(self) -> Any:
        return next(self.backbone.parameters()).device

    def _trunk(self) -> Any:
        base = self.backbone.get_base_model() if _is_peft(self.backbone) else self.backbone
        return getattr(base, "model", None)

    def forward(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
        """Rewards (batch,) from the processor's outputs; the hidden state of the last non-pad token."""
        kwargs.pop("use_cache", None)
        trunk = self._trunk()
        if trunk is not None:
            out = trunk(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
            hidden = out.last_hidden_state
        else:  # a model without a separate trunk: ask for hidden states
            out = self.backbone(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=True,
                use_cache=False,
                **kwargs,
            )
            hidden = out.hidden_states[-1]
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.long() * (positions + 1)).argmax(dim=1)  # last 1 in the mask, any padding side
        picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(picked.to(torch.float32)).squeeze(-1)

    def encode(self, lrs: Sequence[np.ndarray], hrs: Sequence[np.ndarray]) -> dict[str, Any]:
        """Processor outputs on the model's device; pixel values in the backbone's dtype."""
        batch = self.inputs(lrs, hrs)
        dtype = next(self.backbone.parameters()).dtype
        moved: dict[str, Any] = {}
        for key, value in batch.items():
            if hasattr(value, "to"):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(dtype)
            moved[key] = value
        return moved

    def rewards(self, lr: np.ndarray, hrs: Sequence[np.ndarray], *, batch_size: int = 8) -> list[float]:
        """The reward of each HR candidate given one LR input (eval mode, no gradients)."""
        if batch_size < 1:
            raise SrjudgeError(f"batch_size must be >= 1, got {batch_size}")
        was_training = self.training
        self.eval()
        out: list[float] = []
        try:
            with torch.no_grad():
                for start in range(0, len(hrs), batch_size):
                    chunk = list(hrs[start : start + batch_size])
                    values = self(**self.encode([lr] * len(chunk), chunk))
                    out.extend(float(v) for v in values.float().cpu())
        finally:
            self.train(was_training)
        return out

    # -- saving ----------------------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return {
            "schema": MODEL_SCHEMA,
            "base_model": self.base_model,
            "prompt_version": PROMPT_VERSION,
            "instruction": INSTRUCTION,
            "image_order": ["lr", "hr"],
            "max_side": self.max_side,
            "reward_center": self.reward_center,
            "head_file": HEAD_FILE,
            "hidden_size": int(self.head.in_features),
            "lora_merged": _is_peft(self.backbone),
            "training": self.training_record,
        }

    def save(self, out_dir: str | Path) -> Path:
        """Save backbone (LoRA merged, on a copy) + processor, the head and ``reward_model.json``."""
        from safetensors.torch import save_file

        from srjudge.models.hf_vlm import save_trained_vlm

        out = Path(out_dir)
        base = Path(self.base_model)
        save_trained_vlm(
            self.backbone, self.processor, out, merge=True, base_path=base if base.is_dir() else None
        )
        state = {
            k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.head.state_dict().items()
        }
        save_file(state, str(out / HEAD_FILE), metadata={"prompt_version": PROMPT_VERSION})
        tmp = out / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(self.metadata(), indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(out / META_FILE)
        return out

    @classmethod
    def load(
        cls, folder: str | Path, *, device: str = "auto", dtype: str = "auto"
    ) -> LRConditionedRewardModel:
        """Load a saved reward model for scoring; :class:`MissingWeightsError` names what is missing."""
        from safetensors.torch import load_file

        from srjudge.models.hf_vlm import load_vlm_for_training, resolve_train_device

        path = check_model_folder(folder)
        meta = read_model_meta(path)
        if meta.get("prompt_version") != PROMPT_VERSION:
            raise MissingWeightsError(
                f"{path / META_FILE}: prompt version {meta.get('prompt_version')!r} is not this srjudge's "
                f"{PROMPT_VERSION!r}; the head was trained on another prompt. Retrain, or use the srjudge "
                "version that trained it"
            )
        backbone, processor = load_vlm_for_training(path, device=resolve_train_device(device), dtype=dtype)
        model = cls(
            backbone,
            processor,
            base_model=str(meta.get("base_model", "")),
            max_side=int(meta.get("max_side", DEFAULT_MAX_SIDE)),
            reward_center=float(meta.get("reward_center", 0.0)),
            training=meta.get("training") or {},
        )
        try:
            state = load_file(str(path / HEAD_FILE))
            model.head.load_state_dict({k: v.to(model.device) for k, v in state.items()})
        except (OSError, RuntimeError, KeyError) as exc:
            raise MissingWeightsError(
                f"{path / HEAD_FILE}: cannot load the reward head ({type(exc).__name__}: "
                f"{(str(exc).splitlines() or [''])[0]}); the folder is damaged, save or train it again"
            ) from None
        backbone.eval()
        model.eval()
        return model


def read_model_meta(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MissingWeightsError(f"{folder / META_FILE}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("schema") != MODEL_SCHEMA:
        raise MissingWeightsError(f"{folder / META_FILE}: not a srjudge reward model record ({MODEL_SCHEMA})")
    return data


def check_model_folder(folder: str | Path) -> Path:
    """The folder of a saved reward model, checked: config, weights (every shard), head, record."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise MissingWeightsError(
            f"reward model folder {path} does not exist. Train one with `srjudge reward train --pairs "
            f"PAIRS.jsonl --model BASE --out {path}`, or point reward:PATH at a trained folder"
        )
    if not path.is_dir():
        raise MissingWeightsError(
            f"reward model path {path} is a file; it must be the trained model's folder"
        )
    missing = [name for name in ("config.json", HEAD_FILE, META_FILE) if not (path / name).is_file()]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            shards = []
            missing.append(f"{index.name} (unreadable)")
        missing += [s for s in shards if not (path / s).is_file()]
    elif not (path / "model.safetensors").is_file():
        missing.append("model.safetensors")
    if missing:
        raise MissingWeightsError(
            f"reward model folder {path} is incomplete: missing {', '.join(missing)}. A trained folder "
            "holds the backbone (config.json, model*.safetensors), the processor files, "
            f"{HEAD_FILE} and {META_FILE}; copy the whole folder, or train again"
        )
    return path


def model_digest(folder: Path) -> str:
    """A 16-hex digest of a saved reward model: backbone weights (sampled), head and record (full)."""
    import hashlib

    from srjudge.models.hf_folder import weights_revision
    from srjudge.provenance import file_sha256

    h = hashlib.sha256(weights_revision(folder).encode())
    for name in (HEAD_FILE, META_FILE):
        h.update(file_sha256(folder / name).encode())
    return h.hexdigest()[:16]
