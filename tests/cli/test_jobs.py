"""``srjudge generate``, ``select`` and ``audit`` run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import q8
from srjudge.images.io import save_png
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from tests.cli.helpers import run


def test_generate_select_audit_commands(tmp_path: Path) -> None:
    lr_dir = tmp_path / "lr"
    hr = bundled_photo("coffee")
    save_png(lr_dir / "coffee.png", q8(imresize(hr, 0.25)))
    save_png(tmp_path / "hr" / "coffee.png", hr)
    gen = run(
        "generate",
        str(lr_dir),
        "--backend",
        "bicubic",
        "--backend",
        "lanczos",
        "--out",
        str(tmp_path / "gen"),
    )
    assert gen.returncode == 0, gen.stderr
    assert "2 candidates for 1 LR input" in gen.stderr
    sel = run("select", "--folder", str(tmp_path / "gen"), "--top-k", "2", "--out", str(tmp_path / "sel"))
    assert sel.returncode == 0, sel.stderr
    chosen_line = json.loads((tmp_path / "sel" / "coffee" / "selection.json").read_text())["chosen"]["path"]
    assert f"coffee: {Path(chosen_line).name}" in sel.stdout  # says which, not only how many
    record = json.loads((tmp_path / "sel" / "coffee" / "selection.json").read_text())
    assert record["fuse"] == "median" and len(record["top_k"]) == 2
    resumed = run("select", "--folder", str(tmp_path / "gen"), "--top-k", "2", "--out", str(tmp_path / "sel"))
    assert "1 already done" in resumed.stderr
    single = run(
        "select",
        str(tmp_path / "gen" / "coffee" / "lr.png"),
        str(tmp_path / "gen" / "coffee" / "candidates"),
        "--fuse",
        "mean",
        "--out",
        str(tmp_path / "one"),
    )
    assert (
        single.returncode == 0 and "chosen:" in single.stdout and (tmp_path / "one" / "fused.png").is_file()
    )
    aud = run(
        "audit",
        str(lr_dir),
        "--sr",
        "bicubic",
        "--tau",
        "90",
        "--hr",
        str(tmp_path / "hr"),
        "--out",
        str(tmp_path / "aud"),
    )
    assert aud.returncode == 0, aud.stderr
    assert "1 audited" in aud.stderr and (tmp_path / "aud" / "panels" / "coffee.png").is_file()
    assert (tmp_path / "aud" / "metrics_summary.csv").is_file()
    bad = run("audit", str(lr_dir), "--sr", "bicubc")
    assert bad.returncode == 2 and "Did you mean: bicubic" in bad.stderr
