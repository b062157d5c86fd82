"""``srjudge run``: generate -> select -> audit -> report as one resumable job in one run folder.

Each step reads the records of the one before (:mod:`srjudge.run.layout`): ``select`` reads the
candidates and their manifest (backend, settings and seed travel into its records), ``audit`` gates
what ``select`` chose (accept, a bounded retry through the backend recorded in the manifest, or
reject) instead of running SR again, and ``report`` is built from the records alone
(:func:`build_report`, also ``srjudge report RUN``). A step skips work already recorded with the same
settings, so a killed run, re-run, ends with the same records as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srjudge import atomic
from srjudge.audit.gate import AuditPolicy, audit_image
from srjudge.audit.run import panel
from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.io import expand_image_paths, load_image, save_png
from srjudge.judges import create_judge
from srjudge.judges.base import Judge
from srjudge.provenance import file_sha256
from srjudge.report import ReportItem
from srjudge.run.layout import RUN_AUDIT_SCHEMA, RUN_SCHEMA, RunLayout, read_json
from srjudge.select.files import pair_references
from srjudge.select.folder import Item, manifest_candidates, select_items
from srjudge.sr.base import create_sr_backend
from srjudge.sr.generate import generate_folder

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunConfig:
    """What ``srjudge run`` does; the YAML config has the same keys as the command's flags."""

    inputs: tuple[str, ...] = ()
    """LR images, folders or globs."""
    out: str = "srjudge-out/run"
    backends: tuple[str, ...] = ("bicubic", "lanczos", "realesrgan")
    judge: str = "trust"
    scale: int = 4
    samples: int = 1
    seed: int = 0
    top_k: int = 3
    fuse: str = "median"
    tau: float = 65.0
    retries: int = 1
    hr: str | None = None
    """Folder of HR references paired by name: shown in the report as a check the judge never sees."""

    def __post_init__(self) -> None:
        if not self.inputs:
            raise SpecError("run: give the LR inputs (a folder, files or globs).")
        if not self.backends:
            raise SpecError("run: give at least one SR backend.")
        if self.scale < 1 or self.samples < 1 or self.top_k < 1 or self.retries < 0:
            raise SpecError(
                f"run: scale, samples and top_k must be >= 1 and retries >= 0; got scale={self.scale}, "
                f"samples={self.samples}, top_k={self.top_k}, retries={self.retries}."
            )
        if not 0.0 <= self.tau <= 100.0:
            raise SpecError(f"run: tau is a 0-100 score threshold; got {self.tau}.")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def load_run_config(path: Path, **overrides: Any) -> RunConfig:
    """A YAML config file (keys as the flags); ``overrides`` (flags given) win over the file."""
    from srjudge.config import load_config_yaml  # pyyaml and the strict dataclass reader

    @dataclass(frozen=True)
    class _File:  # every field optional, so that a file may hold only what it changes
        inputs: list[str] = field(default_factory=list)
        out: str | None = None
        backends: list[str] = field(default_factory=list)
        judge: str | None = None
        scale: int | None = None
        samples: int | None = None
        seed: int | None = None
        top_k: int | None = None
        fuse: str | None = None
        tau: float | None = None
        retries: int | None = None
        hr: str | None = None

    loaded = load_config_yaml(_File, path)
    values = {k: v for k, v in dataclasses.asdict(loaded).items() if v not in (None, [])}
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("inputs", "backends"):
        if key in values:
            values[key] = tuple(values[key])
    return RunConfig(**values)


@dataclass
class RunSummary:
    run_dir: Path
    items: list[str] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    report: Path | None = None


