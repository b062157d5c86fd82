"""The demo: the main job on bundled photos, offline.

For each of scikit-image's bundled photos: crop, degrade to LR (x4), make classical candidate
upscalings, rank them with a judge (``trust`` by default), save the best, and write a JSON report.
The HR photo is kept aside: full-reference PSNR/SSIM are reported next to the ranking as a check
the judge never saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.degrade import degrade
from srjudge.images.io import save_png
from srjudge.judges import create_judge
from srjudge.metrics import create_metric
from srjudge.select.files import RankResult, rank_images
from srjudge.sr.classical import DEMO_CANDIDATES

DEMO_PHOTOS = ("astronaut", "coffee", "chelsea")
REPORT_SCHEMA = "srjudge.demo/1"


def bundled_photo(name: str, size: int = 256) -> np.ndarray:
    """A centre crop of one of scikit-image's bundled photos (shipped in its wheel), as float RGB."""
    from skimage import data

    loader = getattr(data, name, None)
    if loader is None:
        raise ValueError(f"scikit-image has no bundled photo {name!r}")
    image = np.asarray(loader())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    h, w = image.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return (image[y : y + size, x : x + size, :3].astype(np.float32) / 255.0).astype(np.float32)


@dataclass(frozen=True)
class DemoItem:
    photo: str
    result: RankResult
    reference: dict[str, dict[str, float]]


def run_demo(
    out_dir: Path,
    *,
    judge_spec: str = "trust",
    photos: Sequence[str] = DEMO_PHOTOS,
    pipeline: str = "face",
    scale: int = 4,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[DemoItem]:
    """Run the demo and write ``out_dir/report.json``; returns the per-photo results."""
    judge = create_judge(judge_spec)
    psnr = create_metric("psnr")
    ssim = create_metric("ssim")
    items = []
    for index, photo in enumerate(photos):
        hr = bundled_photo(photo)
        lr, record = degrade(hr, pipeline=pipeline, scale=scale, seed=seed + index)
        folder = out_dir / photo
        save_png(folder / "hr.png", hr)
        save_png(folder / "lr.png", lr)
        (folder / "lr.json").write_text(json.dumps(record.to_dict(), indent=2))
        names, images = [], []
        for name, make in DEMO_CANDIDATES.items():
            image = make(lr, scale)
            path = folder / "candidates" / f"{name}.png"
            save_png(path, image)
            names.append(str(path))
            images.append(image)
        result = rank_images(images, names, judge, lr=lr, lr_name=str(folder / "lr.png"))
        best = result.ranking.best
        save_png(folder / "best.png", images[best.index])
        (folder / "ranking.json").write_text(json.dumps(result.to_dict(), indent=2))
        reference = {
            Path(n).stem: {"psnr": psnr(img, hr=hr), "ssim": ssim(img, hr=hr)}
            for n, img in zip(names, images, strict=True)
        }
        items.append(DemoItem(photo, result, reference))
        log(f"{photo}: best = {Path(result.best_path()).stem} (score {best.verdict.score:.1f})")
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "judge": judge.spec,
        "pipeline": pipeline,
        "scale": scale,
        "seed": seed,
        "note": "reference_psnr/ssim use the HR photo, which the judge never sees: a check, not an input.",
        "photos": [
            {
                "photo": item.photo,
                "best": item.result.best_path(),
                "ranking": item.result.to_dict(),
                "reference": {
                    name: {k: round(v, 4) for k, v in values.items()}
                    for name, values in item.reference.items()
                },
            }
            for item in items
        ],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return items
