"""Two-stage tuning of a VLM judge: perception first, then quality inference from the perception.

After Li, Sun, Chen, Nishida, "Building Reasonable Inference for VLMs in Blind Image Quality
Assessment": a VLM that rates quality in one step is unstable (the same image gets different levels
from run to run), because it never separates *what it sees* from *what that means for quality*.
Training the two steps apart (stage 1: perception, stage 2: quality inference from the perceived
description) cut their prediction instability from 22.00 % to 12.39 %.

Here both stages are supervised fine-tuning (trl's ``SFTTrainer``, LoRA by default) with prompts that
are EXACTLY those of srjudge's ``perceive-infer`` VLM protocol, so a tuned folder plugs into
``vlm:hf,model=<out>,protocol=perceive-infer``:

- stage ``perceive``: (image, the ``perceive`` prompt) -> the protocol's JSON
  ``{"content": ..., "distortions": [{"type": ..., "severity": slight|moderate|severe}]}``. Targets
  come from ``srjudge degrade`` records, where every degradation is known exactly
  (:func:`degradation_distortions`, :func:`describe_degradation`).
- stage ``infer``: (the perceived description, the ``infer`` prompt, text only as in the protocol)
  -> one level word. Labels are MOS mapped to the five levels by quantiles, or ``evolve``
  pseudo-label pairs turned into scores by a Bradley-Terry fit, then into levels
  (:func:`levels_from_scores`). The description is the degradation record's, when the image has a
  ``srjudge degrade`` sidecar, else the perception of the stage-1 model (``description_source``).

Pure logic (descriptions, targets, prompts, labels) takes records, arrays and numbers; the file work
(reading folders, datasets, writing outputs) sits in the ``read_*`` / ``run_*`` functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from srjudge.degrade.record import DegradationRecord
from srjudge.errors import SpecError, SrjudgeError
from srjudge.jsonl import open_for_append, read_jsonl
from srjudge.judges.vlm.judge import SEVERITY, infer_prompt_text, parse_perception
from srjudge.judges.vlm.parsing import LEVELS, ParseError
from srjudge.judges.vlm.prompts import PROMPTS, PromptTemplate
from srjudge.train.common import (
    RECORD_NAME,
    LoraSettings,
    apply_lora,
    config_to_dict,
    load_vlm_for_training,
    save_config_yaml,
    save_trained_vlm,
    trainable_parameter_count,
    write_training_record,
)
from srjudge.vlm.images import DEFAULT_MAX_SIDE, fit_longest_side
from srjudge.vlm.request import ChatMessage, ChatRequest, GenerationParams, ImagePart, TextPart

__all__ = [
    "BLUR_SIGMA",
    "JPEG_QUALITY",
    "NOISE_SIGMA",
    "SINC_OMEGA",
    "STAGES",
    "Distortion",
    "EvalSummary",
    "PromptCompletionCollator",
    "StageResult",
    "TrainExample",
    "TuneConfig",
    "degradation_distortions",
    "describe_degradation",
    "infer_example",
    "infer_prompt_text",
    "levels_from_scores",
    "parse_perception",
    "perceive_example",
    "perception_target",
    "protocol_messages",
    "read_degrade_folder",
    "read_label_source",
    "render_prompt",
    "run_eval",
    "run_tune",
    "scores_from_pairs",
    "train_stage",
]

Stage = Literal["perceive", "infer"]
STAGES: tuple[str, ...] = ("perceive", "infer")
DescriptionSource = Literal["auto", "record", "model"]

# ----------------------------------------------------------------------------------------------------------
# Degradation records -> factual descriptions
# ----------------------------------------------------------------------------------------------------------

#: Blur: the combined Gaussian sigma (HR pixels) of the record's blur steps, sqrt(sum sigma_i^2), where
#: an anisotropic kernel counts as sqrt(sigma_x * sigma_y). Below 0.5 it is not listed; below 1.2
#: slight; below 2.0 moderate; else severe. (Real-ESRGAN samples 0.2..3.0 in its first stage.)
BLUR_SIGMA = (0.5, 1.2, 2.0)
#: Noise: the combined sigma in 0..255 units, sqrt(sum sigma_i^2). Poisson noise counts as its standard
#: deviation at mid-grey, scale * sqrt(127.5) (255 photon counts at white). Below 2 not listed; below 8
#: slight; below 16 moderate; else severe.
NOISE_SIGMA = (2.0, 8.0, 16.0)
#: JPEG: the lowest quality of the record's JPEG steps. 90 and above not listed; from 65 slight; from 40
#: moderate; below 40 severe.
JPEG_QUALITY = (90, 65, 40)
#: Sinc (ringing) filters: the lowest cutoff omega_c (radians). From 2.8 not listed; from 2.0 slight;
#: from 1.2 moderate; below 1.2 severe. These thresholds are this package's choice, not the paper's.
SINC_OMEGA = (2.8, 2.0, 1.2)
_POISSON_MID_GREY = math.sqrt(127.5)
_GAUSSIAN_FAMILY = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


@dataclass(frozen=True)
class Distortion:
    """One known distortion: its ``type`` (e.g. "blur"), ``severity`` (the perceive protocol's words:
    slight, moderate, severe) and a factual ``detail`` (e.g. "sigma 2.8")."""

    type: str
    severity: str
    detail: str

    @property
    def label(self) -> str:
        """``type (detail)``: the distortion's ``type`` field in the perceive JSON."""
        return f"{self.type} ({self.detail})" if self.detail else self.type


