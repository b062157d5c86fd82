"""EvoQuality's online stage: GRPO on a local VLM against pairwise pseudo-labels (trl's GRPOTrainer).

The policy sees exactly the prompt of the srjudge pairwise protocol (``vlm:...,protocol=pairwise``):
the ``pairwise`` template's system text, "The first image:", image, "The second image:", image, then
the question; its answer is read with the protocol's own parser (the first of first/second/tie).
So a model trained here is judged with ``vlm:hf,model=OUT,protocol=pairwise`` unchanged. Every
pseudo-labelled pair enters the training set in BOTH orders (against position bias), each with
``p_first``, the pseudo-label's probability that the image shown first is better.

Rewards (pure functions, the trl signature ``f(prompts, completions, **columns) -> list[float]``):

- :func:`fidelity_reward` (the paper's reward, from the fidelity loss of Thurstone-model IQA
  training): ``r = sqrt(p* p) + sqrt((1 - p*)(1 - p))`` with ``p*`` the pseudo-label's probability
  that the first image is better and ``p`` the completion's preference (1 for "first", 0 for
  "second", 0.5 for "tie"). It is 1 when the answer matches a unanimous label, sqrt(p*) for
  "first" against a label of p*, and 0 for an unparseable answer (no credit for an answer the
  judge could not read).
- :func:`format_reward`: 1.0 when the protocol's parser reads the answer, else 0.0.

Their weights are :class:`GRPOSettings` ``fidelity_weight`` and ``format_weight`` (trl's
``reward_weights``). LoRA (peft, via :mod:`srjudge.train.common`) by default, full fine-tuning
with ``lora=None``. torch, transformers, trl and datasets are imported only when training.

Processor adapter: the image-only processor that ``models.hf_folder.load_processor`` builds (for
Qwen2-VL checkpoints without torchvision) serves GRPOTrainer as it is; the one thing set here is
the tokenizer's ``padding_side = "left"``, which GRPOTrainer asks of its processing class.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from srjudge.errors import SpecError, SrjudgeError
from srjudge.judges.vlm import parsing
from srjudge.judges.vlm.parsing import PREFERENCES, ParseError
from srjudge.train.common import (
    LoraSettings,
    apply_lora,
    load_vlm_for_training,
    resolve_train_device,
    save_trained_vlm,
    trainable_parameter_count,
)
from srjudge.train.pseudo_labels import PseudoLabel
from srjudge.vlm.prompts import PROMPTS, PromptTemplate, load_prompt_file

#: The completion's preference for the image shown first, by the protocol's answer word.
PREFERENCE_VALUE = {"first": 1.0, "second": 0.0, "tie": 0.5}


# ----------------------------------------------------------------------------------------------------------
# Rewards (pure)
# ----------------------------------------------------------------------------------------------------------


def completion_text(completion: Any) -> str:
    """The text of a trl completion: a string, or conversational messages (the assistant's content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return completion_text(completion.get("content", ""))
    if isinstance(completion, Sequence):
        parts = []
        for item in completion:
            if isinstance(item, Mapping):
                if item.get("type") not in (None, "text"):
                    continue  # an image part, say
                parts.append(completion_text(item.get("text", item.get("content", ""))))
            else:
                parts.append(completion_text(item))
        return "".join(parts)
    return ""


def parse_preference(text: str) -> float | None:
    """The answer's preference for the first image (1, 0, or 0.5 for a tie), read by the protocol's parser.

    ``None`` when the parser cannot read it (no first/second/tie among the first words, or a refusal).
    """
    try:
        word = parsing.first_word(text, PREFERENCES)
    except ParseError:
        return None
    return PREFERENCE_VALUE[word]


def fidelity(p_star: float, p: float) -> float:
    """The fidelity between the label's and the answer's Bernoulli preferences, in [0, 1]."""
    if not (0.0 <= p_star <= 1.0 and 0.0 <= p <= 1.0):
        raise SpecError(f"fidelity needs probabilities in [0, 1], got p*={p_star}, p={p}.")
    return math.sqrt(p_star * p) + math.sqrt((1.0 - p_star) * (1.0 - p))


def fidelity_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
    """Fidelity of each completion's preference to the pseudo-label ``p_first``; 0 for unparseable ones."""
    p_first = columns.get("p_first")
    if p_first is None or len(p_first) != len(completions):
        raise SrjudgeError("fidelity_reward needs the dataset column 'p_first', one value per completion.")
    out = []
    for completion, p_star in zip(completions, p_first, strict=True):
        p = parse_preference(completion_text(completion))
        out.append(0.0 if p is None else fidelity(float(p_star), p))
    return out


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
    """1.0 when the protocol's parser reads the completion, else 0.0."""
    return [0.0 if parse_preference(completion_text(c)) is None else 1.0 for c in completions]


# ----------------------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GRPOSettings:
    """GRPO hyper-parameters (trl names in brackets) and the reward weights.

    ``batch_size`` [per_device_train_batch_size] counts completions per device and step; times
    ``gradient_accumulation_steps`` it must be a multiple of ``num_generations`` (completions
    per prompt). ``max_steps`` wins over ``epochs`` when set. ``device``: auto (the GPU when one is
    visible), cpu, cuda; ``dtype``: auto (bf16 on a GPU that has it, else float32), float32, bfloat16.
    """

    learning_rate: float = 1e-5
    max_steps: int | None = None
    epochs: float = 1.0
    num_generations: int = 4
    beta: float = 0.04
    max_completion_length: int = 8
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    temperature: float = 1.0
    fidelity_weight: float = 1.0
    format_weight: float = 0.2
    gradient_checkpointing: bool = False
    use_vllm: bool = False
    logging_steps: int = 1
    device: str = "auto"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise SpecError(f"grpo.learning_rate must be positive, got {self.learning_rate}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise SpecError(
                f"grpo.max_steps must be >= 1 (or null to train for epochs), got {self.max_steps}."
            )
        if self.epochs <= 0:
            raise SpecError(f"grpo.epochs must be positive, got {self.epochs}.")
        if self.num_generations < 2:
            raise SpecError(
                f"grpo.num_generations must be >= 2 (GRPO compares completions of one prompt), "
                f"got {self.num_generations}."
            )
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise SpecError("grpo.batch_size and grpo.gradient_accumulation_steps must be >= 1.")
        if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise SpecError(
                f"grpo.batch_size x grpo.gradient_accumulation_steps = "
                f"{self.batch_size * self.gradient_accumulation_steps} must be a multiple of "
                f"grpo.num_generations = {self.num_generations}."
            )
        if self.beta < 0:
            raise SpecError(f"grpo.beta must be >= 0, got {self.beta}.")
        if self.max_completion_length < 1:
            raise SpecError(f"grpo.max_completion_length must be >= 1, got {self.max_completion_length}.")
        if self.temperature <= 0:
            raise SpecError(f"grpo.temperature must be positive (GRPO samples), got {self.temperature}.")
        if (
            self.fidelity_weight < 0
            or self.format_weight < 0
            or self.fidelity_weight + self.format_weight == 0
        ):
            raise SpecError(
                "grpo.fidelity_weight and grpo.format_weight must be >= 0 and not both 0, got "
                f"{self.fidelity_weight} and {self.format_weight}."
            )
        if self.logging_steps < 1:
            raise SpecError(f"grpo.logging_steps must be >= 1, got {self.logging_steps}.")


# ----------------------------------------------------------------------------------------------------------
# The training set
# ----------------------------------------------------------------------------------------------------------


def pairwise_template(prompt: str | None = None) -> PromptTemplate:
    """The template the pairwise protocol uses: the built-in ``pairwise`` one, or a user file."""
    return load_prompt_file(prompt) if prompt else PROMPTS.get("pairwise")


def pairwise_messages(template: PromptTemplate) -> list[dict[str, Any]]:
    """The protocol's conversation for one pair, with two image placeholders (trl's VLM prompt format).

    The same parts, in the same order, as ``VLMJudge._pair_outcomes`` sends (first attempt).
    """
    messages: list[dict[str, Any]] = []
    if template.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": template.system}]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": template.user_before},
                {"type": "image"},
                {"type": "text", "text": template.user_between},
                {"type": "image"},
                {"type": "text", "text": template.render()},
            ],
        }
    )
    return messages


