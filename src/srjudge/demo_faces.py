"""The face demo: the face-SR paper's experiment, offline, on real face photos.

For each bundled face photo (a 192 px crop around the face; see ``srjudge/data/faces/LICENSES.md``):

1. the paper's one-stage face degradation (blur, resize, noise, second blur, JPEG) to a 48 px LR;
2. candidates from every offline SR backend that loads here, plus one decoy: the Real-ESRGAN output
   with another person's face swapped in (the failure the identity check exists for);
3. selection: ``trust:identity=true`` ranks the candidates (no HR), vetoing identity drift;
4. the gate, per backend (family): pure = the backend's output, +judge = what the audit kept
   (accepted, or the retry with one bounded knob); the swap decoy is audited too;
5. the paper's paired table, against the HR the judges never see: PSNR, SSIM, LPIPS (when installed),
   NIQE and identity (cosine of dlib descriptors), pure vs +judge, per backend.

Writes ``OUT/face_demo.json`` (every record), ``OUT/face_table.md`` and ``OUT/panels/<photo>.png``
(LR | pick | swap | faces, and the audit of the swap). Each input's record is written atomically to
``OUT/items/<photo>-<degradation>.json`` when it is done; a re-run with the same settings skips it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srjudge import atomic
from srjudge.audit.gate import AuditDecision, AuditPolicy, audit_image
from srjudge.audit.run import face_columns, panel
from srjudge.degrade import degrade
from srjudge.errors import MissingDependencyError, MissingWeightsError, SrjudgeError
from srjudge.faces.detect import Face, FaceFinder
from srjudge.faces.swap import swap_face
from srjudge.images.io import save_png
from srjudge.images.samples import face_photos
from srjudge.judges.base import Judge
from srjudge.judges.registry import create_judge
from srjudge.metrics import create_metric
from srjudge.report.panels import side_by_side
from srjudge.sr.base import SRBackend, create_sr_backend

FACE_DEMO_SCHEMA = "srjudge.face-demo/1"
FACE_BACKENDS = (
    "bicubic",
    "lanczos",
    "realesrgan",
    "realesrgan:model=animevideo",
    "realcugan",
    "span",
    "classical:bicubic+sharpen",
)
JUDGE = "trust:identity=true"
SIDE = 192
SCALE = 4
METRICS = ("psnr", "ssim", "lpips", "niqe", "identity")
SWAP = "swap-decoy"
DEGRADATIONS = {"mild": "bicubic", "heavy": "face"}
"""Demo degradation -> srjudge.degrade pipeline: bicubic x4, and the face-SR paper's one-stage face
degradation (blur, resize, noise, second blur, JPEG)."""


@dataclass(frozen=True)
class FacePhoto:
    name: str
    hr: np.ndarray
    face: Face


def face_crop(image: np.ndarray, finder: FaceFinder, side: int = SIDE) -> tuple[np.ndarray, Face]:
    """A ``side`` px crop of ``image`` around its largest face: the photo is shrunk (never enlarged) until
    the face is half the crop wide or the photo's short side is ``side``, whichever shrinks less."""
    faces = finder.find(image)
    if not faces:
        raise SrjudgeError("no face found in a bundled face photo")
    face = max(faces, key=lambda f: f.width)
    zoom = min(1.0, max(0.5 * side / face.width, side / min(image.shape[:2])))
    if zoom < 1.0:
        from srjudge.images.resize import imresize

        image = np.clip(imresize(image, scale=zoom), 0.0, 1.0).astype(np.float32)
        face = max(finder.find(image), key=lambda f: f.width)
    h, w = image.shape[:2]
    if min(h, w) < side:
        raise SrjudgeError(f"a bundled face photo is {w}x{h}, smaller than the {side} px crop")
    cx, cy = face.centre
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    crop = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])
    found = finder.find(crop)
    if not found:
        raise SrjudgeError("the face crop lost its face")
    return crop, max(found, key=lambda f: f.width)


def _person(name: str) -> str:
    """``barack-obama_2`` -> ``barack-obama``: who a bundled photo shows."""
    return name.rsplit("_", 1)[0]


