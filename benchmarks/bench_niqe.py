#!/usr/bin/env python
"""Time NIQE and BRISQUE per 512x384 image on the five calibration images.

Target: NIQE at most 0.13 s per image on a 2-core machine. Run from the repository root::

    python benchmarks/bench_niqe.py            # best-of-N seconds per image
    python benchmarks/bench_niqe.py --profile  # plus the top of a cProfile of NIQE

The images come from ``python scripts/fetch_calibration_data.py`` (``.cache/calibration/``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from srjudge.images.io import load_image
from srjudge.metrics.brisque import brisque, load_brisque_model
from srjudge.metrics.niqe import niqe

IMAGES = ("I03", "I04", "I06", "I08", "I19")
DATA = Path(__file__).resolve().parents[1] / ".cache" / "calibration" / "dist_dir"
NIQE_TARGET_S = 0.13


def load_images() -> list[np.ndarray]:
    """The five distorted calibration images; exits with the fetch command when they are missing."""
    paths = [DATA / f"{name}.bmp" for name in IMAGES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        sys.exit(
            f"missing {missing[0]} (and {len(missing) - 1} more); "
            "run: python scripts/fetch_calibration_data.py"
        )
    return [load_image(p) for p in paths]


def time_per_image(fn: Callable[[np.ndarray], float], images: list[np.ndarray], repeats: int) -> list[float]:
    """Seconds per image for each of ``repeats`` passes over all images (after one warm-up pass)."""
    for im in images:
        fn(im)
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        for im in images:
            fn(im)
        passes.append((time.perf_counter() - start) / len(images))
    return passes


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when NIQE misses its target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the five images")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of NIQE")
    args = parser.parse_args(argv)

    images = load_images()
    h, w = images[0].shape[:2]
    load_brisque_model()  # parse the SVR outside the timing
    print(f"{len(images)} images of {w}x{h}, {args.repeats} timed passes after a warm-up")
    results = {}
    for name, fn in (("niqe", niqe), ("brisque", brisque)):
        passes = time_per_image(fn, images, args.repeats)
        results[name] = min(passes)
        print(f"{name:8s} best {min(passes):.4f} s/image   median {statistics.median(passes):.4f} s/image")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for im in images:
            niqe(im)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)

    ok = results["niqe"] <= NIQE_TARGET_S
    print(f"NIQE target {NIQE_TARGET_S} s/image: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