@dataclass(frozen=True)
class TrainingRow:
    """One prompt of the training set: which image is shown first, and ``p_first`` for it."""

    first: str
    second: str
    p_first: float
    pair: str
    order: str


def training_rows(labels: Sequence[PseudoLabel]) -> list[TrainingRow]:
    """Both orders of every pair that was not skipped; ``p_first`` is p_a for A-first, 1 - p_a for B-first."""
    rows: list[TrainingRow] = []
    for label in labels:
        if label.skipped or label.p_a is None:
            continue
        rows.append(TrainingRow(label.image_a, label.image_b, float(label.p_a), label.key, "AB"))
        rows.append(TrainingRow(label.image_b, label.image_a, 1.0 - float(label.p_a), label.key, "BA"))
    return rows


def build_dataset(rows: Sequence[TrainingRow], template: PromptTemplate, max_side: int) -> Any:
    """A ``datasets.Dataset`` with ``prompt`` (conversational), ``images`` (two PIL images), ``p_first``."""
    import importlib

    from srjudge.images.io import load_image
    from srjudge.vlm.backends.hf_backend import to_pil
    from srjudge.vlm.images import fit_longest_side

    datasets = importlib.import_module("datasets")  # untyped; imported only when training

    if not rows:
        raise SrjudgeError(
            "no pseudo-label to train on: every pair was skipped (no clear majority). Lower min_share, "
            "raise the number of votes (samples), or add images."
        )
    cache: dict[str, Any] = {}

    def image(path: str) -> Any:
        if path not in cache:
            # as the judge sends it: longest side fitted to max_side (Lanczos), 8-bit RGB
            cache[path] = to_pil(fit_longest_side(load_image(path), max_side)[0])
        return cache[path]

    messages = pairwise_messages(template)
    return datasets.Dataset.from_list(
        [
            {
                "prompt": messages,
                "images": [image(r.first), image(r.second)],
                "p_first": r.p_first,
                "pair": r.pair,
                "order": r.order,
            }
            for r in rows
        ]
    )


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GRPOResult:
    """What a GRPO run produced: the merged model folder, its adapter, and the logged steps."""

    model_dir: str
    adapter_dir: str | None
    steps: int
    rows: int
    pairs: int
    seconds: float
    log: tuple[Mapping[str, float], ...]
    trainable_parameters: int
    writer: bool = True
    processes: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Every field but ``writer`` (which process returned it, not what the run made), in field order."""
        data = {**asdict(self), "seconds": round(self.seconds, 3), "log": [dict(x) for x in self.log]}
        del data["writer"]
        return data


_LOG_KEYS = ("loss", "reward", "reward_std", "kl", "learning_rate", "grad_norm", "completions/mean_length")


def _step_log(history: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], ...]:
    """The per-step rewards (mean per reward function), loss and KL from trl's log history."""
    out: list[dict[str, float]] = []
    for entry in history:
        if "reward" not in entry:
            continue
        row = {"step": float(entry.get("step", len(out) + 1))}
        for key, value in entry.items():
            wanted = key in _LOG_KEYS or (key.startswith("rewards/") and key.endswith("/mean"))
            if wanted and isinstance(value, int | float):
                row[key] = float(value)
        out.append(row)
    return tuple(out)


