"""Training the LR-conditioned reward model on preference pairs with a Bradley-Terry loss.

``loss = -log sigmoid(r_preferred - r_rejected - margin_weight * margin)`` (+ an optional centring
term ``center_rewards * mean(r^2)``), the reward of each candidate read with its LR input.

The loop is a ``transformers.Trainer`` subclass with its own ``compute_loss`` and data collator, as
trl's ``RewardTrainer`` does for text. trl 1.16's ``RewardTrainer`` itself cannot be used: it loads an
``AutoModelForSequenceClassification`` and tokenises ``chosen``/``rejected`` TEXT with a tokenizer
(``processing_class: PreTrainedTokenizerBase``); it has no image inputs. Being a plain ``Trainer``,
multi-GPU data parallelism comes from ``accelerate launch`` with no code here.

The pairs are split by LR image (seeded; an LR never lands in both parts); pairwise accuracy on the
train and held-out parts is computed at the end of every epoch and appended to ``metrics.jsonl``.
Checkpoints (only the trainable parameters: LoRA and head) go to ``OUT/checkpoints`` and a rerun with
the same pairs and config resumes from the latest one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srjudge import atomic
from srjudge.errors import SrjudgeError
from srjudge.jsonl import open_for_append, read_jsonl
from srjudge.train.common import (
    LoraSettings,
    config_to_dict,
    resolve_train_device,
    save_config_yaml,
    trainable_parameter_count,
    write_training_record,
)
from srjudge.train.reward_pairs import PreferencePair, load_pairs, pairs_digest, split_by_lr

TRAINABLE_FILE = "reward_trainable.safetensors"
RUN_FILE = "reward_run.json"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "reward.yaml"


@dataclass(frozen=True)
class RewardConfig:
    """Reward-model training settings (YAML via :func:`srjudge.train.common.load_config_yaml`)."""

    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    batch_size: int = 2
    grad_accum: int = 8
    max_side: int = 448
    lora: LoraSettings | None = dataclasses.field(default_factory=LoraSettings)
    margin_weight: float = 0.0
    center_rewards: float = 0.0
    heldout_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    save_steps: int = 200
    save_total_limit: int = 2
    dataloader_workers: int = 0
    eval_train_accuracy: bool = True

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "grad_accum": self.grad_accum >= 1,
            "epochs": self.epochs > 0,
            "learning_rate": self.learning_rate > 0,
            "max_side": self.max_side >= 28,
            "margin_weight": self.margin_weight >= 0,
            "center_rewards": self.center_rewards >= 0,
            "heldout_fraction": 0 <= self.heldout_fraction < 1,
            "save_steps": self.save_steps >= 1,
            "logging_steps": self.logging_steps >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise SrjudgeError(f"invalid reward training setting(s): {values}")


def bt_loss(chosen: Any, rejected: Any, margin: Any = None) -> Any:
    """Bradley-Terry loss, mean over pairs: ``-log sigmoid(chosen - rejected - margin)``."""
    import torch

    diff = chosen - rejected
    if margin is not None:
        diff = diff - margin
    return -torch.nn.functional.logsigmoid(diff).mean()


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


class PairsTorchDataset:
    """Pairs as a map-style dataset of plain dicts (paths as strings, margin as float)."""

    def __init__(self, pairs: Sequence[PreferencePair]) -> None:
        self.items = [
            {
                "lr": str(p.lr),
                "preferred": str(p.preferred),
                "rejected": str(p.rejected),
                "margin": 0.0 if p.margin is None else float(p.margin),
            }
            for p in pairs
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


class RewardCollator:
    """Loads the images of a batch of pairs and builds one batch: all preferred, then all rejected."""

    def __init__(self, build: Callable[[Sequence[Any], Sequence[Any]], Any]) -> None:
        self.build = build

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        from srjudge.images.io import load_image

        cache: dict[str, Any] = {}

        def load(path: str) -> Any:
            if path not in cache:
                cache[path] = load_image(path)
            return cache[path]

        lrs = [load(it["lr"]) for it in items]
        hrs = [load(it["preferred"]) for it in items] + [load(it["rejected"]) for it in items]
        batch = dict(self.build(lrs + lrs, hrs))
        batch["margin"] = torch.tensor([float(it["margin"]) for it in items], dtype=torch.float32)
        return batch


# ----------------------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------------------


def _trainer_class() -> type:
    """The Trainer subclass, built lazily so that importing this module does not import transformers."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Trainer

    class RewardTrainer(Trainer):
        """Bradley-Terry ``compute_loss``; predictions are (preferred, rejected) rewards per pair."""

        def __init__(self, *args: Any, margin_weight: float = 0.0, center_rewards: float = 0.0, **kw: Any):
            super().__init__(*args, **kw)
            self.margin_weight = margin_weight
            self.center_rewards = center_rewards
            self.model_accepts_loss_kwargs = False  # the loss is a mean here: let the Trainer scale it

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            inputs = dict(inputs)
            margin = inputs.pop("margin", None)
            rewards = model(**inputs)
            chosen, rejected = torch.chunk(rewards, 2)
            loss = bt_loss(
                chosen,
                rejected,
                None if margin is None or not self.margin_weight else self.margin_weight * margin,
            )
            if self.center_rewards:
                loss = loss + self.center_rewards * torch.mean(rewards**2)
            if return_outputs:
                return loss, {"rewards": torch.stack([chosen, rejected], dim=1)}
            return loss

        def prediction_step(
            self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys: Any = None
        ) -> tuple[Any, Any, Any]:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss, out = self.compute_loss(model, inputs, return_outputs=True)
            logits = out["rewards"].detach().float()
            labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
            return loss.detach(), logits, labels

        def _save(self, output_dir: str | None = None, state_dict: dict[str, Any] | None = None) -> None:
            """A checkpoint holds only the trainable parameters (LoRA and head), not the frozen backbone."""
            if not self.args.should_save:
                return
            folder = Path(str(output_dir or self.args.output_dir))
            folder.mkdir(parents=True, exist_ok=True)
            model = self.accelerator.unwrap_model(self.model)
            state = {
                n: p.detach().to("cpu").contiguous().clone()
                for n, p in model.named_parameters()
                if p.requires_grad
            }
            save_file(state, str(folder / TRAINABLE_FILE), metadata={"format": "pt"})
            torch.save(self.args, folder / "training_args.bin")

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            path = Path(resume_from_checkpoint) / TRAINABLE_FILE
            if not path.is_file():
                raise SrjudgeError(
                    f"checkpoint {resume_from_checkpoint} has no {TRAINABLE_FILE}; it was not written by "
                    "srjudge reward train. Remove the checkpoints folder to start over"
                )
            target = self.accelerator.unwrap_model(model if model is not None else self.model)
            state = load_file(str(path))
            own = dict(target.named_parameters())
            missing = sorted(n for n, p in own.items() if p.requires_grad and n not in state)
            unknown = sorted(n for n in state if n not in own)
            if missing or unknown:
                raise SrjudgeError(
                    f"checkpoint {resume_from_checkpoint} does not match the model (missing {missing[:3]}, "
                    f"unexpected {unknown[:3]}): it was made with other LoRA settings or another base model"
                )
            with torch.no_grad():
                for name, value in state.items():
                    own[name].copy_(value.to(own[name].device, own[name].dtype))

    return RewardTrainer


