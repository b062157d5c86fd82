"""``srjudge align`` on disk: prompts from the glyph testbed, a resumable run folder, the aligned checkpoint.

Run folder ``OUT``::

    config.yaml          the AlignConfig (a re-run with another config or model refuses to resume)
    log.jsonl            one row per round: reward, judge score, KL/margin, LR-PSNR, spread, timing
    _align_state.pt      the resume point, written atomically after every round, removed at the end
    model/               the aligned checkpoint (the ``diffusion:OUT/model`` SR backend), whose
                         srjudge_diffusion.json records base model, config, data digest, reward judge
    evaluation.json/.md  before/after on held-out fonts (the val split), graded by the referee
    samples.png          the same LR inputs' samples before and after

The model is a ``diffusion`` backend folder (``diffusion`` = the bundled testbed model, or
``diffusion:PATH``). Prompts are the testbed's train split (train fonts only) at the configured
severities; evaluation uses the val split's font, which neither the model nor the reward's
classifier saw.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from srjudge import atomic
from srjudge.config import load_config_yaml, save_config_yaml
from srjudge.errors import SpecError, SrjudgeError
from srjudge.provenance import file_sha256
from srjudge.spec import parse_spec
from srjudge.testbed.alignment import (
    ComparisonRow,
    SampleGroups,
    bicubic_wrong,
    compare_groups,
    markdown_table,
    sample_groups,
    samples_figure,
)
from srjudge.train.align import AlignConfig, AlignResult, AlignState, align

Log = Callable[[str], None]
STATE_NAME = "_align_state.pt"
LOG_NAME = "log.jsonl"
MODEL_DIR = "model"
CONFIG_NAME = "config.yaml"


@dataclass(frozen=True)
class EvalSettings:
    """Before/after evaluation: ``count`` val items (0: none), N samples each, graded by ``referee``."""

    split: str = "val"
    count: int = 144
    samples: int = 8
    seed: int = 1000
    referee: str = "referee"
    figure_inputs: int = 6

    def __post_init__(self) -> None:
        if self.count < 0 or self.samples < 2:
            raise SpecError("align evaluation: count must be >= 0 and samples >= 2")


@dataclass(frozen=True)
class AlignRun:
    """What ``srjudge align`` made: the aligned model folder and, when evaluated, the before/after rows."""

    out_dir: Path
    model_dir: Path
    result: AlignResult
    rows: tuple[ComparisonRow, ...]

    def summary(self) -> dict[str, Any]:
        keep = ("wrong", "hallucinated", "lr_psnr", "spread")
        return {
            "model": str(self.model_dir),
            "backend": f"diffusion:{self.model_dir}",
            "rounds": len(self.result.logs),
            "seconds": round(self.result.seconds, 1),
            "evaluation": [r.to_dict() for r in self.rows if r.measure in keep],
        }


def resolve_model(spec: str) -> Path:
    """The checkpoint folder of a ``diffusion`` backend spec (the only family ``align`` trains today)."""
    from srjudge.sr.conditional_diffusion import BUNDLED_DIR, check_folder

    parsed = parse_spec(spec)
    if parsed.name != "diffusion":
        raise SpecError(
            f"align: --model {spec!r}: only the conditional pixel diffusion family (`diffusion` or "
            "`diffusion:PATH`) can be aligned here; latent `diffusers:` pipelines (SD x4 upscaler) are "
            "not supported yet."
        )
    folder = Path(parsed.arg).expanduser() if parsed.arg else BUNDLED_DIR
    check_folder(folder)
    return folder


def training_prompts(config: AlignConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """LR prompts from the testbed's train split (train fonts) and the data record (with its digest)."""
    from srjudge.testbed import TestbedConfig, glyph_arrays
    from srjudge.train.diffusion_sr import data_digest

    tb = TestbedConfig(seed=config.seed, train_copies=config.train_copies)
    data = glyph_arrays(tb, "train", severities=config.severities)
    info = {
        "source": "glyph testbed",
        "split": "train",
        "testbed_config": tb.to_dict(),
        "severities": list(config.severities),
        "count": len(data),
    }
    info["sha256"] = data_digest(data.hr, data.lr, info)
    return data.lr, info


def _identity(config: AlignConfig, base: Path, base_digest: str, data_digest: str) -> dict[str, Any]:
    return {"config": config.to_dict(), "base": str(base.resolve()), "base_sha256": base_digest,
            "data": data_digest}  # fmt: skip