def env_world_size() -> int:
    """``WORLD_SIZE`` as ``accelerate launch``/``torchrun`` set it (1 when unset or unreadable)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1") or "1"))
    except ValueError:
        return 1


def is_writer(process_index: int, num_processes: int, world_size_env: int = 1) -> bool:
    """Whether this process writes models, records and logs: only process 0 of the run does.

    ``process_index``/``num_processes`` come from accelerate (``PartialState`` or the trainer's
    ``accelerator``), ``world_size_env`` from the launcher's ``WORLD_SIZE``. When the launcher says
    several processes but accelerate sees another number, every process would think it is the only
    one and write the same files: that is refused.
    """
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise SrjudgeError(f"process index {process_index} is not within {num_processes} process(es).")
    if world_size_env > 1 and num_processes != world_size_env:
        raise SrjudgeError(
            f"WORLD_SIZE={world_size_env} but accelerate sees {num_processes} process(es): the processes "
            "are not one distributed run, and each would write the same files. Start the run with "
            "`accelerate launch --num_processes N -m srjudge.cli.main evolve train ...`."
        )
    return process_index == 0


def grpo_config(settings: GRPOSettings, out_dir: Path, *, seed: int, use_cpu: bool, bf16: bool) -> Any:
    """trl's GRPOConfig for these settings (no checkpoints, no reporting: srjudge writes its own record)."""
    from trl import GRPOConfig

    kwargs: dict[str, Any] = {
        "output_dir": str(out_dir),
        "learning_rate": settings.learning_rate,
        "num_generations": settings.num_generations,
        "beta": settings.beta,
        "max_completion_length": settings.max_completion_length,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "temperature": settings.temperature,
        "reward_weights": [settings.fidelity_weight, settings.format_weight],
        "gradient_checkpointing": settings.gradient_checkpointing,
        "use_vllm": settings.use_vllm,
        "use_cpu": use_cpu,
        "bf16": bf16,
        "logging_steps": settings.logging_steps,
        "save_strategy": "no",
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
        "disable_tqdm": True,
    }
    if settings.max_steps is not None:
        kwargs["max_steps"] = settings.max_steps
    else:
        kwargs["num_train_epochs"] = settings.epochs
    return GRPOConfig(**kwargs)


