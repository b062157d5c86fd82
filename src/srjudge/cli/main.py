"""The ``srjudge`` command: maps arguments to library calls; errors print as one clear line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from srjudge.cli.common import (
    RankFormat,
    ScoreFormat,
    _emit,
    _executor,
    _exit_if_failed,
    _fmt,
    _progress_task,
    app,
    err,
    out,
)
from srjudge.cli.options import EXECUTOR, FORMAT, JUDGE, MAX_PIXELS, OUT_DIR, OUT_FILE, RECURSIVE
from srjudge.errors import SrjudgeError
from srjudge.judges.base import Judge
from srjudge.registry import Entry


def _print_version(value: bool) -> None:
    if value:
        import srjudge

        out.print(f"srjudge {srjudge.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Judge super-resolution outputs: metrics, a trustworthiness score, VLM judges, benches."""


@app.command("judges")
def judges_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List every registry: judges, metrics, SR backends, VLM backends, VLM protocols and readers."""
    from srjudge.judges import list_judges
    from srjudge.judges.vlm.protocols import PROTOCOLS
    from srjudge.metrics import METRICS
    from srjudge.readers import READERS
    from srjudge.sr.base import SR_BACKENDS
    from srjudge.vlm.backends import BACKENDS

    judges = list_judges()
    metrics = METRICS.entries()
    others = (
        ("sr_backends", "SR backends (generate --backends)", SR_BACKENDS.entries()),
        ("vlm_backends", "VLM backends (vlm:BACKEND,...)", BACKENDS.entries()),
        ("protocols", "VLM protocols (vlm:...,protocol=NAME)", PROTOCOLS.entries()),
        ("readers", "Readers (readout:READER)", READERS.entries()),
    )
    if as_json:
        payload: dict[str, Any] = {
            "judges": [{**j.summary(), "needs_lr": j.needs_lr, "needs_hr": j.needs_hr} for j in judges],
            "metrics": [{**m.info.to_dict(), **m.summary()} for m in metrics],
        }
        payload.update({key: [e.summary() for e in entries] for key, _, entries in others})
        _emit(json.dumps(payload, indent=2), None)
        return
    table = Table(title="Judges (every metric below is a judge too)")
    for col in ("name", "needs", "options", "description"):
        table.add_column(col)
    for j in judges:
        needs = ", ".join(n for n, flag in (("LR", j.needs_lr), ("HR", j.needs_hr)) if flag) or "-"
        table.add_row(j.name, needs, _options_cell(j), j.description)
    out.print(table)
    table = Table(title="Metrics")
    for col in ("name", "better", "needs", "range", "options", "description"):
        table.add_column(col)
    for entry in metrics:
        m = entry.info
        requirements = [
            n for n, flag in (("HR", m.needs_hr), ("LR", m.needs_lr), ("weights", m.needs_weights)) if flag
        ]
        rng = f"{m.value_range[0]:g}..{m.value_range[1]:g}" if m.value_range else "-"
        better = "higher" if m.higher_is_better else "lower"
        table.add_row(
            m.name, better, ", ".join(requirements) or "-", rng, _options_cell(entry), m.description
        )
    out.print(table)
    for _, title, entries in others:
        table = Table(title=title)
        for col in ("name", "options", "description"):
            table.add_column(col)
        for e in entries:
            table.add_row(e.name, _options_cell(e), e.description)
        out.print(table)


def _options_cell(entry: Entry) -> str:
    return "\n".join(entry.option_lines()) or "-"


@app.command("score")
def score_cmd(
    images: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    judge: Annotated[
        str, typer.Option("--judge", "-j", help="Judge or metric spec, e.g. niqe, trust.")
    ] = "niqe",
    lr: Annotated[
        Path | None,
        typer.Option("--lr", help="The LR input: one file for every image, or a folder paired by name."),
    ] = None,
    hr: Annotated[
        Path | None,
        typer.Option("--hr", help="The HR reference: a folder paired by name (one file: --hr-for-all)."),
    ] = None,
    hr_for_all: Annotated[
        bool, typer.Option("--hr-for-all", help="Compare every image with the one --hr file.")
    ] = False,
    lr_pattern: Annotated[
        str, typer.Option("--lr-pattern", help="LR name from the image's stem, e.g. '{stem}x4'.")
    ] = "{stem}",
    hr_pattern: Annotated[
        str, typer.Option("--hr-pattern", help="HR name from the image's stem, e.g. '{stem}_HR'.")
    ] = "{stem}",
    fmt: Annotated[ScoreFormat, FORMAT] = ScoreFormat.table,
    out_file: Annotated[Path | None, OUT_FILE] = None,
    recursive: Annotated[bool, RECURSIVE] = False,
    max_pixels: Annotated[int, MAX_PIXELS] = 100_000_000,
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Score images one by one: one record per image (with its paired LR/HR) and the mean.

    --format jsonl streams one record per line as the images are scored (the mean goes to stderr).
    """
    from srjudge.images.io import expand_image_paths
    from srjudge.judges import create_judge
    from srjudge.select.files import mean_score, pair_references, score_files

    paths = expand_image_paths(images, recursive=recursive)
    the_judge = create_judge(judge)
    # One LR file for several images is the usual case (candidates of one input); one HR is not.
    lr_paths = pair_references(paths, lr, what="LR", option="--lr", pattern=lr_pattern, one_for_all=True)
    hr_paths = pair_references(
        paths, hr, what="HR", option="--hr", pattern=hr_pattern, one_for_all=hr_for_all
    )
    if fmt is ScoreFormat.jsonl:
        _score_jsonl(paths, the_judge, lr_paths, hr_paths, max_pixels, executor, out_file)
        return
    with _executor(executor) as pool, _progress_task(f"scoring with {the_judge.spec}", len(paths)) as update:
        records = score_files(
            paths,
            the_judge,
            lr_paths=lr_paths,
            hr_paths=hr_paths,
            max_pixels=max_pixels,
            progress=lambda done, total: update(done),
            executor=pool,
        )
        local = pool.spec.is_local
    _print_summary(the_judge, None if local else _Accounting.of(r.verdict for r in records))
    mean = mean_score(records)
    failed = [(r.path, r.error) for r in records if r.error is not None]
    if records and not mean["scored"]:  # nothing could be judged: a setting is missing, not an image
        if len(failed) == len(records):
            raise SrjudgeError(f"no image could be scored: {failed[0][0]}: {failed[0][1]}")
        reason = records[0].verdict.abstain_reason or "no reason given"
        raise SrjudgeError(f"no image could be scored with {the_judge.spec}: {reason.split(': ', 1)[-1]}")
    _write_scores(records, mean, the_judge.spec, fmt, out_file, paired=hr is not None and hr.is_dir())
    _exit_if_failed([(path, str(error).removeprefix(f"{path}: ")) for path, error in failed])