def _backends(log: Callable[[str], None]) -> tuple[dict[str, SRBackend], list[str]]:
    ok: dict[str, SRBackend] = {}
    missing = []
    for spec in FACE_BACKENDS:
        try:
            ok[spec] = create_sr_backend(spec)
        except (MissingDependencyError, MissingWeightsError, SrjudgeError) as exc:
            missing.append(f"{spec}: {str(exc).splitlines()[0]}")
            log(f"warning: SR backend {spec} unavailable, continuing without it")
    return ok, missing


def _metric_values(image: np.ndarray, hr: np.ndarray, fns: dict[str, Any]) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for name, fn in fns.items():
        value = fn(image, hr=hr) if fn is not None else None
        values[name] = None if value is None or math.isnan(value) else round(float(value), 4)
    return values


def _metric_fns(log: Callable[[str], None]) -> dict[str, Any]:
    fns: dict[str, Any] = {}
    for name in METRICS:
        try:
            fns[name] = create_metric(name)
        except (MissingDependencyError, MissingWeightsError) as exc:
            log(f"note: {name} not available ({str(exc).splitlines()[0]}); its column is n/a")
            fns[name] = None
    return fns


def _rank_record(
    names: Sequence[str], judge: Judge, images: Sequence[np.ndarray], lr: np.ndarray
) -> list[dict[str, Any]]:
    ranking = judge.rank(list(images), lr=lr, names=list(names))
    return [
        {
            "candidate": names[item.index],
            "rank": item.rank,
            "score": item.verdict.score,
            "tags": list(item.verdict.tags),
            "identity": item.verdict.components.get("identity"),
            "rationale": item.verdict.rationale,
        }
        for item in ranking.items
    ]


def _decision_record(decision: AuditDecision) -> dict[str, Any]:
    return {**decision.to_dict(), "identity": decision.final.verdict.components.get("identity")}