def run_alignment(
    model: str,
    out_dir: Path,
    config: AlignConfig,
    *,
    evaluation: EvalSettings | None = None,
    resume: bool = True,
    log: Log | None = None,
) -> AlignRun:
    """Align the model, save it as a ``diffusion`` checkpoint, evaluate before/after; resumable."""
    import torch

    from srjudge.judges import create_judge
    from srjudge.sr.conditional_diffusion import (
        RECORD_NAME,
        UNET_DIR,
        UNET_FILES,
        load_model,
        save_checkpoint,
    )

    say = log or (lambda _m: None)
    base = resolve_model(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_digest = file_sha256(base / UNET_DIR / UNET_FILES[1])
    judge = create_judge(config.reward)
    if judge.needs_hr:
        raise SpecError(
            f"align: the reward judge {config.reward!r} needs an HR reference, and alignment has only the "
            "LR input; use a judge that reads the LR or no reference (readout:classifier, trust, "
            "lr-psnr, reward:PATH, a VLM judge)."
        )
    prompts, data_info = training_prompts(config)
    identity = _identity(config, base, base_digest, data_info["sha256"])
    save_config_yaml(config, out / CONFIG_NAME)
    state_path = out / STATE_NAME
    state: AlignState | None = None
    if resume and state_path.is_file():
        saved = torch.load(state_path, weights_only=False)
        if saved.get("identity") != identity:
            raise SrjudgeError(
                f"align: {state_path} was written by a run with another config, model or data; "
                "use another --out, or --no-resume to start over."
            )
        state = saved["state"]
        assert state is not None
        say(f"[align] resuming after round {state.round}/{config.rounds}")
    log_path = out / LOG_NAME  # the log is what the resume point holds; rounds after it are redone
    atomic.write_text(log_path, "".join(_log_line(r) for r in (state.logs if state else ())))
    unet, sched, _ = load_model(base, config.device)

    def on_round(s: AlignState) -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"identity": identity, "state": s}, tmp)
        os.replace(tmp, state_path)

    def progress(row: Mapping[str, Any]) -> None:
        with log_path.open("a", encoding="utf-8") as fh:
            fh.write(_log_line(row))
        extra = {
            "dpo": f"pairs {row.get('pairs')} acc {row.get('implicit_accuracy', float('nan')):.2f}",
            "grpo": f"kl {row.get('kl', 0.0):.4f} clip {row.get('clip_fraction', 0.0):.2f}",
            "raft": f"kept {row.get('kept')} fit {row.get('fit', float('nan')):.4f} "
            f"drift {row.get('drift', float('nan')):.5f}",
        }[config.method]
        say(
            f"[align] round {row['round']}/{config.rounds} reward {row['reward']:.2f} "
            f"judge {row['judge_score']:.2f} lr-psnr {row['lr_psnr']:.2f} dB spread {row['spread']:.4f} "
            f"{extra} ({row['seconds']:.0f}s)"
        )

    started = datetime.now(UTC).isoformat(timespec="seconds")
    say(
        f"[align] {config.method} with reward {config.reward}: {config.rounds} rounds of "
        f"{config.prompts_per_round} prompts x {config.samples} samples ({len(prompts)} train prompts)"
    )
    result = align(unet, sched, prompts, judge, config, state=state, on_round=on_round, progress=progress)
    model_dir = out / MODEL_DIR
    base_record = base / RECORD_NAME
    record = {
        "format": "srjudge-conditional-diffusion-sr",
        "format_version": 1,
        "kind": "aligned-diffusion-x4",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "started": started,
        "base_model": {
            "folder": str(base),
            "weights_sha256": base_digest,
            "record_sha256": file_sha256(base_record) if base_record.is_file() else None,
        },
        "alignment": config.to_dict(),
        "reward_judge": {"spec": judge.spec, "provenance": judge.provenance().to_dict()},
        "data": data_info,
        "rounds": [dict(r) for r in result.logs],
        "seconds": round(result.seconds, 1),
        "cpu_seconds": round(result.cpu_seconds, 1),
        "resumed_from_round": result.resumed_from,
        "versions": _versions(),
    }
    save_checkpoint(model_dir, result.unet, sched, record)
    state_path.unlink(missing_ok=True)
    say(f"[align] saved the aligned model: diffusion:{model_dir} ({result.seconds:.0f}s)")
    rows: tuple[ComparisonRow, ...] = ()
    if evaluation is not None and evaluation.count > 0:
        rows = tuple(evaluate_before_after(base, model_dir, out, evaluation, device=config.device, log=say))
    return AlignRun(out, model_dir, result, rows)


