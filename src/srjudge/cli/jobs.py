"""The main-job commands: ``generate`` candidates, ``select`` the trustworthy one, ``audit`` a pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srjudge.cli.common import _executor, _exit_if_failed, _progress_task, app, err, out
from srjudge.cli.options import EXECUTOR, FUSE, JUDGE, OUT_DIR, SAMPLES, SCALE, TOP_K
from srjudge.errors import SrjudgeError


@app.command("generate")
def generate_cmd(
    lr: Annotated[list[str], typer.Argument(help="LR images: files, folders or glob patterns.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (one sub-folder per LR input).")
    ],
    backend: Annotated[
        list[str],
        typer.Option(
            "--backend", "-b", help="SR backend spec; repeat for several (bicubic, realesrgan, ...)."
        ),
    ],
    samples: Annotated[int, SAMPLES] = 1,
    seed: Annotated[int, typer.Option("--seed", help="First seed; samples use seed, seed+1, ...")] = 0,
    scale: Annotated[int, SCALE] = 4,
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Make SR candidates for each LR input, with a manifest of every setting and seed."""
    from srjudge.images.io import expand_image_paths
    from srjudge.sr.base import create_sr_backend
    from srjudge.sr.generate import generate_folder

    paths = expand_image_paths(lr)
    backends = [create_sr_backend(spec) for spec in backend]
    failed: list[tuple[str, str]] = []
    with _executor(executor) as pool, _progress_task("generating", total=len(paths)) as update:
        manifests = generate_folder(
            paths,
            backends,
            out_dir,
            scale=scale,
            samples=samples,
            seed=seed,
            progress=lambda done, total, name: update(done),
            executor=pool,
            failed=failed,
        )
    count = sum(len(v) for v in manifests.values())
    err.print(f"{count} candidates for {len(manifests)} LR input(s) in {out_dir} (manifest.json per input)")
    _exit_if_failed(failed)