def _score_jsonl(
    paths: list[Path],
    judge: Judge,
    lr_paths: list[Path | None],
    hr_paths: list[Path | None],
    max_pixels: int,
    executor: str,
    out_file: Path | None,
) -> None:
    """``score --format jsonl``: each record written (and flushed) as it comes, in input order; memory
    stays flat however many images there are."""
    import math
    import sys

    from srjudge.select.files import iter_score_files

    n = scored = finite = 0
    value_sum = score_sum = 0.0
    failed: list[tuple[str, str]] = []
    accounting = _Accounting()
    handle = out_file.open("w", encoding="utf-8") if out_file is not None else sys.stdout
    try:
        with _executor(executor) as pool, _progress_task(f"scoring with {judge.spec}", len(paths)) as update:
            stream = iter_score_files(
                paths, judge, lr_paths=lr_paths, hr_paths=hr_paths, max_pixels=max_pixels, executor=pool
            )
            for n, record in enumerate(stream, 1):
                handle.write(json.dumps(record.to_dict()) + "\n")
                handle.flush()
                verdict = record.verdict
                accounting.add(verdict)
                if not verdict.abstained and verdict.raw is not None:
                    scored += 1
                    score_sum += float(verdict.score or 0.0)
                    if math.isfinite(verdict.raw):
                        finite += 1
                        value_sum += verdict.raw
                if record.error is not None:
                    failed.append((record.path, record.error.removeprefix(f"{record.path}: ")))
                update(n)
            local = pool.spec.is_local
    finally:
        if out_file is not None:
            handle.close()
    _print_summary(judge, None if local else accounting)
    mean = {
        "n": n,
        "scored": scored,
        "abstained": n - scored,
        "mean_value": value_sum / finite if finite else None,
        "mean_score": score_sum / scored if scored else None,
        "infinite_values": scored - finite,
    }
    err.print(_mean_line(mean) + (f"; wrote {out_file}" if out_file else ""), highlight=False)
    _exit_if_failed(failed)