def run_face_demo(
    out_dir: Path, *, seed: int = 0, tau: float = 65.0, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the face demo into ``out_dir`` and return what it wrote to ``face_demo.json``."""
    finder = FaceFinder()
    photos = [FacePhoto(name, *face_crop(image, finder)) for name, image in face_photos()]
    backends, missing = _backends(log)
    judge = create_judge(JUDGE)
    policy = AuditPolicy(tau=tau, retries=1)
    fns = _metric_fns(log)
    swap_base = "realesrgan" if "realesrgan" in backends else next(iter(backends))
    items = []
    cases = [(photo, kind) for kind in DEGRADATIONS for photo in photos]
    settings = {
        "schema": FACE_DEMO_SCHEMA,
        "judge": JUDGE,
        "tau": tau,
        "seed": seed,
        "backends": list(backends),
    }
    for index, (photo, kind) in enumerate(cases):
        start = time.perf_counter()
        name = f"{photo.name}-{kind}"
        record_file = out_dir / "items" / f"{name}.json"
        done = json.loads(record_file.read_text()) if record_file.is_file() else None
        if done is not None and done.get("settings") == settings:  # finished by an earlier run
            items.append(done["item"])
            log(f"[{index + 1}/{len(cases)}] {name}: done by an earlier run with the same settings")
            continue
        lr, record = degrade(photo.hr, pipeline=DEGRADATIONS[kind], scale=SCALE, seed=seed + index)
        save_png(out_dir / "inputs" / "hr" / f"{name}.png", photo.hr)
        save_png(out_dir / "inputs" / "lr" / f"{name}.png", lr)
        outputs = {spec: backend.upscale(lr, scale=SCALE, seed=seed) for spec, backend in backends.items()}
        strangers = [p for p in photos if _person(p.name) != _person(photo.name)]
        other = strangers[index % len(strangers)]
        outputs[SWAP] = swap_face(outputs[swap_base], photo.face, other.hr, other.face)
        names = list(outputs)
        ranking = _rank_record(names, judge, list(outputs.values()), lr)
        pick = next(r["candidate"] for r in ranking if r["rank"] == 1)
        paired = {}
        for spec, backend in backends.items():
            decision = audit_image(
                lr, backend, judge, scale=SCALE, policy=policy, seed=seed, baseline=outputs[spec]
            )
            paired[spec] = {
                "pure": _metric_values(decision.pure.image, photo.hr, fns),
                "judge": _metric_values(decision.final.image, photo.hr, fns),
                "audit": _decision_record(decision),
            }
        swap_audit = audit_image(
            lr, backends[swap_base], judge, scale=SCALE, policy=policy, seed=seed, baseline=outputs[SWAP]
        )
        swap_entry = next(r for r in ranking if r["candidate"] == SWAP)
        items.append(
            {
                "item": name,
                "photo": photo.name,
                "degradation": kind,
                "degradation_record": record.to_dict(),
                "ranking": ranking,
                "pick": pick,
                "pick_metrics": _metric_values(outputs[pick], photo.hr, fns),
                "swap": {
                    "source": other.name,
                    "base": swap_base,
                    "tags": swap_entry["tags"],
                    "rank": swap_entry["rank"],
                    "identity": swap_entry["identity"],
                    "metrics": _metric_values(outputs[SWAP], photo.hr, fns),
                    "audit": _decision_record(swap_audit),
                },
                "paired": paired,
            }
        )
        _write_panels(out_dir / "panels" / f"{name}.png", lr, outputs, pick, swap_audit, photo.face)
        atomic.write_json(record_file, {"settings": settings, "item": items[-1]})
        log(
            f"[{index + 1}/{len(cases)}] {name}: pick {pick}; swap decoy rank {swap_entry['rank']}, "
            f"tags {', '.join(swap_entry['tags']) or '-'}, audit {swap_audit.decision} "
            f"({time.perf_counter() - start:.1f} s)"
        )
    report = {
        "schema": FACE_DEMO_SCHEMA,
        "judge": JUDGE,
        "tau": tau,
        "seed": seed,
        "backends": list(backends),
        "unavailable_backends": missing,
        "metrics": [m for m, fn in fns.items() if fn is not None],
        "note": "metrics use the HR photo, which no judge sees; identity = cosine of dlib descriptors "
        "vs the HR face (same person above 0.895).",
        "items": items,
        "table": {
            kind: paired_table([i for i in items if i["degradation"] == kind], list(backends))
            for kind in DEGRADATIONS
        },
    }
    atomic.write_json(out_dir / "face_demo.json", report)
    atomic.write_text(out_dir / "face_table.md", table_markdown(report))
    return report


def _write_panels(
    path: Path, lr: np.ndarray, outputs: dict[str, np.ndarray], pick: str, swap: AuditDecision, face: Face
) -> None:
    columns = [(lr, "LR input"), (outputs[pick], f"pick: {pick}"), (outputs[SWAP], "swap decoy")]
    identity = swap.pure.verdict.components.get("identity")
    faces = face_columns(
        lr, [("pick", outputs[pick], None), ("swap decoy", outputs[SWAP], identity)], face=face
    )
    row = side_by_side([c[0] for c in columns + faces], [c[1] for c in columns + faces])
    save_png(path, row)
    save_png(path.with_name(path.stem + "-swap-audit.png"), panel(lr, swap))


def paired_table(items: Sequence[dict[str, Any]], backends: Sequence[str]) -> list[dict[str, Any]]:
    """Mean of each metric per backend and variant (pure, +judge), and for the selection."""
    rows = []
    for spec in backends:
        for variant in ("pure", "judge"):
            values = [item["paired"][spec][variant] for item in items]
            rows.append({"backend": spec, "variant": variant, **_means(values)})
    rows.append(
        {
            "backend": "select (trust:identity=true)",
            "variant": "pick",
            **_means([i["pick_metrics"] for i in items]),
        }
    )
    rows.append({"backend": SWAP, "variant": "pure", **_means([i["swap"]["metrics"] for i in items])})
    return rows


def _means(values: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in METRICS:
        got = [v[name] for v in values if v.get(name) is not None]
        out[name] = round(float(np.mean(got)), 4) if got else None  # type: ignore[arg-type]
    return out


def table_markdown(report: dict[str, Any]) -> str:
    """The paired tables as Markdown, one per degradation (n/a for metrics that were not available)."""
    head = "| backend | variant | PSNR | SSIM | LPIPS | NIQE | identity |\n|---|---|---|---|---|---|---|\n"
    parts = []
    for kind, rows in report["table"].items():
        lines = []
        for row in rows:
            cells = [
                "n/a" if row[m] is None else f"{row[m]:.2f}" if m == "psnr" else f"{row[m]:.3f}"
                for m in METRICS
            ]
            lines.append(f"| {row['backend']} | {row['variant']} | " + " | ".join(cells) + " |")
        parts.append(
            f"{kind} ({DEGRADATIONS[kind]} degradation, x{SCALE}):\n\n" + head + "\n".join(lines) + "\n"
        )
    return "\n".join(parts)
