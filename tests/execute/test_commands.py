"""Every command's work on a real local Ray instance (2 workers) and on 2 processes gives the records of
``--executor local``, byte for byte (timing columns aside); a killed Ray worker loses and duplicates
nothing; a run interrupted on one executor resumes on another.

One Ray instance serves the whole module (its actors are reused from test to test).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from conftest import q8
from srjudge.audit.gate import AuditPolicy
from srjudge.audit.run import audit_folder
from srjudge.bench.datasets import load_dataset
from srjudge.bench.evaluate import run_bench
from srjudge.bench.synthetic import make_synthetic
from srjudge.execute import Executor, create_executor
from srjudge.images.io import save_png
from srjudge.images.resize import imresize
from srjudge.images.samples import bundled_photo
from srjudge.judges import create_judge
from srjudge.judges.per_worker import judge_handle
from srjudge.select.files import ScoreItem, ScoreWork, iter_score_files
from srjudge.select.folder import items_from_folder, select_items
from srjudge.sr.base import create_sr_backend
from srjudge.sr.generate import generate_folder

PHOTOS = ("chelsea", "coffee", "astronaut")
NAMES = ("local", "processes:2", "ray:workers=2")


@pytest.fixture(scope="module")
def executors() -> Iterator[dict[str, Executor]]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    made = {name: create_executor(name) for name in NAMES}
    try:
        yield made
    finally:
        for executor in made.values():
            executor.close()
        ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    for photo in PHOTOS:
        hr = bundled_photo(photo, size=64)
        save_png(root / "hr" / f"{photo}.png", hr)
        save_png(root / "lr" / f"{photo}.png", q8(imresize(hr, 0.25)))
    return root


def tree(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def without_columns(text: str, columns: set[str]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in columns} for row in csv.DictReader(io.StringIO(text))]


def test_generate_select_and_audit_write_the_same_run_folders(
    executors: dict[str, Executor], inputs: Path, tmp_path: Path
) -> None:
    lr_paths = sorted((inputs / "lr").glob("*.png"))
    backends = [create_sr_backend("bicubic"), create_sr_backend("lanczos")]
    judge = create_judge("trust")
    for name, executor in executors.items():
        made = generate_folder(lr_paths, backends, tmp_path / "gen" / name, scale=4, executor=executor)
        assert sorted(made) == sorted(PHOTOS)
        items = items_from_folder(tmp_path / "gen" / "local")
        selected = select_items(items, judge, tmp_path / "select" / name, top_k=2, executor=executor)
        assert len(selected.done) == 3 and not selected.failed
        audited = audit_folder(
            lr_paths,
            create_sr_backend("bicubic"),
            judge,
            tmp_path / "audit" / name,
            policy=AuditPolicy(tau=90.0, retries=1),
            hr_dir=inputs / "hr",
            executor=executor,
        )
        assert len(audited.decisions) == 3 and not audited.failed
    for step in ("gen", "select", "audit"):
        local = tree(tmp_path / step / "local")
        assert len(local) >= 9
        for name in NAMES[1:]:
            other = tree(tmp_path / step / name)
            assert other.keys() == local.keys(), (step, name)
            differing = [k for k in local if local[k] != other[k]]
            assert not differing, (step, name, differing)


def test_score_records_are_the_same_in_order_with_error_records(
    executors: dict[str, Executor], inputs: Path, tmp_path: Path
) -> None:
    photos = [q8(imresize(bundled_photo(p, size=64), 0.5)) for p in PHOTOS]
    paths, lrs = [], []
    for i in range(30):
        image = photos[i % 3]
        path = tmp_path / f"c{i:02d}.png"
        save_png(path, q8(imresize(imresize(image, 0.5), 2.0)) if i % 2 else image)
        paths.append(path)
        lrs.append(inputs / "lr" / f"{PHOTOS[i % 3]}.png")
    (tmp_path / "c07.png").write_text("not a png")  # an unreadable candidate: an error record
    judge = create_judge("trust")
    records = {
        name: [r.to_dict() for r in iter_score_files(paths, judge, lr_paths=lrs, executor=executor)]
        for name, executor in executors.items()
    }
    assert len(records["local"]) == 30 and "not an image" in records["local"][7]["error"]
    assert records["local"][7]["abstained"] and not records["local"][8]["abstained"]
    for name in NAMES[1:]:
        assert records[name] == records["local"], name


def test_the_score_command_runs_on_ray(inputs: Path, tmp_path: Path, executors: dict[str, Executor]) -> None:
    from typer.testing import CliRunner

    from srjudge.cli.main import app

    runner = CliRunner()
    outputs = {}
    for name in ("local", "ray:workers=2"):
        out = tmp_path / f"{name}.json"
        args = [
            "score",
            str(inputs / "hr"),
            "-j",
            "ssim",
            "--hr",
            str(inputs / "hr"),
            "-f",
            "json",
            "-o",
            str(out),
        ]
        result = runner.invoke(app, [*args, "--executor", name])
        assert result.exit_code == 0, result.output
        outputs[name] = out.read_bytes()
        if name != "local":
            assert "executor ray:workers=2: 3 items on 2 worker(s)" in result.output
    assert outputs["ray:workers=2"] == outputs["local"]
    streamed = tmp_path / "streamed.jsonl"
    args = [
        "score",
        str(inputs / "hr"),
        "-j",
        "ssim",
        "--hr",
        str(inputs / "hr"),
        "-f",
        "jsonl",
        "-o",
        str(streamed),
    ]
    result = runner.invoke(app, [*args, "-x", "ray:workers=2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in streamed.read_text().splitlines()]
    assert lines == json.loads(outputs["local"])["records"]
    assert "mean over 3 images" in result.output


def test_bench_score_files_are_the_same(executors: dict[str, Executor], tmp_path: Path) -> None:
    data = load_dataset(make_synthetic(tmp_path / "data", "mos", n_photos=2, levels=3))
    judges = [create_judge("trust"), create_judge("ssim")]
    tables = {}
    for name, executor in executors.items():
        out = tmp_path / name
        run_bench(data, judges, out, n_boot=20, plots=False, executor=executor)
        tables[name] = without_columns((out / "table.csv").read_text(), {"seconds", "images_per_s"})
        assert tree(out / "scores") == tree(tmp_path / "local" / "scores"), name
    assert tables["processes:2"] == tables["local"] == tables["ray:workers=2"]


def test_evolve_votes_are_the_same(executors: dict[str, Executor], inputs: Path, tmp_path: Path) -> None:
    from srjudge.train.evolve import EvolveConfig, vote_round

    images = tmp_path / "sets"
    generate_folder(
        sorted((inputs / "lr").glob("*.png")),
        [create_sr_backend(s) for s in ("bicubic", "lanczos", "classical:nearest")],
        images,
    )
    config = EvolveConfig(base_model="unused", images=str(images), samples=1, temperature=0.0, max_pairs=None)
    files = {}
    for name, executor in executors.items():
        out = tmp_path / "evolve" / name
        run_config = EvolveConfig(**{**config.__dict__, "out": str(out)})
        run_on = None if name == "local" else executor
        result = vote_round(run_config, 1, voter="trust", executor=run_on)
        assert result.summary.pairs == 9
        files[name] = (out / "round-1" / "pseudo_labels.jsonl").read_bytes()
    assert files["processes:2"] == files["local"] == files["ray:workers=2"]


def test_a_killed_ray_worker_loses_and_duplicates_nothing(
    executors: dict[str, Executor], inputs: Path, tmp_path: Path
) -> None:
    judge = create_judge("trust")
    lr = str(inputs / "lr" / "chelsea.png")
    candidate = tmp_path / "c.png"
    save_png(candidate, imresize(bundled_photo("chelsea", size=64), 1.0))
    items = [ScoreItem(str(candidate), lr) for _ in range(150)]
    work = ScoreWork(judge_handle(judge))
    expected = next(create_executor("local").map(work, items[:1])).unwrap().to_dict()
    executor = executors["ray:workers=2"]
    seen: list[int] = []
    killed = None
    for outcome in executor.map(work, items):
        seen.append(outcome.index)
        assert outcome.ok, outcome.error
        assert outcome.unwrap().to_dict() == expected
        if killed is None and len(seen) == 10:
            killed = int(outcome.worker.rsplit(":", 1)[1])
            os.kill(killed, signal.SIGKILL)
    stats = executor.last_stats
    assert seen == list(range(150))  # each item once, in order
    assert stats is not None and stats.workers_lost == 1 and stats.retried >= 1
    assert len(stats.per_worker) == 3  # the two first workers, then the one that replaced the killed one
    after = list(executor.map(work, items[:8]))  # the next job runs on the live workers
    assert all(o.ok for o in after) and not any(o.worker.endswith(f":{killed}") for o in after)


def test_a_run_stopped_on_ray_resumes_on_processes(
    executors: dict[str, Executor], inputs: Path, tmp_path: Path
) -> None:
    lr_paths = sorted((inputs / "lr").glob("*.png"))
    generate_folder(
        lr_paths, [create_sr_backend("bicubic"), create_sr_backend("classical:nearest")], tmp_path / "gen"
    )
    items = items_from_folder(tmp_path / "gen")
    judge = create_judge("trust")
    select_items(items, judge, tmp_path / "local", executor=executors["local"])
    first = select_items(items[:2], judge, tmp_path / "resumed", executor=executors["ray:workers=2"])
    (tmp_path / "resumed" / items[1].name / "selection.json").unlink()  # the crash hit this record
    again = select_items(items, judge, tmp_path / "resumed", executor=executors["processes:2"])
    assert first.done == [items[0].name, items[1].name]
    assert again.skipped == [items[0].name] and again.done == [items[1].name, items[2].name]
    local, resumed = tree(tmp_path / "local"), tree(tmp_path / "resumed")
    assert resumed.keys() == local.keys()
    assert all(resumed[k] == local[k] for k in local if k != "selections.csv")
    local_rows = list(csv.reader(io.StringIO(local["selections.csv"].decode())))
    resumed_rows = list(csv.reader(io.StringIO(resumed["selections.csv"].decode())))
    # the first run's two rows, then the re-run's: the item whose record was lost, and the last one
    assert resumed_rows == [local_rows[0], local_rows[1], local_rows[2], local_rows[2], local_rows[3]]


def test_testbed_run_gives_the_same_records_on_every_executor(
    executors: dict[str, Executor], tmp_path: Path
) -> None:
    """Deterministic backends: candidates, referee readings, picks and measures are the same files.
    The stochastic diffusion backend: the same candidates (keys and seeds), images equal up to float
    rounding (torch's CPU convolutions round differently with other thread counts)."""
    from srjudge.images.io import load_image
    from srjudge.testbed.build import build_testbed
    from srjudge.testbed.experiment import run_experiment
    from srjudge.testbed.items import TestbedConfig
    from srjudge.testbed.results import ExperimentConfig

    testbed = tmp_path / "tb"
    build_testbed(
        TestbedConfig(seed=3, classes="38OB", splits=("test",), severities=(3,), sklearn_limit=2), testbed
    )
    judges = ("lr-psnr", "readout:classifier", "trust")
    config = ExperimentConfig(
        judges=judges, backends=("bicubic", "lanczos"), limit=6, n_boot=20, batch=4, baselines=False
    )
    stochastic = ExperimentConfig(
        judges=("lr-psnr",), backends=("diffusion",), samples=2, steps=2, limit=3, n_boot=0, batch=4,
        baselines=False,
    )  # fmt: skip
    rows = {}
    for name, executor in executors.items():
        result = run_experiment(testbed, config, tmp_path / name, executor=executor)
        rows[name] = [m.to_row() for m in result.rows]
        run_experiment(testbed, stochastic, tmp_path / "diffusion" / name, executor=executor)
    local = tree(tmp_path / "local")
    assert {k.split("/")[0] for k in local} == {"candidates", "picks", "readings.jsonl"}
    for name in NAMES[1:]:
        other = tree(tmp_path / name)
        assert other.keys() == local.keys(), name
        picks = [k for k in local if k.startswith("picks/")]
        for key in local.keys() - set(picks):
            assert other[key] == local[key], (name, key)
        for key in picks:  # each pick row records the judge's own time: compare everything else
            assert _rows_without_time(other[key]) == _rows_without_time(local[key]), (name, key)
        assert rows[name] == rows["local"], name
        made = sorted((tmp_path / "diffusion" / "local" / "candidates").rglob("*.png"))
        assert len(made) == 6
        for path in made:
            twin = tmp_path / "diffusion" / name / path.relative_to(tmp_path / "diffusion" / "local")
            index = path.parent / "candidates.json"
            keys = [e["key"] for e in json.loads(index.read_text())["entries"]]
            twin_keys = [
                e["key"] for e in json.loads((twin.parent / "candidates.json").read_text())["entries"]
            ]
            assert twin_keys == keys, name
            assert float(abs(load_image(twin) - load_image(path)).mean()) < 0.02, (name, path.name)


def _rows_without_time(text: bytes) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in text.decode().splitlines()[1:]]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]