def _write_scores(
    records: list[Any],
    mean: dict[str, Any],
    judge: str,
    fmt: ScoreFormat,
    out_file: Path | None,
    paired: bool,
) -> None:
    """The records of ``score`` as JSON, CSV or a table with the mean."""
    if fmt is ScoreFormat.json:
        from srjudge.select.files import SCORES_SCHEMA

        payload = {
            "schema": SCORES_SCHEMA,
            "judge": judge,
            "mean": mean,
            "records": [r.to_dict() for r in records],
        }
        _emit(json.dumps(payload, indent=2), out_file)
    elif fmt is ScoreFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "judge", "value", "score", "tags", "abstained", "rationale", "lr", "hr"])
        for r in records:
            d = r.to_dict()
            verdict = [d["judge"], d["raw"], d["score"], ";".join(d["tags"]), d["abstained"], d["rationale"]]
            writer.writerow([r.path, *verdict, r.lr or "", r.hr or ""])
        _emit(buffer.getvalue(), out_file)
    else:
        table = Table(title=f"judge: {judge}")
        for col in ("path", *(["HR"] if paired else []), "value", "score", "tags"):
            table.add_column(col, overflow="fold")
        for r in records:
            d = r.to_dict()
            reason = f"abstained: {d['abstain_reason']}" if d["abstained"] else ", ".join(d["tags"]) or "-"
            row = [r.path, *([Path(r.hr).name if r.hr else "-"] if paired else [])]
            table.add_row(*row, _fmt(d["raw"]), _fmt(d["score"], 3), reason)
        summary = _mean_line(mean)
        if out_file:
            with out_file.open("w") as handle:
                console = Console(file=handle, width=160)
                console.print(table)
                console.print(summary)
            err.print(f"wrote {out_file}")
        else:
            out.print(table)
            out.print(summary)


def _mean_line(mean: dict[str, Any]) -> str:
    """pyiqa-style summary: the mean over the scored images, and what was left out."""
    if not mean["scored"]:
        return f"mean: none ({mean['abstained']} of {mean['n']} abstained)"
    value, score = _fmt(mean["mean_value"]), _fmt(mean["mean_score"], 3)
    text = f"mean over {mean['scored']} images: value {value}, score {score}"
    if mean["abstained"]:
        text += f" ({mean['abstained']} abstained)"
    if mean["infinite_values"]:
        text += f" ({mean['infinite_values']} infinite values left out of the mean value)"
    return text


@app.command("rank")
def rank_cmd(
    candidates: Annotated[
        list[str], typer.Argument(help="Candidate SR images of one LR input (files, folders, globs).")
    ],
    lr: Annotated[
        Path | None, typer.Option("--lr", help="The LR input the candidates were made from.")
    ] = None,
    hr: Annotated[Path | None, typer.Option("--hr", help="An HR reference, if one exists.")] = None,
    judge: Annotated[str, typer.Option("--judge", "-j", help="Judge or metric spec.")] = "trust",
    fmt: Annotated[RankFormat, FORMAT] = RankFormat.table,
    out_file: Annotated[Path | None, OUT_FILE] = None,
    max_pixels: Annotated[int, MAX_PIXELS] = 100_000_000,
) -> None:
    """Rank candidates of one LR input, best first (JSON schema srjudge.ranking/1)."""
    from srjudge.images.io import expand_image_paths
    from srjudge.judges import create_judge
    from srjudge.select.files import rank_files

    paths = expand_image_paths(candidates)
    the_judge = create_judge(judge)
    result = rank_files(paths, the_judge, lr_path=lr, hr_path=hr, max_pixels=max_pixels)
    _print_summary(the_judge)
    if fmt is RankFormat.json:
        _emit(json.dumps(result.to_dict(), indent=2), out_file)
        return
    table = Table(title=f"ranking by {result.ranking.judge}" + (f" (LR: {lr})" if lr else ""))
    for col in ("rank", "path", "score", "tags", "why"):
        table.add_column(col, overflow="fold")
    for c in result.to_dict()["candidates"]:
        why = f"abstained: {c['abstain_reason']}" if c["abstained"] else c["rationale"]
        table.add_row(str(c["rank"] or "-"), c["path"], _fmt(c["score"], 3), ", ".join(c["tags"]) or "-", why)
    out.print(table)
    why = result.ranking.why_first()
    if why:
        out.print(f"why #1 beat #2: {why}")


