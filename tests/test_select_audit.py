"""Selection, fusion, folder mode, generate and the audit gatekeeper, on bundled photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from conftest import q8
from srjudge.audit.gate import AuditPolicy, audit_image, audit_tags
from srjudge.errors import SizeMismatchError, SpecError, SrjudgeError
from srjudge.images.io import load_image, save_png
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from srjudge.judges.base import Judge, Verdict
from srjudge.provenance import Provenance
from srjudge.select.folder import items_from_folder, items_from_manifest, select_items
from srjudge.select.fusion import fuse
from srjudge.select.selection import select_best
from srjudge.sr import classical
from srjudge.sr.base import SRBackend, create_sr_backend
from srjudge.sr.knobs import KNOBS, apply_post, apply_pre, choose_knob


def test_fusion_methods() -> None:
    a = np.full((4, 4, 3), 0.2, np.float32)
    b = np.full((4, 4, 3), 0.4, np.float32)
    c = np.full((4, 4, 3), 1.0, np.float32)
    assert fuse([a, b, c], "median")[0, 0, 0] == pytest.approx(0.4, abs=1 / 255)
    assert fuse([a, b, c], "mean")[0, 0, 0] == pytest.approx(1.6 / 3, abs=1 / 255)
    assert fuse([a, c], "weighted", [3, 1])[0, 0, 0] == pytest.approx(0.4, abs=1 / 255)
    assert fuse([a, b], "none")[0, 0, 0] == pytest.approx(0.2, abs=1 / 255)
    with pytest.raises(ValueError, match="non-negative"):
        fuse([a, b], "weighted", [1, -1])


def _stochastic_samples(hr: np.ndarray, lr: np.ndarray, n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    detail = hr - imresize(imresize(hr, 0.25), output_shape=hr.shape[:2])
    base = imresize(lr, output_shape=hr.shape[:2])
    out = [q8(base + detail * rng.uniform(0.6, 1.0) + rng.normal(0, 0.01, hr.shape)) for _ in range(n)]
    bad = out[2].copy()
    bad[100:160, 100:160] = np.rot90(bad[100:160, 100:160])
    out[2] = q8(bad)
    return out


def test_select_chooses_a_trustworthy_sample_and_fusion_validates(astronaut: np.ndarray) -> None:
    lr = q8(imresize(astronaut, 0.25))
    samples = _stochastic_samples(astronaut, lr)
    selection = select_best(samples, [f"s{i}" for i in range(6)], create_judge("trust"), lr=lr, top_k=3)
    assert selection.chosen != 2 and 2 not in selection.top_k  # the hallucinated sample is never picked
    assert len(selection.top_k) == 3 and selection.fused.shape == astronaut.shape
    # The fused image of the top 3 is at least as trustworthy (TWS vs the LR) as the worst candidate.
    assert selection.tws_fused >= min(selection.tws_candidates)
    payload = json.loads(json.dumps(selection.to_dict()))
    assert payload["schema"] == "srjudge.selection/2" and payload["ranking"]["schema"] == "srjudge.ranking/1"
    assert payload["chosen"]["path"] == f"s{selection.chosen}"
    with pytest.raises(SizeMismatchError, match="same size"):
        select_best([samples[0], samples[1][:, :200]], ["a", "b"], create_judge("trust"), lr=lr)
    with pytest.raises(SrjudgeError, match="--fuse"):
        select_best(samples, [f"s{i}" for i in range(6)], create_judge("trust"), lr=lr, fuse_method="max")


def _write_item(root: Path, name: str, hr: np.ndarray) -> None:
    lr = q8(imresize(hr, 0.25))
    save_png(root / name / "lr.png", lr)
    save_png(root / name / "candidates" / "bicubic.png", classical.bicubic(lr, 4))
    save_png(root / name / "candidates" / "lanczos.png", classical.lanczos(lr, 4))
    save_png(root / name / "candidates" / "nearest.png", classical.nearest(lr, 4))


def test_folder_mode_is_resumable(tmp_path: Path, astronaut: np.ndarray) -> None:
    from srjudge.demo import bundled_photo

    root = tmp_path / "in"
    _write_item(root, "astronaut", astronaut)
    _write_item(root, "coffee", bundled_photo("coffee"))
    (root / "broken").mkdir()
    with pytest.raises(SrjudgeError, match="broken: no lr"):
        items_from_folder(root)
    (root / "broken").rmdir()
    items = items_from_folder(root)
    out = tmp_path / "out"
    first = select_items(items, create_judge("trust"), out, top_k=2)
    assert first.done == ["astronaut", "coffee"] and (out / "coffee" / "fused.png").is_file()
    record = json.loads((out / "astronaut" / "selection.json").read_text())
    assert Path(record["chosen"]["path"]).stem != "nearest"
    again = select_items(items, create_judge("trust"), out, top_k=2)
    assert again.skipped == ["astronaut", "coffee"] and not again.done
    changed = select_items(items, create_judge("trust"), out, top_k=3)  # other settings: recomputed
    assert changed.done == ["astronaut", "coffee"]
    rows = list(csv.DictReader((out / "selections.csv").open()))
    assert len(rows) == 4


def test_manifest_mode_reports_every_problem(tmp_path: Path, astronaut: np.ndarray) -> None:
    _write_item(tmp_path, "a", astronaut)
    good = tmp_path / "m.csv"
    good.write_text(
        "item,lr,candidate\na,a/lr.png,a/candidates/bicubic.png\na,a/lr.png,a/candidates/lanczos.png\n"
    )
    [item] = items_from_manifest(good)
    assert item.name == "a" and len(item.candidates) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"item": "a", "lr": "a/lr.png", "candidate": "a/candidates/missing.png"}\n'
        '{"item": "a", "lr": "a/other.png", "candidate": "a/candidates/bicubic.png"}\n'
        '{"item": "b", "lr": "a/lr.png"}\n'
    )
    with pytest.raises(SrjudgeError) as info:
        items_from_manifest(bad)
    message = str(info.value)
    assert "row 1: candidate file 'a/candidates/missing.png' not found" in message
    assert "row 2: item 'a' has two LR inputs" in message and "row 3: missing candidate" in message


def test_generate_then_select(tmp_path: Path, astronaut_lr: np.ndarray) -> None:
    from srjudge.sr.generate import generate_folder

    save_png(tmp_path / "lr" / "astro.png", astronaut_lr)
    backends = [create_sr_backend("bicubic"), create_sr_backend("lanczos")]
    manifests = generate_folder([tmp_path / "lr" / "astro.png"], backends, tmp_path / "gen", scale=4)
    assert [e["backend"] for e in manifests["astro"]] == ["bicubic", "lanczos"]
    manifest = json.loads((tmp_path / "gen" / "astro" / "manifest.json").read_text())
    assert manifest["schema"] == "srjudge.candidates/1" and manifest["candidates"][0]["seed"] is None
    items = items_from_folder(tmp_path / "gen")
    assert len(items[0].candidates) == 2
    assert load_image(items[0].candidates[0]).shape == (256, 256, 3)


def test_knobs_are_bounded_and_do_what_they_say(astronaut: np.ndarray, astronaut_lr: np.ndarray) -> None:
    sr = classical.unsharp(classical.bicubic(astronaut_lr, 4), 2.5, 2.0)
    with pytest.raises(SpecError, match="outside its safe range"):
        apply_post("dehalo", sr, astronaut_lr, 2.0)
    dehaloed = apply_post("dehalo", sr, astronaut_lr, 0.8)
    from srjudge.images.color import rgb_to_gray
    from srjudge.judges.trust import EdgeRange, overshoot

    edges = EdgeRange.of(imresize(rgb_to_gray(astronaut_lr), output_shape=sr.shape[:2]), 4)
    assert overshoot(rgb_to_gray(dehaloed), edges) < 0.5 * overshoot(rgb_to_gray(sr), edges)
    tinted = q8(sr * np.array([1.2, 1.0, 0.8], np.float32))
    balanced = apply_post("colour_balance", tinted, astronaut_lr, 0.5)
    lr_mean = astronaut_lr.reshape(-1, 3).mean(0)
    assert (
        np.abs(balanced.reshape(-1, 3).mean(0) - lr_mean).sum()
        < np.abs(tinted.reshape(-1, 3).mean(0) - lr_mean).sum()
    )
    noisy_lr = q8(astronaut_lr + np.random.default_rng(0).normal(0, 0.05, astronaut_lr.shape))
    assert np.std(apply_pre("denoise", noisy_lr, 10.0) - astronaut_lr) < np.std(noisy_lr - astronaut_lr)
    assert choose_knob("general", ["ringing"])[0].name == "dehalo"  # type: ignore[index]
    assert choose_knob("blind", ["noise"])[0].name == "denoise"  # type: ignore[index]
    assert choose_knob("general", ["ringing"], exclude={"dehalo"}) is None
    assert choose_knob("prior-guided", ["blur"]) is None
    assert {k.family for k in KNOBS.values()} == {"general", "blind", "prior-guided"}
    assert audit_tags(["jpeg-blocks", "semantic-outlier", "ringing"]) == (
        "blockiness",
        "semantic change",
        "ringing",
    )


class _ScriptedJudge(Judge):
    """Scores by a rule on the image: lets the gatekeeper's decisions be tested exactly."""

    def __init__(self, rule) -> None:  # type: ignore[no-untyped-def]
        self.rule = rule
        self.spec = "scripted"
        self.config: dict[str, object] = {}

    def score(
        self, image: np.ndarray, *, lr: np.ndarray | None = None, hr: np.ndarray | None = None
    ) -> Verdict:
        score, tags, confidence = self.rule(image)
        return Verdict(
            judge="scripted",
            score=score,
            raw=score,
            provenance=Provenance("scripted", "0", "0"),
            tags=tuple(tags),
            confidence=confidence,
        )


