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
from srjudge.select.fusion import fuse, fuse_scored, fusion_weights
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


def test_fusion_weights_from_judge_scores() -> None:
    """Scores clipped at 0 (an abstention counts 0) plus the floor; equal weights when nothing is left."""
    assert fusion_weights([60.0, -5.0, None]) == [60.0, 0.0, 0.0]
    assert fusion_weights([0.0, None]) == [1.0, 1.0]
    assert fusion_weights([0.0, 30.0], floor=1e-6) == [1e-6, 30.0 + 1e-6]
    a = np.full((4, 4, 3), 0.2, np.float32)
    c = np.full((4, 4, 3), 1.0, np.float32)
    assert fuse_scored([a, c], [75.0, 25.0], "weighted")[0, 0, 0] == pytest.approx(0.4, abs=1 / 255)
    assert fuse_scored([a, c], [0.0, None], "weighted")[0, 0, 0] == pytest.approx(0.6, abs=1 / 255)
    with pytest.raises(ValueError, match="scores"):
        fuse_scored([a, c], [1.0], "mean")


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
    from srjudge.images.samples import bundled_photo

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
    same_policy = AuditPolicy(tau=95, retries=1, min_confidence=0.0)  # the resume key holds the settings
    again = audit_folder(
        sorted(lr_dir.iterdir()), create_sr_backend("bicubic"), create_judge("trust"), out, policy=same_policy
    )
    assert again.skipped == ["astro", "soft"] and not again.decisions


def _tiny_inputs(root: Path, astronaut: np.ndarray, names: list[str]) -> tuple[list[Path], Path]:
    """32x32 HR crops and their 8x8 LR inputs (one per name, each a different crop)."""
    paths = []
    for i, name in enumerate(names):
        hr = astronaut[32 * i : 32 * i + 32, 64:96]
        paths.append(save_png(root / "lr" / f"{name}.png", q8(imresize(hr, 0.25))))
        save_png(root / "hr" / f"{Path(name).name}.png", hr)
    return paths, root / "hr"


