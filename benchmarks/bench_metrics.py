"""Benchmark: seconds per 512x512 image for every metric, and the trust judge's ranking time.

Every registered metric runs with its defaults (``lpips`` is LPIPS-alex), plus ``lpips:net=vgg``;
LPIPS and DISTS use the bundled weights (srjudge.models.bundled) and also report their build time.

Targets (issue 3): NIQE at least as fast as pyiqa's NIQE on this CPU (about 0.13 s per 512x384
image with 2 threads; see bench_niqe.py for that exact size); trust ranks 8 candidates of a
128x128 LR input (x4, so 512x512 candidates) in under 2 s.

Run: .venv/bin/python benchmarks/bench_metrics.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from skimage import data

from srjudge.errors import MissingDependencyError, MissingWeightsError
from srjudge.images.io import quantize_8bit
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from srjudge.metrics import METRICS, create_metric
from srjudge.sr import classical


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    hr = (data.astronaut()[:512, :512, :3] / 255.0).astype(np.float32)
    lr = quantize_8bit(imresize(hr, 0.25))
    sr = classical.bicubic(lr, 4)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'metric':18s} {'s/image':>9s} {'images/s':>9s}   (512x512, best of {args.repeat})")
    specs = list(METRICS.names())
    specs.insert(specs.index("lpips") + 1, "lpips:net=vgg")
    for spec in specs:
        name = spec.split(":", 1)[0]
        info = METRICS.get(name).info
        kwargs = {"hr": hr} if info.needs_hr else {}
        if info.needs_lr or name == "wavelet-artifact":
            kwargs["lr"] = lr
        try:
            start = time.perf_counter()
            metric = create_metric(spec)
            built = time.perf_counter() - start
            metric(sr, **kwargs)  # warm caches
        except (MissingWeightsError, MissingDependencyError) as exc:
            print(f"{spec:18s} {'-':>9s} {'-':>9s}   skipped: {str(exc).splitlines()[0][:70]}")
            continue
        seconds = best_of(lambda m=metric, kw=kwargs: m(sr, **kw), args.repeat)
        note = f"   (built in {built:.2f} s)" if name in ("lpips", "dists") else ""
        print(f"{spec:18s} {seconds:9.4f} {1 / seconds:9.1f}{note}")

    candidates = [make(lr, 4) for make in classical.DEMO_CANDIDATES.values()]
    candidates += [classical.unsharp(candidates[0], 0.3), classical.unsharp(candidates[1], 1.2)]
    assert len(candidates) == 8
    trust = create_judge("trust")
    trust.rank(candidates, lr=lr)
    runs = [best_of(lambda: trust.rank(candidates, lr=lr), 1) for _ in range(args.repeat)]
    median = statistics.median(runs)
    verdict = "OK" if median < 2.0 else "SLOWER THAN TARGET"
    print(f"trust: rank 8 candidates of a 128x128 LR (x4): median {median:.3f} s, best {min(runs):.3f} s "
          f"(target < 2 s: {verdict})")


if __name__ == "__main__":
    main()