def _rising(value: float, thresholds: tuple[float, float, float]) -> str | None:
    """Severity of a quantity that grows with the damage (sigma): None below the first threshold."""
    low, mid, high = thresholds
    if value < low:
        return None
    return "slight" if value < mid else "moderate" if value < high else "severe"


def _falling(value: float, thresholds: tuple[float, float, float]) -> str | None:
    """Severity of a quantity that falls as the damage grows (JPEG quality, sinc cutoff)."""
    none_from, slight_from, moderate_from = thresholds
    if value >= none_from:
        return None
    return "slight" if value >= slight_from else "moderate" if value >= moderate_from else "severe"


def _steps(record: DegradationRecord | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if isinstance(record, DegradationRecord):
        return list(record.steps)
    steps = record.get("steps") if isinstance(record, Mapping) else None
    if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
        raise SpecError(
            f"degradation record: expected a mapping with a 'steps' list, got {type(record).__name__}"
        )
    return list(steps)


def _number(step: Mapping[str, Any], key: str) -> float:
    value = step.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise SpecError(
            f"degradation record: step {step.get('name')!r} has no numeric {key!r} (got {value!r})"
        )
    return float(value)


def degradation_distortions(record: DegradationRecord | Mapping[str, Any]) -> tuple[Distortion, ...]:
    """The visible distortions a degradation record implies, in the order blur, ringing, noise, JPEG.

    Thresholds: :data:`BLUR_SIGMA`, :data:`SINC_OMEGA`, :data:`NOISE_SIGMA`, :data:`JPEG_QUALITY`.
    Resizes (the scale factor, random up/down resizes) are not listed: every LR image is downscaled,
    so a resize says nothing about its quality relative to others. Pure: a record (or its dict) in.
    """
    blur_sq, omegas, noise_sq, noise_kinds, qualities = 0.0, [], 0.0, set(), []
    for step in _steps(record):
        op = step.get("op")
        if op == "blur":
            kernel = step.get("kernel")
            if kernel in _GAUSSIAN_FAMILY:
                blur_sq += _number(step, "sigma_x") * _number(step, "sigma_y")
            elif kernel == "sinc":
                omegas.append(_number(step, "omega_c"))
        elif op == "noise":
            if step.get("type") == "gaussian":
                noise_sq += _number(step, "sigma") ** 2
                noise_kinds.add("Gaussian")
            elif step.get("type") == "poisson":
                noise_sq += (_number(step, "scale") * _POISSON_MID_GREY) ** 2
                noise_kinds.add("Poisson")
        elif op == "jpeg":
            qualities.append(_number(step, "quality"))
    out: list[Distortion] = []
    blur = math.sqrt(blur_sq)
    if (sev := _rising(blur, BLUR_SIGMA)) is not None:
        out.append(Distortion("blur", sev, f"sigma {blur:.1f}"))
    if omegas and (sev := _falling(min(omegas), SINC_OMEGA)) is not None:
        out.append(Distortion("ringing", sev, f"sinc cutoff {min(omegas):.2f}"))
    noise = math.sqrt(noise_sq)
    if (sev := _rising(noise, NOISE_SIGMA)) is not None:
        kind = next(iter(noise_kinds)) + " noise" if len(noise_kinds) == 1 else "noise"
        out.append(Distortion(kind, sev, f"sigma {noise:.0f}"))
    if qualities and (sev := _falling(min(qualities), JPEG_QUALITY)) is not None:
        out.append(Distortion("JPEG blocking", sev, f"quality {min(qualities):.0f}"))
    return tuple(out)


def describe_degradation(record: DegradationRecord | Mapping[str, Any]) -> str:
    """A short factual description with strength words, e.g.
    ``"severe blur (sigma 2.8); slight Gaussian noise (sigma 6); severe JPEG blocking (quality 32)"``;
    ``"no visible distortions"`` when nothing passes the thresholds (see :func:`degradation_distortions`)."""
    found = degradation_distortions(record)
    return "; ".join(f"{d.severity} {d.label}" for d in found) or "no visible distortions"


def perception_target(content: str, distortions: Sequence[Distortion]) -> str:
    """The stage-1 target: the perceive protocol's JSON answer for this content and these distortions."""
    for d in distortions:
        if d.severity not in SEVERITY:
            raise SpecError(f"severity {d.severity!r} is not one of {', '.join(SEVERITY)}")
    body = {
        "content": content,
        "distortions": [{"type": d.label, "severity": d.severity} for d in distortions],
    }
    return json.dumps(body, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------------------
# Prompts: the perceive-infer protocol's own templates and message layout
# ----------------------------------------------------------------------------------------------------------


def protocol_messages(
    template: PromptTemplate, parts: Sequence[TextPart | ImagePart]
) -> tuple[ChatMessage, ...]:
    """The messages the VLM judge sends for ``template`` (first attempt): system (if any), then user."""
    messages: list[ChatMessage] = []
    if template.system:
        messages.append(ChatMessage.system(template.system))
    messages.append(ChatMessage("user", tuple(parts)))
    return tuple(messages)


@dataclass(frozen=True)
class TrainExample:
    """One SFT example: the prompt messages (images inside), the completion text, and where it came from."""

    messages: tuple[ChatMessage, ...]
    completion: str
    source: str = ""

    def key(self) -> dict[str, Any]:
        """JSON-ready identity (image digests, not pixels): what enters the dataset digest."""
        return {
            "messages": [m.key() for m in self.messages],
            "completion": self.completion,
            "source": self.source,
        }


def perceive_example(
    image: np.ndarray,
    content: str,
    distortions: Sequence[Distortion],
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    source: str = "",
) -> TrainExample:
    """Stage 1: the image resized as the judge sends it, the perceive prompt, and the JSON target."""
    template = PROMPTS.get("perceive")
    fitted, _ = fit_longest_side(image, max_side)
    messages = protocol_messages(template, [ImagePart.of(fitted), TextPart(template.render())])
    return TrainExample(messages, perception_target(content, distortions), source)


def infer_example(
    content: str, distortions: Sequence[tuple[str, str]], level: str, *, source: str = ""
) -> TrainExample:
    """Stage 2: the infer prompt for a perceived description (text only, as in the protocol) -> a level."""
    if level not in LEVELS:
        raise SpecError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    template = PROMPTS.get("infer")
    messages = protocol_messages(template, [TextPart(infer_prompt_text(content, distortions))])
    return TrainExample(messages, level, source)


def _chat_template(processor: Any) -> str:
    template = getattr(processor, "chat_template", None) or getattr(
        processor.tokenizer, "chat_template", None
    )
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    if not isinstance(template, str) or not template:
        raise SpecError(
            "the model's processor has no chat template (chat_template.jinja or tokenizer_config.json)"
        )
    return template


def _conversation(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        content: list[dict[str, Any]] = []
        for p in m.parts:
            content.append(
                {"type": "image"} if isinstance(p, ImagePart) else {"type": "text", "text": p.text}
            )
        out.append({"role": m.role, "content": content})
    return out


def render_prompt(processor: Any, messages: Sequence[ChatMessage]) -> str:
    """The prompt text exactly as the hf backend renders it (chat template with a generation prompt)."""
    template = _chat_template(processor)
    return str(
        processor.tokenizer.apply_chat_template(
            _conversation(messages), chat_template=template, tokenize=False, add_generation_prompt=True
        )
    )


def _completion_text(processor: Any, example: TrainExample, prompt: str) -> str:
    """The completion as the chat template closes the assistant turn (e.g. ``good<|im_end|>\\n``)."""
    template = _chat_template(processor)
    conv = [*_conversation(example.messages), {"role": "assistant", "content": example.completion}]
    full = str(processor.tokenizer.apply_chat_template(conv, chat_template=template, tokenize=False))
    if not full.startswith(prompt):
        raise SpecError(
            "the chat template renders the prompt differently with and without the answer; "
            "completion-only training needs a template whose generation prompt is a prefix of the full turn"
        )
    return full[len(prompt) :]


# ----------------------------------------------------------------------------------------------------------
# Collator
# ----------------------------------------------------------------------------------------------------------


@dataclass
class PromptCompletionCollator:
    """Turns example indices into a training batch; loss on the completion tokens only.

    Why our own collator rather than trl's ``DataCollatorForVisionLanguageModeling``: the prompt must be
    tokenised exactly as the hf backend does at judging time (its chat-template call, the judge's
    resized image, ``add_special_tokens=False``), stage 2 is text-only with a vision processor, and the
    image-only processor of a model without torchvision lacks parts trl's path expects. Per example:
    the prompt (with its images) goes through the processor, the completion through the tokenizer,
    the two are concatenated, labels are -100 on the prompt and padding, and the batch is right-padded.
    Image tensors (``pixel_values``, ``image_grid_thw``) are concatenated along the first axis;
    per-token extras (e.g. ``mm_token_type_ids``) are extended with zeros over the completion.
    """

    processor: Any
    examples: Sequence[TrainExample]
    max_length: int | None = None
    _cache: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False)

    def texts(self, index: int) -> tuple[str, str]:
        """(prompt, completion) text of example ``index``."""
        if index not in self._cache:
            ex = self.examples[index]
            prompt = render_prompt(self.processor, ex.messages)
            self._cache[index] = (prompt, _completion_text(self.processor, ex, prompt))
        return self._cache[index]

    def encode(self, index: int) -> dict[str, Any]:
        import torch

        from srjudge.vlm.backends.hf_backend import to_pil

        ex = self.examples[index]
        prompt, completion = self.texts(index)
        images = [to_pil(img) for m in ex.messages for img in m.images()]
        kwargs: dict[str, Any] = {"text": [prompt], "return_tensors": "pt", "add_special_tokens": False}
        if images:
            kwargs["images"] = [images]
        enc = dict(self.processor(**kwargs))
        prompt_ids = enc.pop("input_ids")[0]
        enc.pop("attention_mask", None)
        comp_ids = torch.tensor(
            self.processor.tokenizer(completion, add_special_tokens=False)["input_ids"],
            dtype=prompt_ids.dtype,
        )
        n_prompt = int(prompt_ids.shape[0])
        ids = torch.cat([prompt_ids, comp_ids])
        labels = torch.cat([torch.full((n_prompt,), -100, dtype=prompt_ids.dtype), comp_ids])
        if self.max_length is not None and ids.shape[0] > self.max_length:
            if n_prompt >= self.max_length:
                raise SpecError(
                    f"example {ex.source or index}: the prompt alone is {n_prompt} tokens, over max_length "
                    f"{self.max_length}; raise max_length or lower max_side"
                )
            ids, labels = ids[: self.max_length], labels[: self.max_length]
        per_token = {}
        rest = {}
        for k, v in enc.items():
            if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[0] == 1 and v.shape[1] == n_prompt:
                pad = torch.zeros(ids.shape[0] - n_prompt, dtype=v.dtype)
                per_token[k] = torch.cat([v[0], pad])[: ids.shape[0]]
            else:
                rest[k] = v
        return {"input_ids": ids, "labels": labels, "per_token": per_token, "rest": rest}

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        encoded = [self.encode(int(row["index"])) for row in batch]
        pad_id = self.processor.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.processor.tokenizer.eos_token_id
        width = max(int(e["input_ids"].shape[0]) for e in encoded)
        n = len(encoded)
        input_ids = torch.full((n, width), int(pad_id), dtype=encoded[0]["input_ids"].dtype)
        labels = torch.full((n, width), -100, dtype=input_ids.dtype)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, e in enumerate(encoded):
            length = int(e["input_ids"].shape[0])
            input_ids[i, :length] = e["input_ids"]
            labels[i, :length] = e["labels"]
            attention[i, :length] = 1
        out: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        for key in encoded[0]["per_token"]:
            t = torch.zeros((n, width), dtype=encoded[0]["per_token"][key].dtype)
            for i, e in enumerate(encoded):
                t[i, : e["per_token"][key].shape[0]] = e["per_token"][key]
            out[key] = t
        for key in encoded[0]["rest"]:
            values = [e["rest"][key] for e in encoded if key in e["rest"]]
            if values and all(isinstance(v, torch.Tensor) for v in values):
                out[key] = torch.cat(values, dim=0)
        return out


# ----------------------------------------------------------------------------------------------------------
# Labels: MOS or pairwise pseudo-labels -> five levels
# ----------------------------------------------------------------------------------------------------------

#: Default level boundaries: equal fifths of the label distribution (bottom fifth "bad", top "excellent").
DEFAULT_QUANTILES = (0.2, 0.4, 0.6, 0.8)


def levels_from_scores(
    scores: Sequence[float], quantiles: Sequence[float] = DEFAULT_QUANTILES, *, higher_is_better: bool = True
) -> list[str]:
    """Map scores to the five level words by the quantiles of the scores themselves.

    With the default quantiles (0.2, 0.4, 0.6, 0.8) a score at or below the 20th percentile is "bad",
    at or below the 40th "poor", the 60th "fair", the 80th "good", above it "excellent" (for DMOS,
    ``higher_is_better=False``, the order is reversed). Quantiles use numpy's linear interpolation;
    equal scores always get the same level.
    """
    q = [float(x) for x in quantiles]
    if len(q) != 4 or any(not 0.0 < a < 1.0 for a in q) or any(b <= a for a, b in itertools.pairwise(q)):
        raise SpecError(f"level quantiles must be 4 increasing values in (0, 1), got {list(quantiles)}")
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        return []
    if not np.all(np.isfinite(arr)):
        raise SpecError("scores to map to levels must be finite numbers")
    values = arr if higher_is_better else -arr
    cuts = np.quantile(values, q)
    worst_first = LEVELS[::-1]  # bad, poor, fair, good, excellent
    return [worst_first[int(np.searchsorted(cuts, v, side="left"))] for v in values]


def scores_from_pairs(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Bradley-Terry scores (0-100, win probability against an average item) from pairwise labels.

    Each row has ``image_a``, ``image_b`` and ``winner`` ("A"/"B"); when it holds ``p_a`` (the share of
    votes for A, from ``srjudge evolve``) that share is the outcome, else the winner counts 1/0. Rows
    marked ``skipped`` are left out. Fit by :func:`srjudge.judges.vlm.aggregate.bradley_terry`.
    """
    from srjudge.judges.vlm.aggregate import bradley_terry, strength_to_score

    index: dict[str, int] = {}
    outcomes: list[tuple[int, int, float]] = []
    for n, row in enumerate(rows, 1):
        if row.get("skipped"):
            continue
        a, b, winner = row.get("image_a"), row.get("image_b"), row.get("winner")
        if not isinstance(a, str) or not isinstance(b, str):
            raise SpecError(f"pair row {n}: image_a and image_b must be strings, got {a!r}, {b!r}")
        if winner not in ("A", "B"):
            raise SpecError(f"pair row {n}: winner must be 'A' or 'B', got {winner!r}")
        p_a = row.get("p_a")
        w = float(p_a) if isinstance(p_a, int | float) and not isinstance(p_a, bool) else float(winner == "A")
        i, j = index.setdefault(a, len(index)), index.setdefault(b, len(index))
        outcomes.append((i, j, w))
    if not outcomes:
        raise SpecError("no usable pair (every row is skipped, or the file is empty)")
    scores = strength_to_score(bradley_terry(len(index), outcomes))
    return {name: scores[i] for name, i in index.items()}


# ----------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TuneConfig:
    """Everything that defines one tuning stage (YAML: ``srjudge tune --write-config tune.yaml``).

    ``data``: for ``perceive``, a ``srjudge degrade`` output folder (LR PNGs + JSON sidecars); for
    ``infer``, a bench MOS dataset (CSV/JSONL or its folder) or a pseudo-label JSONL (``image_a``,
    ``image_b``, ``winner``). ``max_steps`` > 0 overrides ``epochs``. ``lora: null`` = full fine-tuning.
    """

    base_model: str = ""
    stage: str = "perceive"
    data: str = ""
    out_dir: str = "srjudge-out/tune"
    lora: LoraSettings | None = field(default_factory=LoraSettings)
    lr: float = 1e-4
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 1
    grad_accum: int = 1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    max_side: int = DEFAULT_MAX_SIDE
    max_length: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    save_steps: int = 0
    merge: bool = True
    content: str = "an image"
    description_source: str = "auto"
    perceive_model: str | None = None
    level_quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    eval_dataset: str | None = None
    eval_repeats: int = 3
    eval_options: str = "temperature=0.7,retries=1"

    def __post_init__(self) -> None:
        import difflib

        if self.stage not in STAGES:
            close = difflib.get_close_matches(self.stage, STAGES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"stage must be perceive or infer, got {self.stage!r}{hint}")
        if self.description_source not in ("auto", "record", "model"):
            raise SpecError(
                f"description_source must be auto, record or model, got {self.description_source!r}"
            )
        positive = {
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "max_side": self.max_side,
            "logging_steps": self.logging_steps,
            "eval_repeats": self.eval_repeats,
        }
        for name, value in positive.items():
            if value < 1:
                raise SpecError(f"{name} must be at least 1, got {value}")
        if not self.lr > 0:
            raise SpecError(f"lr must be positive, got {self.lr}")
        if self.max_steps <= 0 and not self.epochs > 0:
            raise SpecError(
                f"give epochs > 0 or max_steps > 0 (got epochs={self.epochs}, max_steps={self.max_steps})"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise SpecError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.save_steps < 0:
            raise SpecError(
                f"save_steps must be >= 0 (0 = no intermediate checkpoints), got {self.save_steps}"
            )
        levels_from_scores([0.0], self.level_quantiles)  # validates the quantiles

    def require(self) -> None:
        """Check the fields a run needs (a default config may leave them empty)."""
        if not self.base_model:
            raise SpecError(
                "base_model is required: a local model folder (--base /models/Qwen2.5-VL-3B-Instruct)"
            )
        if not self.data:
            what = (
                "a `srjudge degrade` folder"
                if self.stage == "perceive"
                else "a MOS dataset or pseudo-label JSONL"
            )
            raise SpecError(f"data is required for stage {self.stage}: {what} (--data PATH)")


# ----------------------------------------------------------------------------------------------------------
# Reading training data (file I/O)
# ----------------------------------------------------------------------------------------------------------


def read_degrade_folder(folder: Path) -> list[tuple[Path, DegradationRecord]]:
    """(LR image, record) pairs of a ``srjudge degrade`` output folder (recursively), sorted by path.

    A sidecar is ``<stem>.json`` holding a degradation record next to ``<stem>.png``. Raises
    :class:`SrjudgeError` naming the folder when none is found, or naming a sidecar without its image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SrjudgeError(f"{folder}: not a folder; give the output folder of `srjudge degrade`")
    pairs: list[tuple[Path, DegradationRecord]] = []
    for sidecar in sorted(folder.rglob("*.json")):
        if sidecar.name.startswith("."):
            continue
        try:
            record = DegradationRecord.from_json(sidecar.read_text(encoding="utf-8"))
        except (SpecError, UnicodeDecodeError):
            continue  # dataset.json, a training record, ...: not a degradation sidecar
        image = sidecar.with_suffix(".png")
        if not image.is_file():
            raise SrjudgeError(
                f"{sidecar}: degradation sidecar without its image {image.name}; rerun srjudge degrade"
            )
        pairs.append((image, record))
    if not pairs:
        raise SrjudgeError(
            f"{folder}: no degradation sidecars (<name>.json next to <name>.png); make them with "
            f"`srjudge degrade HR_FOLDER --out {folder}`"
        )
    return pairs


def read_label_source(
    path: Path, quantiles: Sequence[float] = DEFAULT_QUANTILES
) -> list[tuple[Path, str, float]]:
    """(image, level, score) from a bench MOS dataset or a pseudo-label JSONL, levels by quantiles.

    A ``.jsonl`` whose rows hold ``image_a`` is read as pairwise pseudo-labels (Bradley-Terry scores,
    image paths relative to the JSONL's folder unless absolute); anything else goes through
    :func:`srjudge.bench.datasets.load_dataset` and must be a MOS dataset.
    """
    path = Path(path)
    if path.suffix.lower() == ".jsonl" and path.is_file():
        rows: list[dict[str, Any]] = []
        for n, row in read_jsonl(path):  # only a cut last line is left out; other bad lines raise
            if not isinstance(row, dict):
                raise SpecError(f"{path}:{n}: expected a JSON object per line")
            rows.append(row)
        if rows and "image_a" in rows[0]:
            scores = scores_from_pairs(rows)
            names = list(scores)
            levels = levels_from_scores([scores[k] for k in names], quantiles)
            out = []
            for name, level in zip(names, levels, strict=True):
                image = Path(name) if Path(name).is_absolute() else path.parent / name
                if not image.is_file():
                    raise SrjudgeError(f"{path}: image {name!r} not found (looked for {image})")
                out.append((image, level, scores[name]))
            return out
    from srjudge.bench.datasets import MOSDataset, load_dataset

    dataset = load_dataset(path)
    if not isinstance(dataset, MOSDataset):
        raise SpecError(
            f"{path}: a {type(dataset).__name__} cannot label stage infer; give a MOS dataset or a "
            "pseudo-label JSONL (image_a, image_b, winner)"
        )
    levels = levels_from_scores(
        [item.score for item in dataset.items], quantiles, higher_is_better=dataset.higher_is_better
    )
    return [(item.image, level, item.score) for item, level in zip(dataset.items, levels, strict=True)]


def _sidecar_record(image: Path) -> DegradationRecord | None:
    sidecar = image.with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        return DegradationRecord.from_json(sidecar.read_text(encoding="utf-8"))
    except (SpecError, UnicodeDecodeError):
        return None


def _digest_examples(examples: Sequence[TrainExample]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps(ex.key(), sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


def _write_examples(examples: Sequence[TrainExample], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.key(), sort_keys=True) + "\n")


def build_perceive_examples(cfg: TuneConfig) -> list[TrainExample]:
    """Stage-1 examples from the degrade folder ``cfg.data`` (targets from the records)."""
    from srjudge.images.io import load_image

    return [
        perceive_example(
            load_image(image),
            cfg.content,
            degradation_distortions(record),
            max_side=cfg.max_side,
            source=str(image),
        )
        for image, record in read_degrade_folder(Path(cfg.data))
    ]


class _Perceiver:
    """The stage-1 model's perception of images (greedy, the protocol's prompt), cached in a JSONL.

    The cache is keyed by model revision and image digest, so an interrupted stage 2 resumes without
    asking the model again.
    """

    def __init__(self, model: str, device: str, cache: Path, max_side: int) -> None:
        from srjudge.vlm.backends.base import create_backend

        dev = "cpu" if device == "auto" else device
        if device == "auto":
            import torch

            dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.backend: Any = create_backend("hf", {"model": model, "device": dev})
        self.max_side = max_side
        self.cache = cache
        self.rows: dict[str, dict[str, Any]] = {}
        if cache.is_file():
            for n, row in read_jsonl(cache):  # only a cut last line is left out; other bad lines raise
                if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                    raise SrjudgeError(f"{cache}:{n}: not a cache row (no 'key'); delete {cache} to redo it.")
                self.rows[row["key"]] = row

    def __call__(self, image: np.ndarray) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        template = PROMPTS.get("perceive")
        fitted, _ = fit_longest_side(image, self.max_side)
        part = ImagePart.of(fitted)
        key = f"{self.backend.revision}:{template.ref}:{part.digest}"
        if key not in self.rows:
            params = GenerationParams(
                max_tokens=256, temperature=0.0, seed=0, json_schema=template.schema, schema_name="perceive"
            )
            request = ChatRequest(
                messages=protocol_messages(template, [part, TextPart(template.render())]),
                params=params,
                template=template.ref,
            )
            text = self.backend.complete([request])[0].text
            row = {"key": key, "text": text}
            with open_for_append(self.cache) as fh:
                fh.write(json.dumps(row) + "\n")
            self.rows[key] = row
        try:
            return parse_perception(str(self.rows[key]["text"]))
        except ParseError:
            return None

    def close(self) -> None:
        self.backend.close()


def build_infer_examples(cfg: TuneConfig, out_dir: Path) -> tuple[list[TrainExample], dict[str, Any]]:
    """Stage-2 examples: labelled images -> their description (record or model) -> infer prompt -> level."""
    from srjudge.images.io import load_image

    labelled = read_label_source(Path(cfg.data), cfg.level_quantiles)
    examples: list[TrainExample] = []
    stats = {"labelled": len(labelled), "from_record": 0, "from_model": 0, "unreadable_perception": 0}
    perceiver: _Perceiver | None = None
    try:
        for image_path, level, _score in labelled:
            record = _sidecar_record(image_path) if cfg.description_source != "model" else None
            if record is not None:
                d = degradation_distortions(record)
                reading: tuple[str, tuple[tuple[str, str], ...]] = (
                    cfg.content,
                    tuple((x.label, x.severity) for x in d),
                )
                stats["from_record"] += 1
            elif cfg.description_source == "record":
                raise SrjudgeError(
                    f"{image_path}: no degradation sidecar ({image_path.with_suffix('.json').name}); "
                    "use description_source auto or model to describe it with the stage-1 model"
                )
            else:
                if perceiver is None:
                    perceiver = _Perceiver(
                        cfg.perceive_model or cfg.base_model,
                        cfg.device,
                        out_dir / "perceptions.jsonl",
                        cfg.max_side,
                    )
                perceived = perceiver(load_image(image_path))
                if perceived is None:
                    stats["unreadable_perception"] += 1
                    continue
                reading = perceived
                stats["from_model"] += 1
            examples.append(infer_example(reading[0], reading[1], level, source=str(image_path)))
    finally:
        if perceiver is not None:
            perceiver.close()
    if not examples:
        raise SrjudgeError(
            f"stage infer: none of the {len(labelled)} labelled images got a readable description "
            f"({stats['unreadable_perception']} unreadable perceptions by "
            f"{cfg.perceive_model or cfg.base_model}); "
            "train stage perceive first, or give images with degradation sidecars"
        )
    return examples, stats


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageResult:
    """What one stage produced: the output folder (loadable by ``vlm:hf``) and its training metrics."""

    stage: str
    out_dir: Path
    base_model: str
    n_examples: int
    steps: int
    losses: tuple[tuple[int, float], ...]
    seconds: float
    trainable_params: int
    total_params: int
    dataset_digest: str
    data_stats: Mapping[str, Any] = field(default_factory=dict)
    eval: Mapping[str, Any] | None = None
    model: Any = field(default=None, compare=False, repr=False)
    """The trained model in memory (adapters unmerged), only with ``train_stage(..., keep_model=True)``."""

    def metrics(self) -> dict[str, Any]:
        return {
            "n_examples": self.n_examples,
            "steps": self.steps,
            "train_loss": [{"step": s, "loss": v} for s, v in self.losses],
            "first_loss": self.losses[0][1] if self.losses else None,
            "last_loss": self.losses[-1][1] if self.losses else None,
            "seconds": round(self.seconds, 3),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "data": dict(self.data_stats),
            **({"eval": dict(self.eval)} if self.eval is not None else {}),
        }


def _sft_config(cfg: TuneConfig, out_dir: Path, device: str, model: Any) -> Any:
    import torch
    from trl import SFTConfig

    on_cpu = device == "cpu"
    dtype = next(model.parameters()).dtype
    return SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps > 0 else "no",
        save_steps=max(cfg.save_steps, 1),
        save_total_limit=2 if cfg.save_steps > 0 else None,
        report_to=[],
        use_cpu=on_cpu,
        bf16=(not on_cpu) and dtype == torch.bfloat16,
        fp16=(not on_cpu) and dtype == torch.float16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        completion_only_loss=True,
        max_length=cfg.max_length,
        dataloader_num_workers=0,
        disable_tqdm=True,
        optim="adamw_torch",
    )


def train_stage(
    cfg: TuneConfig,
    examples: Sequence[TrainExample],
    out_dir: Path,
    *,
    data_stats: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    keep_model: bool = False,
) -> StageResult:
    """Fine-tune ``cfg.base_model`` on ``examples`` with trl's SFTTrainer; save merged model + adapter.

    Checkpoints (``save_steps`` > 0) go to ``out_dir/checkpoints`` and an interrupted run resumes from
    the latest one. Writes the model, ``adapter/``, ``tune.yaml``, ``train_data.jsonl`` (the examples'
    identity: image digests, prompts, targets) and ``srjudge_training.json``.
    """
    import datasets  # type: ignore[import-untyped, unused-ignore]
    import transformers
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    from srjudge.train.common import resolve_train_device

    if not examples:
        raise SrjudgeError("no training examples")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    transformers.set_seed(cfg.seed)
    digest = _digest_examples(examples)
    _write_examples(examples, out_dir / "train_data.jsonl")
    save_config_yaml(cfg, out_dir / "tune.yaml")
    device = resolve_train_device(cfg.device)
    model, processor = load_vlm_for_training(cfg.base_model, device=cfg.device, dtype=cfg.dtype)
    tok = processor.tokenizer
    model.config.get_text_config().pad_token_id = tok.pad_token_id
    model = apply_lora(model, cfg.lora)
    trainable, total = trainable_parameter_count(model)
    collator = PromptCompletionCollator(processor, list(examples), cfg.max_length)
    train_ds = datasets.Dataset.from_dict({"index": list(range(len(examples)))})
    args = _sft_config(cfg, out_dir, device, model)
    transformers.logging.set_verbosity_error()
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=train_ds, processing_class=processor, data_collator=collator
    )
    trainer.remove_callback(transformers.PrinterCallback)  # losses are logged below and in the record
    ckpt_dir = out_dir / "checkpoints"
    last = get_last_checkpoint(str(ckpt_dir)) if cfg.save_steps > 0 and ckpt_dir.is_dir() else None
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)  # the highest step number, not the last name in order
    seconds = time.perf_counter() - started
    with contextlib.suppress(OSError):  # no intermediate checkpoints: drop the empty folder
        (out_dir / "checkpoints").rmdir()
    losses = tuple(
        (int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e and "step" in e
    )
    if log is not None:
        for s, v in losses:
            log(f"step {s}: loss {v:.4f}")
    trained = trainer.accelerator.unwrap_model(trainer.model)
    trained.eval()
    save_trained_vlm(trained, processor, out_dir, merge=cfg.merge, base_path=Path(cfg.base_model))
    result = StageResult(
        stage=cfg.stage,
        out_dir=out_dir,
        base_model=cfg.base_model,
        n_examples=len(examples),
        steps=int(trainer.state.global_step),
        losses=losses,
        seconds=seconds,
        trainable_params=trainable,
        total_params=total,
        dataset_digest=digest,
        data_stats=dict(data_stats or {}),
    )
    write_training_record(
        out_dir,
        kind=f"tune-{cfg.stage}",
        config=cfg,
        base_model=cfg.base_model,
        dataset_digest=digest,
        metrics=result.metrics(),
    )
    return dataclasses.replace(result, model=trained) if keep_model else result


# ----------------------------------------------------------------------------------------------------------
# Evaluation: bench before and after
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSummary:
    """SRCC/PLCC and the level flip rate over sampled repeats, from one ``srjudge bench`` run."""

    model: str
    srcc: str
    plcc: str
    level_flip_rate: float | None
    abstained: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _judge_spec(model: str, cfg: TuneConfig, cache: Path) -> str:
    extra = f",{cfg.eval_options}" if cfg.eval_options.strip() else ""
    return f"vlm:hf,model={model},protocol=perceive-infer,max_side={cfg.max_side},cache={cache}{extra}"


def run_eval(model: str, cfg: TuneConfig, out_dir: Path) -> EvalSummary:
    """Bench ``model`` with protocol perceive-infer on ``cfg.eval_dataset`` (a MOS dataset).

    One :func:`srjudge.bench.evaluate.run_bench` run with ``repeats=eval_repeats``: each repeat samples with
    its own seed (``eval_options`` sets the temperature), SRCC/PLCC use the mean over repeats, and the flip
    rate is the share of images whose quality level differs among the repeats. Judgements are cached in
    ``out_dir/cache.sqlite``.
    """
    from srjudge.bench.datasets import MOSDataset, load_dataset
    from srjudge.bench.evaluate import run_bench
    from srjudge.judges import create_judge

    if cfg.eval_dataset is None:
        raise SpecError("no eval dataset given (--eval DATASET)")
    dataset = load_dataset(cfg.eval_dataset)
    if not isinstance(dataset, MOSDataset):
        raise SpecError(f"{cfg.eval_dataset}: --eval needs a MOS dataset, got a {type(dataset).__name__}")
    out_dir.mkdir(parents=True, exist_ok=True)
    judge = create_judge(_judge_spec(model, cfg, out_dir / "cache.sqlite"))
    row = run_bench(
        dataset, [judge], out_dir / "bench", repeats=cfg.eval_repeats, n_boot=200, seed=cfg.seed, plots=False
    )[0]
    return EvalSummary(
        model=model,
        srcc=str(row.get("SRCC")),
        plcc=str(row.get("PLCC")),
        level_flip_rate=row.get("level_flip_rate"),
        abstained=int(row.get("abstained") or 0),
        n=len(dataset.items),
    )


# ----------------------------------------------------------------------------------------------------------
# The command's library entry point
# ----------------------------------------------------------------------------------------------------------


def run_tune(cfg: TuneConfig, *, log: Callable[[str], None] | None = None) -> StageResult:
    """Build the stage's examples from ``cfg.data``, train, save, and (with ``eval_dataset``) bench
    the base and the tuned model; everything lands in ``cfg.out_dir``."""
    cfg.require()
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    if cfg.stage == "perceive":
        examples = build_perceive_examples(cfg)
        stats: dict[str, Any] = {"degraded_images": len(examples)}
    else:
        examples, stats = build_infer_examples(cfg, out_dir)
    say(f"stage {cfg.stage}: {len(examples)} examples from {cfg.data}")
    result = train_stage(cfg, examples, out_dir, data_stats=stats, log=log)
    say(f"saved {result.out_dir} ({result.steps} steps, {result.seconds:.1f} s)")
    if cfg.eval_dataset is not None:
        before = run_eval(cfg.base_model, cfg, out_dir / "eval" / "base")
        after = run_eval(str(out_dir), cfg, out_dir / "eval" / "tuned")
        evaluation = {
            "dataset": cfg.eval_dataset,
            "repeats": cfg.eval_repeats,
            "options": cfg.eval_options,
            "base": before.to_dict(),
            "tuned": after.to_dict(),
        }
        result = dataclasses.replace(result, eval=evaluation)
        record = json.loads((out_dir / RECORD_NAME).read_text(encoding="utf-8"))
        write_training_record(
            out_dir,
            kind=record["kind"],
            config=config_to_dict(cfg),
            base_model=cfg.base_model,
            dataset_digest=result.dataset_digest,
            metrics=result.metrics(),
        )
    return result
