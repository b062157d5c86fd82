"""``srjudge run`` and ``srjudge report``: one run folder whose steps read each other's records, that
resumes without judging anything twice, and that ends the same after a kill -9 as without one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import q8
from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.io import save_png
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from srjudge.run import RunConfig, RunLayout, build_report, load_run_config, run_job

PHOTOS = ("astronaut", "chelsea", "coffee", "camera", "rocket", "brick")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run-inputs")
    for photo in PHOTOS:
        hr = bundled_photo(photo, size=128)
        save_png(root / "lr" / f"{photo}.png", q8(imresize(hr, 0.25)))
        save_png(root / "hr" / f"{photo}.png", hr)
    return root


def _records(run: Path) -> dict[str, object]:
    """Every JSON record of a run, with the run folder's own path taken out (runs in two folders)."""
    out = {}
    for path in sorted(run.rglob("*.json")):
        text = path.read_text().replace(str(run), "RUN")
        out[str(path.relative_to(run))] = json.loads(text)
    return out


def test_run_hands_records_from_step_to_step(inputs: Path, tmp_path: Path) -> None:
    config = RunConfig(
        inputs=(str(inputs / "lr"),), out=str(tmp_path / "run"), backends=("bicubic", "lanczos")
    )
    summary = run_job(config)
    layout = RunLayout(tmp_path / "run")
    assert summary.items == sorted(PHOTOS) and not summary.failed
    assert layout.item_names() == sorted(PHOTOS)
    for name in PHOTOS:
        manifest = json.loads(layout.manifest(name).read_text())
        selection = json.loads(layout.selection_record(name).read_text())
        audit = json.loads(layout.audit_record(name).read_text())
        chosen = Path(selection["chosen"]["path"]).name
        # audit gated what select chose, with the backend the manifest recorded for it
        assert audit["chosen"] == chosen == summary.chosen[name]
        assert audit["backend"] == next(
            c["backend"] for c in manifest["candidates"] if c["file"].endswith(chosen)
        )
        assert audit["decision"]["decision"] == summary.decisions[name]
        # select kept the manifest's provenance: backend, settings and seed of every candidate
        assert selection["candidates_provenance"] == manifest["candidates"]
    html = (layout.report / "index.html").read_text()
    assert all(f">{name}<" in html for name in PHOTOS) and "Why it beat the runner-up" in html
    # the report is rebuilt from the records alone, identically
    first = html
    (layout.report / "index.html").unlink()
    build_report(layout.root)
    assert (layout.report / "index.html").read_text() == first


def test_run_resumes_without_judging_again(inputs: Path, tmp_path: Path) -> None:
    config = RunConfig(
        inputs=(str(inputs / "lr"),), out=str(tmp_path / "run"), backends=("bicubic", "lanczos")
    )
    run_job(config)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.suffix in (".json", ".png")}
    stamps = {p: t for p, t in stamps.items() if "report" not in p.parts and p.name != "run.json"}
    run_job(config)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing generated, selected or audited again
    changed = RunConfig(**{**config.__dict__, "tau": 99.0})
    run_job(changed)  # another audit threshold: only the audit records are made again
    audit_files = [p for p in stamps if "audit" in p.parts]
    assert all(p.stat().st_mtime_ns != stamps[p] for p in audit_files if p.name == "decision.json")
    assert all(p.stat().st_mtime_ns == stamps[p] for p in stamps if "selection" in p.parts)


def test_kill_then_rerun_ends_as_an_uninterrupted_run(inputs: Path, tmp_path: Path) -> None:
    args = [str(inputs / "lr"), "--sr", "bicubic,lanczos", "--hr", str(inputs / "hr")]
    cli = [sys.executable, "-m", "srjudge.cli.main", "run"]
    whole = subprocess.run([*cli, *args, "-o", str(tmp_path / "whole")], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    killed = tmp_path / "killed"
    for delay in (1.2, 2.0):  # kill -9 part-way (the run takes a few seconds), then once more
        proc = subprocess.Popen(
            [*cli, *args, "-o", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    again = subprocess.run([*cli, *args, "-o", str(killed)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert not [p for p in killed.rglob("*.tmp")], "a cut temporary file was kept"
    assert _records(killed) == _records(tmp_path / "whole")


def test_run_config_file_and_bad_settings(inputs: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"inputs: [{inputs / 'lr'}]\nbackends: [bicubic]\ntau: 70\n")
    config = load_run_config(cfg, out=str(tmp_path / "out"), tau=None)
    assert config.inputs == (str(inputs / "lr"),) and config.backends == ("bicubic",) and config.tau == 70.0
    assert config.out == str(tmp_path / "out")
    cfg.write_text("inputs: [x]\nbackend: [bicubic]\n")
    with pytest.raises(SpecError, match="did you mean 'backends'"):
        load_run_config(cfg)
    with pytest.raises(SpecError, match="tau"):
        RunConfig(inputs=("x",), tau=150)
    with pytest.raises(SrjudgeError, match="not a run folder"):
        build_report(tmp_path)
