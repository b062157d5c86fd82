#!/usr/bin/env python
"""Benchmark: seconds per 128x128 LR input for the CPU SR backends (bicubic and the ncnn ones).

Each backend runs at x4, or at x2 where its weights have no x4 (Real-CUGAN pro and nose), on a 128x128
LR made from the centre of scikit-image's astronaut (``128 * scale`` px, bicubic-downscaled with
srjudge's ``imresize`` and rounded to 8 bits). Seconds are the median of ``--repeat`` runs after one
warm-up run (which loads the model); the PSNR against that HR crop is listed for context (GAN
upscalers such as Real-ESRGAN and Real-CUGAN trade PSNR for sharpness).

Run from the repository root::

    .venv/bin/python benchmarks/bench_sr_backends.py [--repeat 3] [--threads 0] [--out PATH]

``--threads`` goes to the backends that take it (realcugan, span; 0 = every available core);
realesrgan's wheel runs on one thread whatever is asked. The markdown table goes to stdout, the
numbers to ``--out`` as JSON (default ``benchmarks/results/sr_backends.json``). A backend whose
package is missing is listed as skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.errors import MissingDependencyError, SrjudgeError
from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from srjudge.sr.base import SRBackend, create_sr_backend
from srjudge.sr.ncnn_common import available_cores

LR_SIDE = 128
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "sr_backends.json"


@dataclass(frozen=True)
class Case:
    label: str
    spec: str
    scale: int
    threaded: bool = False  # takes threads=


CASES = (
    Case("bicubic", "bicubic", 4),
    Case("realesrgan x4plus", "realesrgan:x4plus", 4),
    Case("realesrgan animevideo (v3)", "realesrgan:animevideo", 4),
    Case("realcugan se conservative", "realcugan:se,noise=conservative", 4, True),
    Case("realcugan se no-denoise", "realcugan:se,noise=no-denoise", 4, True),
    Case("realcugan se denoise3x", "realcugan:se,noise=denoise3x", 4, True),
    Case("realcugan pro conservative", "realcugan:pro,noise=conservative", 2, True),
    Case("realcugan nose", "realcugan:nose", 2, True),
    Case("span ch48", "span", 4, True),
    Case("span ch52", "span:channels=52", 4, True),
    Case("span ch48 (x2)", "span", 2, True),
)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10.0 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def _lr_and_hr(scale: int) -> tuple[np.ndarray, np.ndarray]:
    hr = bundled_photo("astronaut", LR_SIDE * scale)
    return quantize_8bit(imresize(hr, output_shape=(LR_SIDE, LR_SIDE))), hr


def time_case(case: Case, threads: int, repeat: int) -> dict[str, Any]:
    """Load, warm up and time one backend; a missing package is reported, not raised."""
    spec = f"{case.spec}{',' if ':' in case.spec else ':'}threads={threads}" if case.threaded else case.spec
    row: dict[str, Any] = {"backend": case.label, "spec": spec, "scale": case.scale}
    try:
        start = time.perf_counter()
        backend: SRBackend = create_sr_backend(spec)
        lr, hr = _lr_and_hr(case.scale)
        out = backend.upscale(lr, scale=case.scale)  # warm-up: loads the model
        row["first_call_s"] = time.perf_counter() - start
    except (MissingDependencyError, SrjudgeError) as exc:
        row["skipped"] = str(exc)
        return row
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        backend.upscale(lr, scale=case.scale)
        runs.append(time.perf_counter() - start)
    row.update(
        seconds=statistics.median(runs),
        runs_s=runs,
        psnr_db=_psnr(out, hr),
        threads=backend.settings().get("threads", 1),
        final_spec=backend.spec,
    )
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"| backend | scale | s per {LR_SIDE}x{LR_SIDE} LR | threads | PSNR vs HR (dB) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['backend']} | x{row['scale']} | skipped: {row['skipped'][:80]} | | |")
        else:
            lines.append(
                f"| {row['backend']} | x{row['scale']} | {row['seconds']:.3f} | {row['threads']} | "
                f"{row['psnr_db']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per backend after one warm-up")
    parser.add_argument(
        "--threads", type=int, default=0, help="threads for realcugan and span (0: all cores)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    args = parser.parse_args(argv)

    machine = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cores_available": available_cores(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    print(
        f"{machine['machine']}, {machine['cores_available']} cores available, python {machine['python']}; "
        f"median of {args.repeat} runs after a warm-up"
    )
    rows = []
    for case in CASES:
        row = time_case(case, args.threads, args.repeat)
        rows.append(row)
        print(
            f"  {case.label}: " + (f"{row['seconds']:.3f} s" if "seconds" in row else "skipped"), flush=True
        )
    print()
    print(markdown(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"lr_size": [LR_SIDE, LR_SIDE], "repeat": args.repeat, "machine": machine, "results": rows}
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