def run_job(config: RunConfig, *, log: Log | None = None, progress: Progress | None = None) -> RunSummary:
    """Run every step; each resumes from its records. Bad items are reported, the run goes on."""
    say = log or (lambda _: None)
    layout = RunLayout(Path(config.out))
    layout.root.mkdir(parents=True, exist_ok=True)
    previous = read_json(layout.settings)
    if previous is not None and previous.get("config", {}).get("scale") not in (None, config.scale):
        raise SrjudgeError(
            f"{layout.root} holds a x{previous['config']['scale']} run; "
            f"use another --out for x{config.scale}."
        )
    atomic.write_json(layout.settings, {"schema": RUN_SCHEMA, "config": config.to_dict()})
    lr_paths = expand_image_paths(list(config.inputs))
    names = [p.stem for p in lr_paths]  # generate refuses inputs that share a name
    judge = create_judge(config.judge)
    backends = [create_sr_backend(spec) for spec in config.backends]
    summary = RunSummary(layout.root, items=names)

    say(f"generate: {len(lr_paths)} LR inputs x {len(backends)} backends -> {layout.candidates}")
    generate_folder(
        lr_paths,
        backends,
        layout.candidates,
        scale=config.scale,
        samples=config.samples,
        seed=config.seed,
        progress=(lambda n, total, _: progress("generate", n, total)) if progress else None,
    )

    say(f"select: {judge.spec}, top {config.top_k} fused ({config.fuse}) -> {layout.selection}")
    items = [_item(layout, name) for name in names]
    selected = select_items(
        items,
        judge,
        layout.selection,
        top_k=config.top_k,
        fuse_method=config.fuse,
        progress=(lambda n, total, _: progress("select", n, total)) if progress else None,
    )
    summary.chosen = dict(selected.chosen)
    summary.failed.extend(selected.failed)

    say(f"audit: the chosen outputs, tau {config.tau:g}, {config.retries} bounded retries -> {layout.audit}")
    policy = AuditPolicy(tau=config.tau, retries=config.retries)
    for n, name in enumerate(names, 1):
        if name in selected.chosen:
            try:
                summary.decisions[name] = _audit_item(layout, name, judge, policy, config)
            except SrjudgeError as exc:
                summary.failed.append((name, f"audit: {exc}"))
        if progress:
            progress("audit", n, len(names))

    summary.report = build_report(layout.root)
    say(f"report: {summary.report}")
    return summary


def _item(layout: RunLayout, name: str) -> Item:
    """The candidates of one input, in the order of its manifest (which ``select`` records carry)."""
    candidates = manifest_candidates(layout.candidates / name)
    if not candidates:
        raise SrjudgeError(f"{layout.manifest(name)}: missing or damaged; re-run to regenerate it.")
    return Item(name, layout.lr(name), tuple(candidates))


def _audit_item(layout: RunLayout, name: str, judge: Judge, policy: AuditPolicy, config: RunConfig) -> str:
    """Gate the chosen candidate; resume when the same choice was audited with the same settings."""
    selection = read_json(layout.selection_record(name))
    manifest = read_json(layout.manifest(name))
    if selection is None or manifest is None:
        raise SrjudgeError(f"no selection or manifest recorded for {name}")
    chosen = Path(selection["chosen"]["path"])
    entry = next((c for c in manifest["candidates"] if Path(c["file"]).name == chosen.name), None)
    if entry is None:
        raise SrjudgeError(f"{chosen.name} is not in {layout.manifest(name)}")
    fingerprint = {
        "judge": judge.spec,
        "config_hash": judge.provenance().config_hash,
        "tau": policy.tau,
        "retries": policy.retries,
        "chosen": chosen.name,
        "chosen_sha256": file_sha256(chosen),
        "backend": entry["backend"],
    }
    record = read_json(layout.audit_record(name))
    if record is not None and record.get("fingerprint") == fingerprint:
        return str(record["decision"]["decision"])
    lr = load_image(layout.lr(name))
    decision = audit_image(
        lr,
        create_sr_backend(entry["backend"]),
        judge,
        scale=config.scale,
        policy=policy,
        seed=entry.get("seed") or 0,
        baseline=load_image(chosen),
    )
    folder = layout.audit / name
    save_png(folder / "final.png", decision.final.image)
    save_png(folder / "panel.png", panel(lr, decision))
    atomic.write_json(
        layout.audit_record(name),
        {
            "schema": RUN_AUDIT_SCHEMA,
            "item": name,
            "chosen": chosen.name,
            "backend": entry["backend"],
            "fingerprint": fingerprint,
            "decision": decision.to_dict(),
        },
    )
    return decision.decision