def pairwise_metrics(predictions: Any) -> dict[str, float]:
    """Accuracy (preferred reward strictly higher), mean margin and mean reward from (N, 2) rewards."""
    import numpy as np

    arr = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
    if arr.size == 0:
        return {"accuracy": float("nan"), "margin": float("nan"), "mean_reward": float("nan")}
    return {
        "accuracy": float(np.mean(arr[:, 0] > arr[:, 1])),
        "margin": float(np.mean(arr[:, 0] - arr[:, 1])),
        "mean_reward": float(np.mean(arr)),
    }


def _compute_metrics(prediction: Any) -> dict[str, float]:
    preds = prediction.predictions
    if isinstance(preds, tuple):
        preds = preds[0]
    return pairwise_metrics(preds)


def _metrics_callback(path: Path) -> Any:
    from transformers import TrainerCallback

    class WriteMetrics(TrainerCallback):
        """Append each evaluation (per split) and each training log to ``metrics.jsonl`` as it happens."""

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not metrics:
                return
            for split in ("train", "heldout"):
                key = f"eval_{split}_accuracy"
                if key in metrics:
                    row = {
                        "kind": "eval",
                        "split": split,
                        "epoch": state.epoch,
                        "step": state.global_step,
                        **{
                            k.removeprefix(f"eval_{split}_"): v
                            for k, v in metrics.items()
                            if k.startswith(f"eval_{split}_")
                        },
                    }
                    _append_jsonl(path, row)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if state.is_world_process_zero and logs and "loss" in logs:
                _append_jsonl(
                    path, {"kind": "train", "epoch": state.epoch, "step": state.global_step, **logs}
                )

    return WriteMetrics()


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with open_for_append(path) as f:
        f.write(json.dumps(row, default=float) + "\n")
        f.flush()