@app.command("select")
def select_cmd(
    paths: Annotated[
        list[str] | None, typer.Argument(help="LR image then its candidates (single mode).")
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option("--folder", help="Folder with one sub-folder per LR input (lr.png + candidates)."),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="CSV/JSONL: item, lr, candidate[, hr].")
    ] = None,
    judge: Annotated[str, JUDGE] = "trust",
    top_k: Annotated[int, TOP_K] = 3,
    fuse: Annotated[str, FUSE] = "median",
    hr: Annotated[
        Path | None, typer.Option("--hr", help="HR reference (single mode; validation only).")
    ] = None,
    out_dir: Annotated[Path, OUT_DIR] = Path("srjudge-out/select"),
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Pick the most trustworthy candidate, fuse the top k, and validate with TWS.

    --executor runs the items of --folder/--manifest in parallel (one LR input per task)."""
    from srjudge.images.io import expand_image_paths, load_image
    from srjudge.judges import create_judge
    from srjudge.select.folder import items_from_folder, items_from_manifest, select_items, write_selection
    from srjudge.select.selection import select_best

    the_judge = create_judge(judge)
    if folder is not None or manifest is not None:
        if paths:
            raise SrjudgeError("Give either LR and candidate paths, or --folder/--manifest, not both.")
        items = items_from_folder(folder) if folder is not None else items_from_manifest(manifest)  # type: ignore[arg-type]
        with (
            _executor(executor) as pool,
            _progress_task(f"selecting with {the_judge.spec}", total=len(items)) as update,
        ):
            summary = select_items(
                items,
                the_judge,
                out_dir,
                top_k=top_k,
                fuse_method=fuse,
                progress=lambda done, total, name: update(done),
                executor=pool,
            )
        err.print(
            f"{len(summary.done)} selected, {len(summary.skipped)} already done (resumed), "
            f"{len(summary.failed)} failed; results in {out_dir / 'selections.csv'}"
        )
        for name, chosen in list(summary.chosen.items())[:20]:
            out.print(f"{name}: {chosen}")
        if len(summary.chosen) > 20:
            out.print(f"... and {len(summary.chosen) - 20} more in {out_dir / 'selections.csv'}")
        _exit_if_failed(summary.failed)
        return
    if not paths or len(paths) < 2:
        raise SrjudgeError("select needs the LR image followed by its candidates (or --folder / --manifest).")
    if executor != "local":
        raise SrjudgeError("--executor runs the items of --folder or --manifest; one LR input runs here.")
    lr_path = Path(paths[0])
    candidates = expand_image_paths(paths[1:])
    images = [load_image(p) for p in candidates]
    selection = select_best(
        images,
        [str(p) for p in candidates],
        the_judge,
        lr=load_image(lr_path),
        hr=load_image(hr) if hr else None,
        top_k=top_k,
        fuse_method=fuse,
        lr_name=str(lr_path),
        hr_name=str(hr) if hr else None,
    )
    write_selection(out_dir, selection, images, lr=lr_path)
    out.print(
        f"chosen: {candidates[selection.chosen]} (TWS {selection.tws_candidates[selection.chosen]:.1f}); "
        f"fused top {len(selection.top_k)} by {fuse}: TWS {selection.tws_fused:.1f} (0-100)"
    )
    why = selection.result.ranking.why_first()
    if why:
        out.print(f"why it beat the runner-up: {why}")
    out.print(f"wrote {out_dir / 'selection.json'}, chosen.png, fused.png")


@app.command("audit")
def audit_cmd(
    lr_dir: Annotated[list[str], typer.Argument(help="LR inputs: a folder, files or glob patterns.")],
    sr: Annotated[
        str, typer.Option("--sr", help="SR backend spec (bicubic, realesrgan, esrgan:/path.pth, ...).")
    ],
    judge: Annotated[str, JUDGE] = "trust",
    tau: Annotated[float, typer.Option("--tau", help="Accept when the score reaches tau (0-100).")] = 80.0,
    retries: Annotated[int, typer.Option("--retries", help="At most this many bounded-knob retries.")] = 1,
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence", help="Below this judge confidence the baseline is accepted unchanged."
        ),
    ] = 0.5,
    hr_dir: Annotated[
        Path | None, typer.Option("--hr", help="Folder of HR references (same file stems).")
    ] = None,
    scale: Annotated[int, SCALE] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the SR runs.")] = 0,
    out_dir: Annotated[Path, OUT_DIR] = Path("srjudge-out/audit"),
    executor: Annotated[str, EXECUTOR] = "local",
) -> None:
    """Gatekeeper: run SR, judge, retry with one bounded knob, accept or reject, and record why."""
    from srjudge.audit.gate import AuditPolicy
    from srjudge.audit.run import audit_folder
    from srjudge.images.io import expand_image_paths
    from srjudge.judges import create_judge
    from srjudge.sr.base import create_sr_backend

    paths = expand_image_paths(lr_dir)
    try:
        policy = AuditPolicy(tau=tau, retries=retries, min_confidence=min_confidence)
    except ValueError as exc:
        raise SrjudgeError(str(exc)) from None
    backend = create_sr_backend(sr)
    the_judge = create_judge(judge)
    with (
        _executor(executor) as pool,
        _progress_task(f"auditing {backend.spec} with {the_judge.spec}", total=len(paths)) as update,
    ):
        summary = audit_folder(
            paths,
            backend,
            the_judge,
            out_dir,
            scale=scale,
            policy=policy,
            hr_dir=hr_dir,
            seed=seed,
            progress=lambda done, total, name: update(done),
            executor=pool,
        )
    counts: dict[str, int] = {}
    for decision in summary.decisions.values():
        counts[decision] = counts.get(decision, 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"
    err.print(
        f"{len(summary.decisions)} audited ({tally}), {len(summary.skipped)} already done, "
        f"{len(summary.failed)} failed; see {out_dir / 'audit.csv'}"
    )
    _exit_if_failed(summary.failed)