def build_report(run_dir: Path, *, hr_dir: Path | None = None, note: str = "") -> Path:
    """(Re)build ``RUN/report/index.html`` from the run's records alone."""
    from srjudge.report import ReportData, write_report

    layout = RunLayout(Path(run_dir))
    settings = read_json(layout.settings)
    if settings is None:
        raise SrjudgeError(f"{layout.root}: not a run folder (no run.json); make one with `srjudge run`.")
    config = settings.get("config", {})
    hr_root = hr_dir or (Path(config["hr"]) if config.get("hr") else None)
    items: list[ReportItem] = []
    judge = str(config.get("judge", "?"))
    for name in layout.item_names():
        selection = read_json(layout.selection_record(name))
        if selection is None:
            continue  # not selected yet: nothing to decide from
        items.append(_report_item(layout, name, selection, read_json(layout.audit_record(name)), hr_root))
    report = ReportData(
        title="srjudge run: which super-resolution output to trust",
        judge=judge,
        items=tuple(items),
        settings={
            "run folder": str(layout.root),
            "judge": judge,
            "SR backends": ", ".join(config.get("backends", [])),
            "scale": f"x{config.get('scale', '?')}",
            "fusion": f"{config.get('fuse', '?')} of the top {config.get('top_k', '?')}",
            "audit": f"tau {config.get('tau', '?')}, retries {config.get('retries', '?')}",
        },
        note="Built from the run's records; an HR image, where shown, is a check the judge never saw."
        + (f" {note}" if note else ""),
    )
    return write_report(layout.report, report)


def _report_item(
    layout: RunLayout,
    name: str,
    selection: dict[str, Any],
    audit: dict[str, Any] | None,
    hr_root: Path | None,
) -> ReportItem:
    from srjudge.report import AuditRow, AuditSection, CandidateEntry, FusedEntry

    tws = selection.get("validation", {}).get("candidates_tws", {})
    candidates = [
        CandidateEntry(
            name=Path(c["path"]).name,
            image=Path(c["path"]),
            score=c["score"] if isinstance(c["score"], int | float) else None,
            rank=c["rank"],
            tags=tuple(c["tags"]),
            rationale=c["rationale"],
            abstained=bool(c["abstained"]),
            abstain_reason=c.get("abstain_reason"),
            tws=tws.get(c["path"]),
        )
        for c in selection["ranking"]["candidates"]
    ]
    section = None
    if audit is not None:
        d = audit["decision"]
        rows = tuple(
            AuditRow(
                variant="chosen" if step.get("knob") is None else "+judge",
                knob=step.get("knob") or "-",
                value=step.get("value"),
                score=step.get("score"),
                tags=tuple(step.get("tags", [])),
                decision=d["decision"] if index == len(d["steps"]) - 1 else "",
                reason=d["reason"] if index == len(d["steps"]) - 1 else step.get("rationale", ""),
            )
            for index, step in enumerate(d["steps"])
        )
        panels = layout.audit / name / "panel.png"
        section = AuditSection(
            decision=d["decision"],
            rows=rows,
            panels=panels if panels.is_file() else None,
            note=f"{audit['chosen']} (from {audit['backend']}) gated by the judge",
        )
    hr = None
    if hr_root is not None:
        paired = pair_references([Path(name + ".png")], hr_root, what="HR", option="hr")
        hr = paired[0]
    fused = layout.selection / name / "fused.png"
    why = selection.get("why") or ""
    ranked = [c for c in candidates if c.rank is not None]
    if why and len(ranked) > 1:
        why += f" (over {ranked[1].name})"
    return ReportItem(
        name=name,
        lr=layout.lr(name),
        hr=hr,
        candidates=tuple(candidates),
        chosen=Path(selection["chosen"]["path"]).name,
        why=why,
        fused=FusedEntry(
            image=fused,
            tws=selection.get("validation", {}).get("fused_tws"),
            members=tuple(Path(t["path"]).name for t in selection.get("top_k", [])),
            method=str(selection.get("fuse", "")),
        )
        if fused.is_file()
        else None,
        audit=section,
    )
