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

This module holds a stage's config, its training and its before/after evaluation. Pure logic takes
records, arrays and numbers: targets and labels in :mod:`srjudge.train.tune_targets`, prompts and the
collator in :mod:`srjudge.train.tune_prompts`; the training data is read in :mod:`srjudge.train.tune_data`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from srjudge.errors import SpecError, SrjudgeError
from srjudge.train.common import (
    RECORD_NAME,
    LoraSettings,
    apply_lora,
    config_to_dict,
    load_vlm_for_training,
    resolve_train_device,
    save_config_yaml,
    save_trained_vlm,
    trainable_parameter_count,
    write_training_record,
)
from srjudge.train.tune_data import (
    build_infer_examples,
    build_perceive_examples,
    read_degrade_folder,
    read_label_source,
)
from srjudge.train.tune_prompts import (
    PromptCompletionCollator,
    TrainExample,
    infer_example,
    perceive_example,
    protocol_messages,
    render_prompt,
)
from srjudge.train.tune_targets import (
    BLUR_SIGMA,
    DEFAULT_QUANTILES,
    JPEG_QUALITY,
    NOISE_SIGMA,
    SINC_OMEGA,
    Distortion,
    degradation_distortions,
    describe_degradation,
    levels_from_scores,
    perception_target,
    scores_from_pairs,
)
from srjudge.vlm.images import DEFAULT_MAX_SIDE

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
    "levels_from_scores",
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
# Training
# ----------------------------------------------------------------------------------------------------------


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