class _Accounting:
    """Calls, cache hits, tokens, latency and cost summed over verdicts (each carries its own)."""

    def __init__(self) -> None:
        self.totals: dict[str, float | None] = {}

    @classmethod
    def of(cls, verdicts: Any) -> _Accounting:
        made = cls()
        for verdict in verdicts:
            made.add(verdict)
        return made

    def add(self, verdict: Any) -> None:
        for key, value in verdict.accounting.items():
            before = self.totals.get(key, 0.0)
            self.totals[key] = None if value is None or before is None else before + value


def _print_summary(judge: Judge, workers: _Accounting | None = None) -> None:
    """Model-backed judges report calls, cache hits, tokens, latency and cost for the run (stderr).

    With an executor other than local the model calls happen in the workers: the summary is then the
    sum of the verdicts' own accounting (``workers``)."""
    if workers is None:
        summary = judge.summary()
    elif workers.totals:
        summary = {"judge": judge.spec, **workers.totals}
    else:
        summary = {}
    if summary:
        err.print("run summary: " + json.dumps(summary))


@app.command("serve")
def serve_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="Local folder of a transformers VLM.")],
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; keep 127.0.0.1 unless you set a token.")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port.")] = 8000,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")] = "cpu",
    dtype: Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16 or float16.")] = "auto",
    token_env: Annotated[
        str | None,
        typer.Option("--token-env", help="Environment variable holding a bearer token to require."),
    ] = None,
    max_body_mb: Annotated[
        int, typer.Option("--max-body-mb", help="Refuse larger request bodies (413).")
    ] = 32,
    max_prompt_chars: Annotated[
        int, typer.Option("--max-prompt-chars", help="Refuse longer prompts (413).")
    ] = 8000,
    max_model_calls: Annotated[
        int, typer.Option("--max-model-calls", help="Refuse judge requests needing more model calls (422).")
    ] = 256,
    max_image_mpixels: Annotated[
        float, typer.Option("--max-image-mpixels", help="Refuse larger images, checked on the header (413).")
    ] = 16.0,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option("--allowed-host", help="Accept this Host name too (repeat; default: loopback names)."),
    ] = None,
) -> None:
    """Serve a local VLM: OpenAI-compatible /v1/chat/completions and /judge/{score,compare,rank}."""
    import os

    import uvicorn

    from srjudge.serve.app import create_app
    from srjudge.vlm.backends import create_backend

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise SrjudgeError(f"--token-env {token_env}: that environment variable is not set or empty.")
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        err.print(
            f"[yellow]warning:[/] serving on {host} without a bearer token (--token-env): anyone who can "
            "reach this port can use the model."
        )
    backend = create_backend("hf", {"model": str(model), "device": device, "dtype": dtype})
    for name, value in (("--max-body-mb", max_body_mb), ("--max-prompt-chars", max_prompt_chars)):
        if value < 1:
            raise SrjudgeError(f"{name} {value}: give a positive number.")
    if max_model_calls < 1 or max_image_mpixels <= 0:
        raise SrjudgeError("--max-model-calls and --max-image-mpixels must be positive.")
    application = create_app(
        backend,
        token=token,
        max_body_bytes=max_body_mb * 1024 * 1024,
        max_prompt_chars=max_prompt_chars,
        max_model_calls=max_model_calls,
        max_image_pixels=int(max_image_mpixels * 1_000_000),
        allowed_hosts=allowed_host or None,
    )
    err.print(
        f"srjudge serve: {backend.identity()['model']} on http://{host}:{port} (OpenAPI schema at /docs)"
    )
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command("degrade")
def degrade_cmd(
    hr_dir: Annotated[list[str], typer.Argument(help="HR images: files, folders or glob patterns.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for LR images and records.")],
    pipeline: Annotated[
        str, typer.Option("--pipeline", "-p", help="realesrgan, face or bicubic.")
    ] = "realesrgan",
    scale: Annotated[int, typer.Option("--scale", "-s", help="Downscaling factor: 2, 3 or 4.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Base seed; each image derives its own.")] = 0,
    crop: Annotated[
        bool, typer.Option("--crop", help="Crop HR to a multiple of the scale (recorded).")
    ] = False,
    recursive: Annotated[bool, RECURSIVE] = False,
) -> None:
    """Synthesise LR inputs from HR images, with a JSON record per image and a run CSV."""
    from srjudge.degrade import degrade_folder
    from srjudge.images.io import expand_image_paths

    paths = expand_image_paths(hr_dir, recursive=recursive)
    roots = [Path(item) for item in hr_dir if Path(item).is_dir()]
    with _progress_task(f"degrading ({pipeline}, x{scale})", total=len(paths)) as update:
        summary = degrade_folder(
            paths,
            out_dir,
            pipeline=pipeline,
            scale=scale,
            seed=seed,
            crop=crop,
            progress=lambda done, total, item: update(done),
            root=roots[0] if len(roots) == 1 and recursive else None,
        )
    err.print(
        f"{summary.written} written, {summary.skipped} already done (resumed), {len(summary.failed)} failed; "
        f"records in {summary.csv_path}"
    )
    for item in summary.failed:
        err.print(f"[red]failed:[/] {item}")
    if summary.failed:
        raise typer.Exit(1)


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, OUT_DIR] = Path("srjudge-out/demo"),
    judge: Annotated[str, JUDGE] = "trust",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the degradations.")] = 0,
    faces: Annotated[
        bool,
        typer.Option(
            "--faces",
            help="Run the face demo instead: the face-SR paper's paired table (pure vs +judge per backend, "
            "with identity) and a face-swap decoy; needs the faces extra.",
        ),
    ] = False,
) -> None:
    """The main job (`srjudge run`) on bundled photos: moderate and heavy degradations, with a report."""
    from srjudge.demo import run_demo

    if faces:
        from srjudge.demo_faces import run_face_demo, table_markdown

        face_report = run_face_demo(out_dir, seed=seed, log=lambda m: err.print(m))
        out.print(table_markdown(face_report))
        out.print(f"Records: {out_dir / 'face_demo.json'}; panels: {out_dir / 'panels'}")
        return

    summary, report = run_demo(out_dir, judge_spec=judge, seed=seed, log=lambda m: err.print(m))
    for item in report["items"]:
        table = Table(title=f"{item['item']}: candidates ranked by {judge} (audit: {item['audit']})")
        for col in ("rank", "candidate", "score", "tags", "PSNR vs HR*", "SSIM vs HR*"):
            table.add_column(col, overflow="fold")
        for c in item["ranking"].get("candidates", []):
            name = Path(c["path"]).stem
            ref = item["reference"][name]
            table.add_row(
                str(c["rank"]),
                name,
                _fmt(c["score"], 3),
                ", ".join(c["tags"]) or "-",
                f"{ref['psnr']:.2f}",
                f"{ref['ssim']:.4f}",
            )
        out.print(table)
        if item["why"]:
            out.print(f"why #1 beat #2: {item['why']}")
    out.print("* the HR photo is a check the judge never sees.")
    out.print(f"Open the report: {summary.report}")
    out.print(f"Run folder: {summary.run_dir}; summary with PSNR/SSIM vs HR: {out_dir / 'demo.json'}")


