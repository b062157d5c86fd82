#!/usr/bin/env python
"""Reproduce the bundled glyph diffusion SR checkpoint (``srjudge/data/testbed/diffusion-x4``) end to end.

Builds the testbed's train split in memory (all severities), trains the conditional UNet of
:mod:`srjudge.sr.conditional_diffusion` on the CPU, saves it (UNet safetensors + scheduler config) and
writes ``srjudge_diffusion.json``: the recipe, seed, data digest, versions, wall/CPU time, the loss
curve and an evaluation on the val (and part of the test) split: diversity, LR consistency, L1 to HR
and, when the bundled ``referee`` reader is available, the wrong-symbol rate per severity.

    .venv/bin/python scripts/train_testbed_diffusion.py                       # the bundled checkpoint
    .venv/bin/python scripts/train_testbed_diffusion.py --steps 5 --out /tmp/d --copies 1 --eval-count 16

An interrupted run resumes from ``<out>/_train_state.pt`` (written every ``--checkpoint-every`` steps
and removed at the end); ``--fresh`` ignores it. ``--eval-only`` re-evaluates a saved checkpoint.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no busy-waiting on a shared machine

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from srjudge.sr.conditional_diffusion import BUNDLED_DIR, DEFAULT_ETA, DEFAULT_STEPS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--out", type=Path, default=BUNDLED_DIR, help="checkpoint folder (default: the bundled one)"
    )
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", dest="lr", type=float, default=None, help="default: the recipe's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--copies", type=int, default=12, help="jittered copies per (face, class) in the train data"
    )
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--fresh", action="store_true", help="ignore a resume state left by an interrupted run")
    p.add_argument("--eval-only", action="store_true", help="only (re-)evaluate the checkpoint in --out")
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("--eval-count", type=int, default=None, help="val items (default: the whole val split)")
    p.add_argument("--eval-test-count", type=int, default=432, help="test items (0: none)")
    p.add_argument("--eval-samples", type=int, default=8)
    p.add_argument("--eval-steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--eval-eta", type=float, default=DEFAULT_ETA)
    p.add_argument("--reader", default="referee", help="reader spec for the wrong-symbol rate ('' for none)")
    return p.parse_args(argv)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("srjudge", "torch", "diffusers", "numpy", "safetensors"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = None
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _reader(spec: str) -> tuple[Any, str | None, str | None]:
    """(read function or None, reader spec, why not)."""
    if not spec:
        return None, None, "no reader asked for"
    from srjudge.errors import SrjudgeError

    try:
        from srjudge.readers import create_reader

        reader = create_reader(spec)
    except (SrjudgeError, ImportError) as exc:
        return None, None, f"{type(exc).__name__}: {exc}"

    def read(images: Any) -> list[str | None]:
        return [r.label for r in reader.read(list(images))]

    return read, spec, None


def _evaluate(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from srjudge.sr.base import create_sr_backend
    from srjudge.testbed import TestbedConfig, glyph_arrays
    from srjudge.train.diffusion_sr import evaluate_diffusion_sr

    backend = create_sr_backend(f"diffusion:{folder},steps={args.eval_steps},eta={args.eval_eta}")
    read, reader_name, why = _reader(args.reader)
    results: dict[str, Any] = {"reader_unavailable": why}
    config = TestbedConfig(seed=args.seed)
    for split, count in (("val", args.eval_count), ("test", args.eval_test_count)):
        if count == 0:
            continue
        data = glyph_arrays(config, split, count=count)
        ev = evaluate_diffusion_sr(
            backend.sample_batch,  # type: ignore[attr-defined]
            data.hr,
            data.lr,
            data.labels,
            data.severities,
            samples=args.eval_samples,
            seed=1000,
            read=read,
            reader_name=reader_name,
            split=split,
            steps=args.eval_steps,
            eta=args.eval_eta,
        )
        results[split] = ev.to_dict()
        for row in ev.rows:
            wr = "-" if row.wrong_rate is None else f"{row.wrong_rate:.3f}"
            mixed = "-" if row.lr_mixed is None else f"{row.lr_mixed:.3f}"
            print(
                f"[eval {split}] {row.name:8s} n={row.count:4d} diversity={row.diversity:.4f} "
                f"lr_mae={row.lr_mae:.4f} l1_hr={row.l1_hr:.4f} (bicubic {row.bicubic_l1_hr:.4f}) "
                f"wrong={wr} lr_mixed={mixed}",
                flush=True,
            )
        print(f"[eval {split}] {ev.samples_per_second:.1f} samples/s", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    from srjudge.sr.conditional_diffusion import DEFAULT_ETA, DEFAULT_STEPS, RECORD_NAME, save_checkpoint
    from srjudge.testbed import TestbedConfig, glyph_arrays
    from srjudge.train.diffusion_sr import DiffusionSRTrainConfig, TrainState, data_digest, train_diffusion_sr

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / RECORD_NAME
    if args.eval_only:
        saved: dict[str, Any] = json.loads(record_path.read_text(encoding="utf-8"))
        saved["evaluation"] = _evaluate(args, out)
        _write_json(record_path, saved)
        return 0

    overrides = {
        k: v
        for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr))
        if v is not None
    }
    config = DiffusionSRTrainConfig(seed=args.seed, threads=args.threads, **overrides)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    data_config = TestbedConfig(seed=args.seed)
    per_copy = len(data_config.train_faces) * len(data_config.classes) * len(data_config.severities)
    count = args.copies * per_copy
    data = glyph_arrays(data_config, "train", count=count)
    data_info = {"testbed_config": data_config.to_dict(), "split": "train", "count": count}
    digest = data_digest(data.hr, data.lr, data_info)
    build_seconds = time.perf_counter() - t0
    print(f"[data] {count} train items in {build_seconds:.1f}s, sha256 {digest[:16]}", flush=True)

    state_path = out / "_train_state.pt"
    state = None
    if state_path.is_file() and not args.fresh:
        saved = torch.load(state_path, weights_only=False)
        if saved.get("digest") == digest and saved.get("config") == config.to_dict():
            state = saved["state"]
            print(f"[resume] from step {state.step}", flush=True)
        else:
            print("[resume] ignoring a state from another config or data", flush=True)

    def on_checkpoint(s: TrainState) -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save({"digest": digest, "config": config.to_dict(), "state": s}, tmp)
        tmp.replace(state_path)

    def progress(step: int, loss: float) -> None:
        print(
            f"[train] step {step}/{config.steps} loss {loss:.4f} ({time.perf_counter() - t0:.0f}s)",
            flush=True,
        )

    load_start = os.getloadavg()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    result = train_diffusion_sr(
        data.hr,
        data.lr,
        config,
        state=state,
        checkpoint_every=args.checkpoint_every,
        on_checkpoint=on_checkpoint,
        progress=progress,
    )
    load_end = os.getloadavg()
    print(f"[train] done: {result.seconds:.0f}s wall, {result.cpu_seconds:.0f}s CPU", flush=True)

    record: dict[str, Any] = {
        "format": "srjudge-conditional-diffusion-sr",
        "format_version": 1,
        "kind": "testbed-diffusion-x4",
        "time": started,
        "recipe": config.to_dict(),
        "seed": config.seed,
        "data": {**data_info, "sha256": digest, "build_seconds": round(build_seconds, 1)},
        "versions": _versions(),
        "hardware": {
            "torch_threads": config.threads,
            "cpu_count": os.cpu_count(),
            "load_average_start": [round(v, 2) for v in load_start],
            "load_average_end": [round(v, 2) for v in load_end],
            "note": "shared machine: wall time includes contention from other processes",
        },
        "training": {
            "steps": result.steps,
            "resumed_from": result.resumed_from,
            "wall_seconds": round(result.seconds, 1),
            "cpu_seconds": round(result.cpu_seconds, 1),
            "seconds_per_step": round(result.seconds / max(result.steps - result.resumed_from, 1), 3),
            "final_loss": float(np.mean(result.losses[-100:])),
            "curve": result.curve(config.log_every),
        },
        "sampling_defaults": {
            "sampler": "ddim",
            "timestep_spacing": "trailing",
            "steps": DEFAULT_STEPS,
            "eta": DEFAULT_ETA,
        },
        "argv": sys.argv,
    }
    save_checkpoint(out, result.unet, config.scheduler_config(), record)
    weights = out / "unet" / "diffusion_pytorch_model.safetensors"
    record["checkpoint_bytes"] = weights.stat().st_size
    _write_json(record_path, record)
    if state_path.is_file():
        state_path.unlink()
    print(f"[save] {out} ({weights.stat().st_size / 1e6:.2f} MB weights)", flush=True)
    if not args.no_eval:
        record["evaluation"] = _evaluate(args, out)
        _write_json(record_path, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
