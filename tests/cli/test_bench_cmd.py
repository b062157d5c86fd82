"""``srjudge bench`` run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import run


def test_bench_command(tmp_path: Path) -> None:
    result = run(
        "bench",
        "--synthetic",
        "best-of-n",
        "--judges",
        "trust,psnr",
        "--bootstrap",
        "50",
        "--out",
        str(tmp_path / "bench"),
    )
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stderr and "top1_agreement" in result.stdout
    table = json.loads((tmp_path / "bench" / "table.json").read_text())
    assert [r["judge"] for r in table["rows"]] == ["trust", "psnr"]
    both = run("bench", "--synthetic", "mos", "--dataset", "x.csv")
    assert both.returncode == 2 and "exactly one of --dataset" in both.stderr