def _keep_rows_up_to(path: Path, step: int) -> None:
    """Rewrite the metrics file ``path`` without its rows logged after ``step`` (a resumed checkpoint's)."""
    kept = [row for _, row in read_jsonl(path) if int(row.get("step", 0)) <= step]
    atomic.write_text(path, "".join(json.dumps(row, default=float) + "\n" for row in kept))


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardTrainResult:
    out_dir: Path
    n_train: int
    n_heldout: int
    resumed_from: str | None
    per_epoch: tuple[dict[str, Any], ...]
    final: dict[str, Any]
    synthetic: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "n_train_pairs": self.n_train,
            "n_heldout_pairs": self.n_heldout,
            "resumed_from": self.resumed_from,
            "synthetic_pairs": self.synthetic,
            "per_epoch": list(self.per_epoch),
            "final": self.final,
        }


def _check_run_identity(out_dir: Path, identity: dict[str, Any]) -> None:
    """A rerun into the same folder must use the same pairs, base model and config, or it would mix runs."""
    path = out_dir / RUN_FILE
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in identity if old.get(k) != identity[k])
        if diff and any((out_dir / "checkpoints").glob("checkpoint-*")):
            raise SrjudgeError(
                f"{out_dir} holds checkpoints of another run (different {', '.join(diff)}); resume with the "
                "same --pairs, --model and config, or choose another --out (or delete its checkpoints folder)"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identity, indent=2, default=str) + "\n", encoding="utf-8")


