"""``srjudge tune``: two-stage (perceive, then infer) fine-tuning of a local VLM judge."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from srjudge.cli.common import _load_config, _write_config, app, err, out
from srjudge.cli.options import CONFIG, DEVICE


@app.command("tune")
def tune_cmd(
    config: Annotated[Path | None, CONFIG] = None,
    write_config: Annotated[
        Path | None,
        typer.Option(
            "--write-config", help="Write the config (defaults + flags) to this YAML file and stop."
        ),
    ] = None,
    stage: Annotated[
        str | None, typer.Option("--stage", help="perceive (stage 1) or infer (stage 2).")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="Local model folder to start from (stage 2: stage 1's output)."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="perceive: a `srjudge degrade` folder; infer: a MOS dataset or a pseudo-label JSONL.",
        ),
    ] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out", "-o", help="Output folder (the tuned model).")
    ] = None,
    lora_r: Annotated[int | None, typer.Option("--lora-r", help="LoRA rank (alpha = 2 x rank).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Full fine-tuning instead of LoRA.")] = False,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", help="Learning rate (the config's `lr`).")
    ] = None,
    epochs: Annotated[
        float | None, typer.Option("--epochs", help="Epochs (ignored with --max-steps).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Optimisation steps (> 0).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Per-device batch size.")] = None,
    grad_accum: Annotated[int | None, typer.Option("--grad-accum", help="Gradient accumulation.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of training and data order.")] = None,
    max_side: Annotated[
        int | None, typer.Option("--max-side", help="Longest image side, as the judge will send it.")
    ] = None,
    device: Annotated[str | None, DEVICE] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="auto, float32, bfloat16, float16.")] = None,
    gradient_checkpointing: Annotated[
        bool | None,
        typer.Option(
            "--gradient-checkpointing/--no-gradient-checkpointing", help="Trade compute for memory."
        ),
    ] = None,
    save_steps: Annotated[
        int | None, typer.Option("--save-steps", help="Checkpoint every N steps (resumable); 0 = none.")
    ] = None,
    description_source: Annotated[
        str | None,
        typer.Option("--description-source", help="infer stage: auto (record, else model), record, model."),
    ] = None,
    perceive_model: Annotated[
        str | None, typer.Option("--perceive-model", help="infer stage: the model that describes images.")
    ] = None,
    eval_dataset: Annotated[
        str | None, typer.Option("--eval", help="MOS dataset: bench base and tuned (perceive-infer).")
    ] = None,
    repeats: Annotated[
        int | None, typer.Option("--repeats", help="Sampled judgements per image for the flip rate.")
    ] = None,
) -> None:
    """Fine-tune a local VLM judge in two stages (BIQA reasoning): perception, then quality inference.

    The output folder loads as `vlm:hf,model=OUT,protocol=perceive-infer`.
    """
    from srjudge.train.common import LoraSettings
    from srjudge.train.tune import TuneConfig, run_tune

    cfg = _load_config(TuneConfig, config)
    flags: dict[str, Any] = {
        "stage": stage,
        "base_model": base,
        "data": data,
        "out_dir": out_dir,
        "lr": learning_rate,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "seed": seed,
        "max_side": max_side,
        "device": device,
        "dtype": dtype,
        "gradient_checkpointing": gradient_checkpointing,
        "save_steps": save_steps,
        "description_source": description_source,
        "perceive_model": perceive_model,
        "eval_dataset": eval_dataset,
        "eval_repeats": repeats,
    }
    if stage in ("1", "2"):
        flags["stage"] = "perceive" if stage == "1" else "infer"
    changes = {k: v for k, v in flags.items() if v is not None}
    if full:
        changes["lora"] = None
    elif lora_r is not None:
        base_lora = cfg.lora or LoraSettings()
        changes["lora"] = dataclasses.replace(base_lora, r=lora_r, alpha=2 * lora_r)
    cfg = dataclasses.replace(cfg, **changes)
    if write_config is not None:
        _write_config(cfg, write_config)
        return
    result = run_tune(cfg, log=err.print)
    out.print(
        f"stage {result.stage}: {result.n_examples} examples, {result.steps} steps, {result.seconds:.1f} s"
    )
    if result.losses:
        out.print(f"train loss: first {result.losses[0][1]:.4f}, last {result.losses[-1][1]:.4f}")
    if result.eval is not None:
        for which in ("base", "tuned"):
            e = result.eval[which]
            flips = "-" if e["level_flip_rate"] is None else f"{100 * e['level_flip_rate']:.2f} %"
            out.print(
                f"{which}: SRCC {e['srcc']}  PLCC {e['plcc']}  flip rate {flips} "
                f"(abstained {e['abstained']}/{e['n']})"
            )
    out.print(f"model: {result.out_dir}  (use vlm:hf,model={result.out_dir},protocol=perceive-infer)")