def _os_message(exc: OSError) -> str:
    """One line naming the path and what to do (no traceback)."""
    where = exc.filename or ""
    hints = {
        IsADirectoryError: "it is a folder: give a file path, or another --out",
        NotADirectoryError: "a part of the path is a file, not a folder: choose another --out",
        FileExistsError: "it already exists: remove it or choose another --out",
        PermissionError: "no permission: choose a folder you can write to",
        FileNotFoundError: "no such file or folder: check the path",
    }
    hint = next((h for cls, h in hints.items() if isinstance(exc, cls)), exc.strerror or "")
    return f"{where}: {hint}" if where else f"{exc.strerror or exc}: {hint}"


def main() -> None:
    """Entry point: library errors become one line on stderr and exit status 2."""
    try:
        app()
    except SrjudgeError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(2) from None
    except OSError as exc:  # output paths: an existing folder or file in the way, no permission, a full disk
        err.print(f"[bold red]error:[/] {_os_message(exc)}", highlight=False)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None


import srjudge.cli.align_cmd  # noqa: E402  (registers align)
import srjudge.cli.bench_cmd  # noqa: E402  (registers bench)
import srjudge.cli.evolve_cmd  # noqa: E402  (registers evolve)
import srjudge.cli.fit_cmd  # noqa: E402  (registers fit)
import srjudge.cli.jobs  # noqa: E402  (registers generate, select, audit)
import srjudge.cli.reward_cmd  # noqa: E402  (registers reward)
import srjudge.cli.run_cmd  # noqa: E402  (registers run, report)
import srjudge.cli.testbed_cmd  # noqa: E402  (registers testbed)
import srjudge.cli.tune_cmd  # noqa: E402,F401  (registers tune)

if __name__ == "__main__":
    main()
