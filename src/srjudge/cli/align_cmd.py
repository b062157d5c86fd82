"""``srjudge align``: fine-tune a conditional diffusion SR model with a judge's reward (DPO or GRPO)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from srjudge.cli.common import _write_config, app, err, out


@app.command("align")
def align_cmd(
    model: Annotated[
        str, typer.Option("--model", "-m", help="SR model to align: diffusion (bundled) or diffusion:PATH.")
    ] = "diffusion",
    reward: Annotated[
        str | None,
        typer.Option(
            "--reward", "-r", help="Judge spec giving the reward (default readout:classifier; any judge)."
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help="raft (default: fine-tune on the best-rewarded samples), grpo (policy gradient on "
            "the chain) or dpo (Diffusion-DPO pairs against the frozen base).",
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: log, resume state, model/, evaluation.")
    ] = Path("srjudge-out/align"),
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="AlignConfig YAML (see --write-config).")
    ] = None,
    write_config: Annotated[
        Path | None, typer.Option("--write-config", help="Write the default config YAML here and stop.")
    ] = None,
    rounds: Annotated[int | None, typer.Option("--rounds", help="Rounds (overrides the config).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (overrides the config).")] = None,
    eval_count: Annotated[
        int,
        typer.Option("--eval-count", help="Held-out (val) LR inputs for the before/after table; 0: none."),
    ] = 144,
    referee: Annotated[
        str, typer.Option("--referee", help="Reader that grades the evaluation (never the reward).")
    ] = "referee",
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Resume from the state saved in OUT.")
    ] = True,
) -> None:
    """Align an SR model with a judge's reward on the glyph testbed; save it as diffusion:OUT/model."""
    from srjudge.train.align import AlignConfig
    from srjudge.train.align_run import EvalSettings, load_align_config, run_alignment

    if write_config is not None:
        _write_config(AlignConfig(), write_config)
        return
    cfg = load_align_config(config)
    overrides = {
        k: v
        for k, v in (("reward", reward), ("method", method), ("rounds", rounds), ("seed", seed))
        if v is not None
    }
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = out_dir / "align.log"

    def say(message: str) -> None:
        err.print(message, highlight=False, markup=False)
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write(message + "\n")

    evaluation = EvalSettings(count=eval_count, referee=referee) if eval_count > 0 else None
    run = run_alignment(model, out_dir, cfg, evaluation=evaluation, resume=resume, log=say)
    if run.rows:
        from srjudge.testbed.alignment import markdown_table

        err.print(markdown_table(run.rows, ("wrong", "hallucinated", "lr_psnr", "spread")), highlight=False)
    out.print(json.dumps(run.summary(), indent=2))
    err.print(
        f"use it: srjudge generate --backend diffusion:{run.model_dir} ... | "
        f"srjudge testbed compare --aligned diffusion:{run.model_dir} ..."
    )