def _log_line(row: Mapping[str, Any]) -> str:
    return json.dumps(dict(row), default=float) + "\n"


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("srjudge", "torch", "diffusers", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def evaluate_before_after(
    base: Path,
    aligned: Path,
    out_dir: Path,
    settings: EvalSettings,
    *,
    device: str = "cpu",
    log: Log | None = None,
) -> list[ComparisonRow]:
    """Sample both models on the same held-out LRs and seeds, grade with the referee, write the table
    (``evaluation.json``/``.md``) and ``samples.png``."""
    from srjudge.images.io import save_png
    from srjudge.readers import create_reader
    from srjudge.sr.conditional_diffusion import ConditionalDiffusionSR, to_gray
    from srjudge.testbed import TestbedConfig, glyph_arrays
    from srjudge.testbed.measures import severity_name

    say = log or (lambda _m: None)
    data = glyph_arrays(TestbedConfig(seed=0), settings.split, count=settings.count)
    reader = create_reader(settings.referee)
    n = settings.samples
    groups: dict[str, SampleGroups] = {}
    images: dict[str, np.ndarray] = {}
    for name, folder in (("base", base), ("aligned", aligned)):
        t0 = time.perf_counter()
        backend = ConditionalDiffusionSR(folder, device=device)
        lrs = np.repeat(data.lr, n, axis=0)
        seeds = [settings.seed + i for i in range(len(lrs))]
        outs = [backend.sample_batch(lrs[s : s + 256], seeds[s : s + 256]) for s in range(0, len(lrs), 256)]
        flat = np.concatenate(outs)
        readings = [(r.label, float(r.confidence)) for r in reader.read(list(flat))]
        g = len(data)
        images[name] = flat.reshape(g, n, *flat.shape[1:])
        groups[name] = sample_groups(
            data.ids,
            data.labels,
            [severity_name(int(s)) for s in data.severities],
            to_gray(flat).reshape(g, n, *flat.shape[1:3]),
            to_gray(data.lr),
            [readings[i * n : (i + 1) * n] for i in range(g)],
        )
        seconds = time.perf_counter() - t0
        say(f"[eval] {name}: {len(flat)} samples of {g} {settings.split} inputs ({seconds:.0f}s)")
    reference = bicubic_wrong(reader, data.lr, images["base"].shape[2:4], data.labels)
    rows = compare_groups(groups["base"], groups["aligned"], extra={"bicubic_wrong": (reference, reference)})
    payload = {
        "split": settings.split,
        "items": len(data),
        "samples": n,
        "seed": settings.seed,
        "referee": settings.referee,
        "base": str(base),
        "aligned": str(aligned),
        "rows": [r.to_dict() for r in rows],
    }
    atomic.write_json(out_dir / "evaluation.json", payload)
    atomic.write_text(
        out_dir / "evaluation.md",
        f"Before/after alignment on the {settings.split} split (held-out font), {n} samples per LR, "
        f"graded by `{settings.referee}`; 95 % paired bootstrap intervals over LR inputs.\n\n"
        + markdown_table(rows),
    )
    pick = _figure_inputs(groups["base"], groups["aligned"], settings.figure_inputs)
    if pick:
        fig = samples_figure(
            data.lr[pick],
            images["base"][pick],
            images["aligned"][pick],
            truth=[data.labels[i] for i in pick],
            before_labels=groups["base"].labels[pick],
            after_labels=groups["aligned"].labels[pick],
        )
        save_png(out_dir / "samples.png", fig)
    return rows


def _figure_inputs(base: SampleGroups, aligned: SampleGroups, k: int) -> list[int]:
    """The K inputs whose wrong-sample count changed most (ties: most severe first, then order)."""
    b = base.per_item()["wrong"]
    a = aligned.per_item()["wrong"]
    order = sorted(range(len(b)), key=lambda i: (-(abs(b[i] - a[i])), i))
    return sorted(order[:k])


def load_align_config(path: Path | None) -> AlignConfig:
    """The config YAML (every key optional), or the defaults."""
    return AlignConfig() if path is None else load_config_yaml(AlignConfig, path)