class _Oversharpener(SRBackend):
    """A 'general' SR model that over-sharpens (halos): what the dehalo knob is for."""

    spec = "oversharpener"
    family = "general"

    def upscale(self, lr: np.ndarray, *, scale: int, seed: int | None = None) -> np.ndarray:
        return classical.unsharp(classical.bicubic(lr, scale), 2.5, 2.0)


def test_gatekeeper_decisions(astronaut_lr: np.ndarray) -> None:
    backend: SRBackend = _Oversharpener()
    lr = astronaut_lr
    accept = audit_image(lr, backend, _ScriptedJudge(lambda im: (90.0, [], 0.9)))
    assert accept.decision == "accept" and len(accept.steps) == 1
    unsure = audit_image(lr, backend, _ScriptedJudge(lambda im: (10.0, ["ringing"], 0.2)))
    assert unsure.decision == "accept-low-confidence" and unsure.final is unsure.pure

    # The judge dislikes ringing until the dehalo knob has been applied.
    def halo_judge(image: np.ndarray) -> tuple[float, list[str], float]:
        fixed = not np.array_equal(image, backend.upscale(lr, scale=4))
        return (85.0, [], 0.9) if fixed else (60.0, ["ringing"], 0.9)

    retried = audit_image(lr, backend, _ScriptedJudge(halo_judge), policy=AuditPolicy(tau=80, retries=1))
    assert retried.decision == "accept-after-retry" and retried.final.knob == "dehalo"
    assert retried.final.value == KNOBS["dehalo"].step
    rejected = audit_image(
        lr, backend, _ScriptedJudge(lambda im: (50.0, ["ringing"], 0.9)), policy=AuditPolicy(retries=1)
    )
    assert rejected.decision == "reject" and "1 retry(ies) did not pass" in rejected.reason
    blocked = audit_image(
        lr,
        backend,
        _ScriptedJudge(lambda im: (95.0, ["semantic change"], 0.9)),
        policy=AuditPolicy(retries=0),
    )
    assert blocked.decision == "reject" and "no retries allowed" in blocked.reason