def train_grpo(
    labels: Sequence[PseudoLabel],
    base_model: str | Path,
    out_dir: Path,
    *,
    settings: GRPOSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_side: int | None = None,
    prompt: str | None = None,
) -> GRPOResult:
    """Train ``base_model`` with GRPO on the pseudo-labels; save the merged model to ``out_dir/'model'``.

    ``lora=None`` trains every parameter. The adapter (LoRA) is kept in ``out_dir/'model'/'adapter'``.
    trl's own scratch output goes to ``out_dir/'trainer'``. Returns the logged rewards per step.

    Safe under ``accelerate launch --num_processes N``: every process builds the same dataset from
    ``labels`` (same order), trl/accelerate share the batches out, and only process 0
    (:func:`is_writer`) saves the model; the others wait for it (accelerate's barrier) and return
    a result with ``writer=False``. Under plain DDP each process holds the whole model, so the
    merge needs nothing gathered (sharded ZeRO-3/FSDP states are not supported here).
    """
    from srjudge.models.hf_folder import resolve_model_path
    from srjudge.vlm.images import DEFAULT_MAX_SIDE

    settings = settings or GRPOSettings()
    template = pairwise_template(prompt)
    rows = training_rows(labels)
    dataset = build_dataset(rows, template, max_side or DEFAULT_MAX_SIDE)

    import torch
    from transformers import set_seed
    from trl import GRPOTrainer

    device = resolve_train_device(settings.device)
    set_seed(seed)
    model, processor = load_vlm_for_training(base_model, device="auto", dtype=settings.dtype)
    processor.tokenizer.padding_side = "left"  # GRPOTrainer pads prompts on the left
    bf16 = model.dtype == torch.bfloat16
    model = apply_lora(model, lora)
    trainable, _ = trainable_parameter_count(model)
    config = grpo_config(settings, out_dir / "trainer", seed=seed, use_cpu=device == "cpu", bf16=bf16)
    rewards: list[Any] = [fidelity_reward, format_reward]  # named in trl's logs: rewards/<name>/mean
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=config,
        train_dataset=dataset,
        processing_class=processor,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # srjudge reports the logged steps itself
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    accelerator = trainer.accelerator
    writer = is_writer(accelerator.process_index, accelerator.num_processes, env_world_size())
    trained: Any = accelerator.unwrap_model(trainer.model)
    model_dir = out_dir / "model"
    if writer:
        peft_config = getattr(trained, "peft_config", None)
        if isinstance(peft_config, Mapping) and "ref" in peft_config and len(peft_config) > 1:
            trained.delete_adapter("ref")  # trl's frozen copy of the initial adapter (the KL reference)
        base_path = resolve_model_path(str(base_model))
        save_trained_vlm(trained, processor, model_dir, merge=True, base_path=base_path)
    accelerator.wait_for_everyone()  # the other processes return once the model is on disk
    adapter = model_dir / "adapter"
    return GRPOResult(
        model_dir=str(model_dir),
        adapter_dir=str(adapter) if adapter.is_dir() else None,
        steps=int(trainer.state.global_step),
        rows=len(rows),
        pairs=len({r.pair for r in rows}),
        seconds=seconds,
        log=_step_log(trainer.state.log_history),
        trainable_parameters=trainable,
        writer=writer,
        processes=int(accelerator.num_processes),
    )


__all__ = [
    "GRPOResult",
    "GRPOSettings",
    "TrainingRow",
    "build_dataset",
    "completion_text",
    "env_world_size",
    "fidelity",
    "fidelity_reward",
    "format_reward",
    "grpo_config",
    "is_writer",
    "pairwise_messages",
    "pairwise_template",
    "parse_preference",
    "train_grpo",
    "training_rows",
]
