"""``srjudge reward``: make or check preference pairs and train the LR-conditioned reward model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from srjudge.cli.common import _load_config, err, out, sub_app
from srjudge.errors import SrjudgeError

reward_app = sub_app(
    "reward", "LR-conditioned reward model (RefReward-SR style): preference pairs and training."
)


@reward_app.command("pairs")
def pairs_cmd(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (pairs.jsonl + images).")],
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Generate graded SYNTHETIC pairs (not human opinion).")
    ] = False,
    pseudo_labels: Annotated[
        Path | None,
        typer.Option("--from-pseudo-labels", help="Convert `srjudge evolve` pseudo-labels (JSONL)."),
    ] = None,
    hr_dir: Annotated[
        Path | None, typer.Option("--hr-dir", help="HR photos for --synthetic (default: bundled photos).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic pairs.")] = 0,
    scale: Annotated[int, typer.Option("--scale", "-s", help="LR downscaling factor (2, 3 or 4).")] = 4,
    size: Annotated[int, typer.Option("--size", help="HR centre-crop side in pixels.")] = 256,
    pipeline: Annotated[
        str, typer.Option("--pipeline", "-p", help="Degradation making the LR: realesrgan, face, bicubic.")
    ] = "face",
) -> None:
    """Write a pairs JSONL: graded synthetic pairs (--synthetic) or converted pseudo-labels."""
    from srjudge.train.reward_pairs import convert_pseudo_labels, load_pairs, make_synthetic_pairs

    if synthetic == (pseudo_labels is not None):
        raise SrjudgeError("Give exactly one of --synthetic or --from-pseudo-labels LABELS.jsonl.")
    if pseudo_labels is not None:
        path, written, skipped = convert_pseudo_labels(pseudo_labels, out_dir / "pairs.jsonl")
        err.print(
            f"{written} pairs written to {path} ({skipped} skipped pseudo-labels: ties or low vote share)"
        )
        return
    path = make_synthetic_pairs(out_dir, seed=seed, scale=scale, size=size, pipeline=pipeline, hr_dir=hr_dir)
    data = load_pairs(path)
    err.print(
        f"SYNTHETIC pairs (preferences by construction, not human opinion): {len(data.pairs)} pairs in {path}"
    )


@reward_app.command("check")
def check_cmd(
    pairs: Annotated[Path, typer.Argument(help="A pairs JSONL file.")],
) -> None:
    """Validate a pairs JSONL and print a summary; every problem is listed with its row number."""
    from srjudge.train.reward_pairs import load_pairs

    data = load_pairs(pairs)
    summary = {
        "pairs": len(data.pairs),
        "lr_images": len({p.lr for p in data.pairs}),
        "sources": data.sources,
        "synthetic": data.synthetic,
        "with_margin": sum(p.margin is not None for p in data.pairs),
    }
    out.print(json.dumps(summary, indent=2))


@reward_app.command("train")
def train_cmd(
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Preference pairs JSONL.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Local folder of the base VLM.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (the trained model).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="RewardConfig YAML.")] = None,
    write_config: Annotated[
        Path | None, typer.Option("--write-config", help="Write the default config YAML here and stop.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Resume from the latest checkpoint in OUT.")
    ] = True,
) -> None:
    """Train the reward model on pairs; resumable; saves a folder usable as the judge reward:OUT."""
    from srjudge.train.common import save_config_yaml
    from srjudge.train.reward_train import RewardConfig, train_reward_model

    if write_config is not None:
        save_config_yaml(RewardConfig(), write_config)
        err.print(f"wrote the default reward training config to {write_config}")
        return
    if pairs is None or model is None or out_dir is None:
        raise SrjudgeError("reward train needs --pairs PAIRS.jsonl, --model BASE_FOLDER and --out DIR.")
    cfg = _load_config(RewardConfig, config)
    result = train_reward_model(pairs, model, out_dir, cfg, resume=resume, log=lambda m: err.print(m))
    final = {split: {k: result.final[split].get(k) for k in ("accuracy", "loss")} for split in result.final}
    out.print(json.dumps({"out_dir": str(result.out_dir), "final": final}, indent=2))
    err.print(f"judge with: srjudge rank CANDIDATES --lr LR.png --judge reward:{out_dir}")