def _audit_rows(out: Path) -> list[dict[str, str]]:
    with (out / "audit.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_audit_metrics_cover_resumed_items(tmp_path: Path, astronaut: np.ndarray) -> None:
    """Issue 14 (2): items resumed from audit.csv still get metric rows and count in the summary."""
    from srjudge.audit.run import audit_folder

    paths, hr_dir = _tiny_inputs(tmp_path, astronaut, ["a", "b", "c"])
    out, bicubic, trust = tmp_path / "audit", create_sr_backend("bicubic"), create_judge("trust")
    audit_folder(paths[:1], bicubic, trust, out, hr_dir=hr_dir)  # a run cut short after one item
    assert [r["name"] for r in csv.DictReader((out / "metrics.csv").open())] == ["a"]
    audit_folder(paths[1:2], bicubic, trust, out)  # one without --hr
    resumed = audit_folder(paths, bicubic, trust, out, hr_dir=hr_dir)
    assert resumed.skipped == ["a", "b"] and list(resumed.decisions) == ["c"]
    metrics = list(csv.DictReader((out / "metrics.csv").open()))
    assert sorted(r["name"] for r in metrics) == ["a", "b", "c"]
    assert all(float(r["psnr_pure"]) > 10 for r in metrics)
    [family] = list(csv.DictReader((out / "metrics_summary.csv").open()))
    assert family["family"] == "interpolation" and family["n"] == "3"
    assert "no metrics row" not in family["notes"]
    again = audit_folder(paths, bicubic, trust, out, hr_dir=hr_dir)  # nothing new: no duplicate rows
    assert again.skipped == ["a", "b", "c"]
    assert len(list(csv.DictReader((out / "metrics.csv").open()))) == 3
    assert next(csv.DictReader((out / "metrics_summary.csv").open()))["n"] == "3"


def test_audit_csv_has_one_header_when_the_first_item_fails(tmp_path: Path, astronaut: np.ndarray) -> None:
    """Issue 14 (3): repeating a run whose only (first) item failed must not add a second header."""
    from srjudge.audit.run import audit_folder

    broken = tmp_path / "lr" / "a.png"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a png")
    [good], _ = _tiny_inputs(tmp_path, astronaut, ["b"])
    out, bicubic, trust = tmp_path / "audit", create_sr_backend("bicubic"), create_judge("trust")
    for _ in range(2):
        summary = audit_folder([broken], bicubic, trust, out)
        assert [name for name, _ in summary.failed] == ["a"]
    summary = audit_folder([broken, good], bicubic, trust, out)
    assert list(summary.decisions) == ["b"]
    lines = (out / "audit.csv").read_text().splitlines()
    assert sum(line.startswith("name,") for line in lines) == 1
    assert [r["name"] for r in _audit_rows(out)] == ["b"]


def test_audit_clashing_stems_get_path_derived_names(tmp_path: Path, astronaut: np.ndarray) -> None:
    """Issue 14 (4): a/x.png and b/x.png are two items (a-x, b-x), not one overwriting the other."""
    from srjudge.audit.run import audit_folder

    paths, hr_dir = _tiny_inputs(tmp_path, astronaut, ["a/x", "b/x", "y"])
    out = tmp_path / "audit"
    summary = audit_folder(paths, create_sr_backend("bicubic"), create_judge("trust"), out)
    assert list(summary.decisions) == ["a-x", "b-x", "y"] and summary.inputs["b-x"] == paths[1]
    for sub in ("pure", "judge", "panels"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["a-x.png", "b-x.png", "y.png"]
    rows = _audit_rows(out)
    assert [(r["name"], Path(r["input"])) for r in rows] == list(zip(["a-x", "b-x", "y"], paths, strict=True))
    assert not np.array_equal(load_image(out / "pure" / "a-x.png"), load_image(out / "pure" / "b-x.png"))
    # With --hr, a renamed item needs the reference named after it: x.png would fit either input.
    with_hr = audit_folder(paths, create_sr_backend("bicubic"), create_judge("trust"), out, hr_dir=hr_dir)
    assert with_hr.skipped == ["y"] and [name for name, _ in with_hr.failed] == ["a-x", "b-x"]
    assert "ambiguous" in with_hr.failed[0][1]
    save_png(hr_dir / "a-x.png", load_image(hr_dir / "x.png"))
    save_png(hr_dir / "b-x.png", load_image(hr_dir / "x.png"))
    assert audit_folder(
        paths, create_sr_backend("bicubic"), create_judge("trust"), out, hr_dir=hr_dir
    ).skipped == [
        "a-x",
        "b-x",
        "y",
    ]
    assert sorted(r["name"] for r in csv.DictReader((out / "metrics.csv").open())) == ["a-x", "b-x", "y"]
    # Deeper clashes, extension-only clashes, a derived name taken by another stem, one file twice.
    from srjudge.audit.run import item_names

    r = Path("/r")
    assert item_names([r / "p/a/x.png", r / "q/a/x.png", r / "p/y.png"]) == ["p-a-x", "q-a-x", "y"]
    assert item_names([r / "x.png", r / "x.jpg"]) == ["x-png", "x-jpg"]
    assert item_names([r / "a/X.png", r / "b/x.png"]) == ["a-X", "b-x"]  # case-insensitive clash
    assert item_names([r / "a-x.png", r / "a/x.png", r / "b/x.png"]) == ["a-x", "r-a-x", "r-b-x"]
    assert item_names([r / "x.png", r / "x.png"]) == ["x", "x"]


def test_audit_resume_key_holds_settings_and_input_bytes(tmp_path: Path, astronaut: np.ndarray) -> None:
    """Issue 14 (5): another backend, judge, policy or input content is audited again, not skipped."""
    from srjudge.audit.run import audit_folder

    paths, _ = _tiny_inputs(tmp_path, astronaut, ["a", "b"])
    out, trust = tmp_path / "audit", create_judge("trust")
    bicubic, lanczos = create_sr_backend("bicubic"), create_sr_backend("lanczos")
    assert list(audit_folder(paths, bicubic, trust, out).decisions) == ["a", "b"]
    assert audit_folder(paths, bicubic, trust, out).skipped == ["a", "b"]
    other = audit_folder(paths, lanczos, create_judge("trust:w_grid=2"), out)
    assert other.skipped == [] and list(other.decisions) == ["a", "b"]
    assert [r["backend"] for r in _audit_rows(out)] == ["bicubic", "bicubic", "lanczos", "lanczos"]
    assert audit_folder(paths, lanczos, create_judge("trust:w_grid=2"), out).skipped == ["a", "b"]
    # Back to the first settings: their rows match, but the saved images are now lanczos's: redone.
    back = audit_folder(paths, bicubic, trust, out)
    assert back.skipped == [] and list(back.decisions) == ["a", "b"]
    judge_only = audit_folder(paths, bicubic, create_judge("trust:w_grid=2"), out)
    assert judge_only.skipped == [] and list(judge_only.decisions) == ["a", "b"]
    for changed in (
        {"policy": AuditPolicy(tau=50)},
        {"policy": AuditPolicy(retries=0)},
        {"scale": 2},
        {"seed": 1},
    ):
        redo = audit_folder(paths, bicubic, trust, out, **changed)  # type: ignore[arg-type]
        assert redo.skipped == [] and list(redo.decisions) == ["a", "b"], changed
    fingerprints = [r["fingerprint"] for r in _audit_rows(out)]
    assert len(fingerprints) == 16 and len(set(fingerprints)) == 14  # only `back` repeats a fingerprint
    # New bytes under the same name: redone.
    save_png(paths[0], q8(np.clip(load_image(paths[0]) * 0.9, 0, 1)))
    bytes_changed = audit_folder(paths, bicubic, trust, out, seed=1)
    assert bytes_changed.skipped == ["b"] and list(bytes_changed.decisions) == ["a"]
    rows = _audit_rows(out)
    assert rows[-1]["name"] == "a" and rows[-1]["seed"] == "1"


def test_audit_ignores_a_row_cut_by_a_kill(tmp_path: Path, astronaut: np.ndarray) -> None:
    """A half-written last row never counts as done, and the next append starts on a clean line."""
    from srjudge.audit.run import AUDIT_COLUMNS, audit_folder

    paths, _ = _tiny_inputs(tmp_path, astronaut, ["a", "b"])
    out, bicubic, trust = tmp_path / "audit", create_sr_backend("bicubic"), create_judge("trust")
    audit_folder(paths, bicubic, trust, out)
    text = (out / "audit.csv").read_bytes()
    last = text.rstrip(b"\r\n").rfind(b"\n") + 1
    for cut in (len(text) - 3, last + 40):  # the line end lost / most of the row lost
        (out / "audit.csv").write_bytes(text[:cut])
        resumed = audit_folder(paths, bicubic, trust, out)
        assert resumed.skipped == ["a"] and list(resumed.decisions) == ["b"]
        rows = _audit_rows(out)
        assert [r["name"] for r in rows] == ["a", "b"] and all(r["fingerprint"] for r in rows)
    # An audit.csv of an older version (no fingerprint column) is migrated; its rows do not count.
    old_columns = [
        c for c in AUDIT_COLUMNS if c not in ("input", "input_sha256", "outputs_sha256", "fingerprint")
    ]
    with (out / "audit.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=old_columns)
        writer.writeheader()
        writer.writerow({c: ("a" if c == "name" else "") for c in old_columns})
    migrated = audit_folder(paths, bicubic, trust, out)
    assert list(migrated.decisions) == ["a", "b"]
    header = (out / "audit.csv").read_text().splitlines()[0]
    assert header == ",".join(AUDIT_COLUMNS)
    assert _audit_rows(out)[0]["fingerprint"] == ""
