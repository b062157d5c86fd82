"""The audit folder runner (audit_folder): outputs, metrics, resume, names, and rows cut by a kill."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from conftest import q8
from srjudge.audit.gate import AuditPolicy
from srjudge.images.io import load_image, save_png
from srjudge.images.resize import imresize
from srjudge.judges import create_judge
from srjudge.sr.base import create_sr_backend


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
