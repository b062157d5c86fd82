"""Benchmark: face detection + 5-point alignment + identity descriptor per 512x512 face photo (2 cores).

Target (issue 16): under 0.5 s per 512x512 face image. Measures each bundled portrait and the
astronaut, padded or cropped to 512x512, with the default detector (``auto``: HOG, CNN fallback) and
with the CNN alone; median of ``--repeat`` runs after one warm-up; models load once (reported apart).

Run: .venv/bin/python benchmarks/bench_faces.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from srjudge.faces.detect import FaceFinder
from srjudge.faces.identity import DlibEncoder
from srjudge.images.samples import face_photos


def to_512(image: np.ndarray) -> np.ndarray:
    """Reflect-pad then centre-crop to 512x512 (the portraits are 206-512 px per side)."""
    h, w = image.shape[:2]
    pad_h, pad_w = max(0, 512 - h), max(0, 512 - w)
    padded = np.pad(
        image, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)), mode="reflect"
    )
    h, w = padded.shape[:2]
    y, x = (h - 512) // 2, (w - 512) // 2
    return np.ascontiguousarray(padded[y : y + 512, x : x + 512])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    start = time.perf_counter()
    finders = {"auto": FaceFinder("auto"), "cnn": FaceFinder("cnn")}
    encoder = DlibEncoder()
    print(f"model load: {time.perf_counter() - start:.2f} s")
    print("| photo | detector | faces | s per image (median) |\n|---|---|---|---|")
    totals: dict[str, list[float]] = {name: [] for name in finders}
    for name, photo in face_photos():
        image = to_512(photo)
        for label, finder in finders.items():
            encoder.describe(image, finder.find(image))  # warm-up
            times = []
            for _ in range(args.repeat if label == "auto" else 1):
                t0 = time.perf_counter()
                faces = finder.find(image)
                encoder.describe(image, faces)
                times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            totals[label].append(median)
            print(f"| {name} | {label} | {len(faces)} | {median:.3f} |")
    for label, values in totals.items():
        print(f"{label}: mean {statistics.mean(values):.3f} s, max {max(values):.3f} s per 512x512 image")


if __name__ == "__main__":
    main()
