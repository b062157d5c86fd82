"""The command line, run as a user would: real subprocesses, exit codes, outputs, no tracebacks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import q8
from srjudge.images.io import save_png
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from srjudge.sr import classical
from tests.cli.helpers import run


@pytest.fixture(scope="module")
def candidates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cands")
    hr = bundled_photo("chelsea")
    lr = q8(imresize(hr, 0.25))
    save_png(root / "hr.png", hr)
    save_png(root / "lr.png", lr)
    save_png(root / "odd.png", lr[:, :60])
    save_png(root / "c" / "bicubic.png", classical.bicubic(lr, 4))
    save_png(root / "c" / "nearest.png", classical.nearest(lr, 4))
    save_png(root / "c" / "truth.png", hr)
    return root


def test_judges_lists_metadata() -> None:
    result = run("judges", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"trust", "tws"} <= {j["name"] for j in payload["judges"]}
    psnr = next(m for m in payload["metrics"] if m["name"] == "psnr")
    assert psnr["higher_is_better"] is True and psnr["needs_hr"] is True
    assert "trust" in run("judges").stdout


def test_score_formats(candidates: Path) -> None:
    folder = str(candidates / "c")
    as_json = json.loads(
        run(
            "score", folder, "-j", "psnr", "--hr", str(candidates / "hr.png"), "--hr-for-all", "-f", "json"
        ).stdout
    )
    assert as_json["schema"] == "srjudge.scores/1" and len(as_json["records"]) == 3
    by_name = {Path(r["path"]).stem: r for r in as_json["records"]}
    assert by_name["truth"]["raw"] == "inf" and by_name["bicubic"]["raw"] > by_name["nearest"]["raw"]
    rows = list(
        csv.DictReader(
            io.StringIO(run("score", str(candidates / "c" / "*.png"), "-j", "niqe", "-f", "csv").stdout)
        )
    )
    assert [Path(r["path"]).stem for r in rows] == ["bicubic", "nearest", "truth"]
    assert all(float(r["value"]) > 0 for r in rows)
    table = run("score", folder, "-j", "sharpness")
    assert table.returncode == 0 and "nearest" in table.stdout and "mean over 3 images" in table.stdout
    assert as_json["mean"]["scored"] == 3 and as_json["mean"]["infinite_values"] == 1  # truth vs itself


def test_score_pairs_folders_by_name_and_refuses_one_hr_for_many(tmp_path: Path) -> None:
    """pyiqa/BasicSR style: `score SR_DIR --hr HR_DIR` pairs by name and reports the mean."""
    sr_dir, hr_dir, lr_dir = tmp_path / "sr", tmp_path / "hr", tmp_path / "lr"
    psnr = {}
    for photo in ("chelsea", "coffee"):
        hr = bundled_photo(photo, size=128)
        lr = q8(imresize(hr, 0.25))
        sr = classical.bicubic(lr, 4)
        save_png(sr_dir / f"{photo}.png", sr)
        save_png(hr_dir / f"{photo}.png", hr)
        save_png(lr_dir / f"{photo}x4.png", lr)
        psnr[photo] = json.loads(
            run(
                "score",
                str(sr_dir / f"{photo}.png"),
                "-j",
                "psnr",
                "--hr",
                str(hr_dir / f"{photo}.png"),
                "-f",
                "json",
            ).stdout
        )["records"][0]["raw"]
    paired = json.loads(run("score", str(sr_dir), "-j", "psnr", "--hr", str(hr_dir), "-f", "json").stdout)
    by_name = {Path(r["path"]).stem: r for r in paired["records"]}
    assert {k: by_name[k]["raw"] for k in psnr} == psnr  # each SR image against its own HR
    assert Path(by_name["coffee"]["hr"]).name == "coffee.png"
    assert paired["mean"]["mean_value"] == pytest.approx(sum(psnr.values()) / 2)
    table = run("score", str(sr_dir), "-j", "lr-psnr", "--lr", str(lr_dir), "--lr-pattern", "{stem}x4")
    assert table.returncode == 0, table.stderr
    assert "mean over 2 images" in table.stdout
    one_for_many = run("score", str(sr_dir), "-j", "psnr", "--hr", str(hr_dir / "coffee.png"))
    assert one_for_many.returncode == 2 and "--hr-for-all" in one_for_many.stderr
    (hr_dir / "coffee.png").unlink()
    unpaired = run("score", str(sr_dir), "-j", "psnr", "--hr", str(hr_dir))
    assert unpaired.returncode == 2 and "no HR for 1: coffee.png" in unpaired.stderr
    assert "Traceback" not in unpaired.stderr


def test_version_and_rank_table_says_why(candidates: Path) -> None:
    import srjudge

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"srjudge {srjudge.__version__}"
    table = run("rank", str(candidates / "c"), "--lr", str(candidates / "lr.png"))
    assert table.returncode == 0, table.stderr
    assert "detail" in table.stdout and "why #1 beat #2: detail +" in table.stdout


def test_rank_json_is_stable(candidates: Path, tmp_path: Path) -> None:
    out = tmp_path / "ranking.json"
    result = run(
        "rank", str(candidates / "c"), "--lr", str(candidates / "lr.png"), "-f", "json", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    ranking = json.loads(out.read_text())
    assert ranking["schema"] == "srjudge.ranking/1" and ranking["judge"] == "trust"
    assert [c["rank"] for c in ranking["candidates"]] == [1, 2, 3]
    assert Path(ranking["candidates"][0]["path"]).stem == "truth"
    assert Path(ranking["candidates"][-1]["path"]).stem == "nearest"
    assert set(ranking["candidates"][0]) >= {
        "rank",
        "path",
        "score",
        "raw",
        "tags",
        "rationale",
        "components",
    }
    # Same inputs, same bytes: the ranking JSON is deterministic.
    again = run("rank", str(candidates / "c"), "--lr", str(candidates / "lr.png"), "-f", "json")
    assert json.loads(again.stdout) == ranking


@pytest.mark.parametrize(
    "args,message",
    [
        (["score", "missing.png"], "missing.png: no such file"),
        (["score", "{c}", "--judge", "nique"], "Did you mean: niqe"),
        (["score", "{c}", "--judge", "psnr"], "give one (--hr)"),
        (["rank", "{c}", "--lr", "{odd}"], "integer factor"),
        (["score", "{c}", "--judge", "psnr:chanel=y", "--hr", "{hr}"], "Unknown option(s) chanel"),
    ],
)
def test_errors_are_one_clear_line(candidates: Path, args: list[str], message: str) -> None:
    filled = [
        a.format(c=candidates / "c", hr=candidates / "hr.png", odd=candidates / "odd.png") for a in args
    ]
    result = run(*filled)
    assert result.returncode == 2
    assert message in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr


def test_degrade_writes_records_and_resumes(candidates: Path, tmp_path: Path) -> None:
    hr_dir = tmp_path / "hr"
    save_png(hr_dir / "a.png", bundled_photo("coffee"))
    out = tmp_path / "lr"
    first = run(
        "degrade", str(hr_dir), "--out", str(out), "--pipeline", "realesrgan", "--scale", "4", "--seed", "3"
    )
    assert first.returncode == 0, first.stderr
    assert (out / "a.png").is_file() and (out / "a.json").is_file() and (out / "degradations.csv").is_file()
    record = json.loads((out / "a.json").read_text())
    assert record["pipeline"] == "realesrgan" and record["scale"] == 4
    second = run("degrade", str(hr_dir), "--out", str(out), "--seed", "3")
    assert "1 already done" in second.stderr
    bad = run("degrade", str(hr_dir), "--out", str(out), "--pipeline", "realesrgn")
    assert bad.returncode == 2 and "Did you mean: realesrgan" in bad.stderr


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """The demo is `srjudge run` on bundled photos: its run folder, records and report."""
    from browser import console_errors

    result = run("demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert report["schema"] == "srjudge.demo/2" and len(report["items"]) == 3
    assert report["unavailable_backends"] == []  # Real-ESRGAN runs offline from its wheel
    run_dir = tmp_path / "demo" / "run"
    assert {i["item"] for i in report["items"]} == {
        "astronaut-moderate",
        "coffee-moderate",
        "astronaut-heavy",
    }
    for item in report["items"]:
        name = item["item"]
        for path in (
            f"selection/{name}/chosen.png",
            f"selection/{name}/selection.json",
            f"audit/{name}/panel.png",
        ):
            assert (run_dir / path).is_file(), path
        names = [Path(c["path"]).stem for c in item["ranking"]["candidates"]]
        gans = {"realesrgan-model-x4plus", "realcugan-model-se-noise-conservative"}
        assert len(names) == 9 and gans <= set(names)
        assert names.index("classical-nearest") == 8, names  # blocky output last
        assert names[0].startswith(("realesrgan", "realcugan")), names  # a detailed GAN output wins
        assert "detail +" in item["why"], item["why"]  # the pick has more real detail than the runner-up
        assert item["audit"] in {"accept", "accept-low-confidence", "accept-after-retry", "reject"}
        # PSNR/SSIM against the HR, which the judge never saw, for every candidate
        assert set(item["reference"]) == set(names)
        assert all(0 < r["ssim"] <= 1 and r["psnr"] > 10 for r in item["reference"].values())
    assert "ranked by trust" in result.stdout and "index.html" in result.stdout
    assert result.stdout.count("why #1 beat #2: ") == 3
    html = run_dir / "report" / "index.html"
    text = html.read_text()
    assert text.count("Why it beat the runner-up: ") == 3 and "invents content" in text
    assert text.count("HR (not seen by the judge)") >= 3
    assert console_errors(html) == []