def train_reward_model(
    pairs_path: str | Path,
    base_model: str | Path,
    out_dir: str | Path,
    config: RewardConfig | None = None,
    *,
    resume: bool = True,
    log: Callable[[str], None] = print,
) -> RewardTrainResult:
    """Train and save a reward model into ``out_dir`` (loadable as the judge ``reward:OUT_DIR``)."""
    import torch
    from transformers import TrainingArguments, set_seed

    from srjudge.train.reward_model import reward_model_from_base

    cfg = config or RewardConfig()
    out = Path(out_dir)
    dataset = load_pairs(pairs_path)
    digest = pairs_digest(pairs_path)
    train_pairs, heldout_pairs = split_by_lr(dataset.pairs, cfg.heldout_fraction, cfg.seed)
    if not train_pairs:
        raise SrjudgeError(f"{pairs_path}: no training pairs left after the held-out split")
    identity = {"pairs_digest": digest, "base_model": str(base_model), "config": config_to_dict(cfg)}
    _check_run_identity(out, identity)
    save_config_yaml(cfg, out / CONFIG_FILE)
    if dataset.synthetic:
        log(f"note: {pairs_path} holds SYNTHETIC pairs (preferences by construction, not human opinion)")
    n_lr_train = len({p.lr for p in train_pairs})
    n_lr_held = len({p.lr for p in heldout_pairs})
    log(
        f"pairs: {len(train_pairs)} train ({n_lr_train} LR images), {len(heldout_pairs)} held-out "
        f"({n_lr_held} LR images)"
    )
    if not heldout_pairs:
        log(
            "warning: no held-out pairs (one LR image, or heldout_fraction 0): "
            "held-out accuracy is not measured"
        )

    set_seed(cfg.seed)
    device = resolve_train_device(cfg.device)
    on_cpu = device == "cpu"
    # Under `accelerate launch` the Trainer places the model on each process's GPU: load it unplaced.
    model = reward_model_from_base(
        base_model,
        lora=cfg.lora,
        full_finetune=cfg.lora is None,
        device="cpu" if on_cpu else "auto",
        dtype=cfg.dtype,
        max_side=cfg.max_side,
        seed=cfg.seed,
    )
    if cfg.gradient_checkpointing:
        inner = (
            model.backbone.get_base_model() if hasattr(model.backbone, "get_base_model") else model.backbone
        )
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainable, total = trainable_parameter_count(model)
    log(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.3f} %)")
    bf16 = (not on_cpu) and next(model.backbone.parameters()).dtype == torch.bfloat16

    evals: dict[str, Any] = {}
    if heldout_pairs:
        evals["heldout"] = PairsTorchDataset(heldout_pairs)
    if cfg.eval_train_accuracy:
        evals["train"] = PairsTorchDataset(train_pairs)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="epoch" if evals else "no",
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=on_cpu,
        bf16=bf16,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=cfg.dataloader_workers,
        disable_tqdm=True,
        save_only_model=False,
        label_names=[],
    )
    trainer_cls = _trainer_class()
    metrics_path = out / METRICS_FILE
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=PairsTorchDataset(train_pairs),
        eval_dataset=evals or None,
        data_collator=RewardCollator(model.inputs),
        compute_metrics=_compute_metrics,
        callbacks=[_metrics_callback(metrics_path)],
        margin_weight=cfg.margin_weight,
        center_rewards=cfg.center_rewards,
    )
    checkpoints = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    resumed_from = str(checkpoints[-1]) if resume and checkpoints else None
    if resumed_from:
        log(f"resuming from {resumed_from}")
        if metrics_path.is_file():  # rows logged after the checkpoint are logged again when redone
            _keep_rows_up_to(metrics_path, int(Path(resumed_from).name.split("-")[-1]))
    elif metrics_path.is_file():
        metrics_path.unlink()  # a fresh start: the metrics of an earlier run do not belong to this one
    trainer.train(resume_from_checkpoint=resumed_from)

    per_epoch: tuple[dict[str, Any], ...] = ()
    if metrics_path.is_file():
        rows = [row for _, row in read_jsonl(metrics_path)]
        per_epoch = tuple(r for r in rows if r.get("kind") == "eval")
    final: dict[str, Any] = {}
    for split, ds in evals.items():
        done = [r for r in per_epoch if r["split"] == split and r["step"] == trainer.state.global_step]
        if done:  # the Trainer evaluated at the last step already
            final[split] = {k: v for k, v in done[-1].items() if k not in ("kind", "split")}
            continue
        metrics = trainer.evaluate(eval_dataset=ds, metric_key_prefix=f"final_{split}")
        final[split] = {k.removeprefix(f"final_{split}_"): v for k, v in metrics.items()}
    centre_source = final.get("train") or final.get("heldout") or {}
    centre = centre_source.get("mean_reward", 0.0)
    model.reward_center = float(centre) if isinstance(centre, int | float) and math.isfinite(centre) else 0.0
    summary = {
        "n_train_pairs": len(train_pairs),
        "n_heldout_pairs": len(heldout_pairs),
        "train_lr_images": n_lr_train,
        "heldout_lr_images": n_lr_held,
        "final": final,
        "sources": dataset.sources,
        "synthetic_pairs": dataset.synthetic,
        "global_step": trainer.state.global_step,
        "resumed_from": resumed_from,
    }
    model.training_record = {
        "pairs": str(pairs_path),
        "pairs_digest": digest,
        "config": dataclasses.asdict(cfg),
        "metrics": summary,
    }
    if trainer.args.should_save:
        model.save(out)
        write_training_record(
            out,
            kind="reward",
            config=cfg,
            base_model=str(base_model),
            dataset_digest=digest,
            metrics=summary,
        )
    return RewardTrainResult(
        out_dir=out,
        n_train=len(train_pairs),
        n_heldout=len(heldout_pairs),
        resumed_from=resumed_from,
        per_epoch=per_epoch,
        final=final,
        synthetic=dataset.synthetic,
    )