def test_audit_folder_outputs_and_resume(tmp_path: Path, astronaut: np.ndarray) -> None:
    from srjudge.audit.run import audit_folder

    lr_dir, hr_dir = tmp_path / "lr", tmp_path / "hr"
    lr = q8(imresize(astronaut, 0.25))
    save_png(lr_dir / "astro.png", lr)
    save_png(hr_dir / "astro.png", astronaut)
    blurred = q8(np.stack([gaussian_filter(lr[..., c], 1.0) for c in range(3)], -1))
    save_png(lr_dir / "soft.png", blurred)
    save_png(hr_dir / "soft.png", astronaut)
    out = tmp_path / "audit"
    summary = audit_folder(
        sorted(lr_dir.iterdir()),
        create_sr_backend("bicubic"),
        create_judge("trust"),
        out,
        policy=AuditPolicy(tau=95, retries=1, min_confidence=0.0),
        hr_dir=hr_dir,
    )
    assert set(summary.decisions) == {"astro", "soft"}
    for sub in ("pure", "judge", "panels"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["astro.png", "soft.png"]
    assert load_image(out / "panels" / "astro.png").shape[1] > 3 * 200  # three images side by side
    rows = list(csv.DictReader((out / "audit.csv").open()))
    assert [r["name"] for r in rows] == ["astro", "soft"] and rows[0]["decision"] == summary.decisions[
        "astro"
    ]
    metrics = list(csv.DictReader((out / "metrics.csv").open()))
    assert float(metrics[0]["psnr_pure"]) > 20 and 0.0 < float(metrics[0]["lpips_pure"]) < 1.0
    family = list(csv.DictReader((out / "metrics_summary.csv").open()))
    assert family[0]["family"] == "interpolation" and "lpips: n/a" not in family[0]["notes"]
    again = audit_folder(sorted(lr_dir.iterdir()), create_sr_backend("bicubic"), create_judge("trust"), out)
    assert again.skipped == ["astro", "soft"] and not again.decisions
