"""Auditing a folder of LR inputs: per-variant folders, panels, a run CSV and (with HR) a paired table.

Outputs in ``out_dir`` (the face-SR paper's artifacts):
- ``pure/<name>.png`` (SR only) and ``judge/<name>.png`` (after the gatekeeper: the accepted or
  best variant), ``panels/<name>.png`` (LR | pure | +judge with scores, tags and the decision);
- ``audit.csv``: one row per audited input with seed, knob and value, scores, tags, decision and
  reason, the input path and its SHA-256, the SHA-256 of the saved images and a ``fingerprint``
  (last column); appended and flushed per input;
- with HR references: ``metrics.csv`` (PSNR, SSIM, NIQE, and LPIPS when its weights are set via
  environment variables) for pure and +judge with deltas, one row appended and flushed as each
  input finishes, and ``metrics_summary.csv`` (rewritten atomically at the end) with the means per
  family over every input of the run, the resumed ones included.

Item names: an input's file stem. Inputs whose stems clash (``a/x.png`` and ``b/x.png``; compared
case-insensitively, as file systems may be) get names derived from their paths instead: the
fewest trailing parent folders that tell them apart, joined with ``-`` (``a-x`` and ``b-x``); when
only the extension differs it is appended (``x-png``, ``x-jpg``); a numeric suffix is the last
resort. See :func:`item_names`. HR references are looked up by the item name (``<hr>/a-x.png`` for
a renamed item: the shared stem would be ambiguous).

Resume: the ``fingerprint`` of a row is a hash of the settings (backend spec and settings, judge
spec and config hash, the policy's tau, retries, min_confidence and blocking tags, scale, seed) and
of the input file's SHA-256. A re-run skips an input only when ``audit.csv`` holds a row with its
name and the fingerprint this run would record, and the saved images still match that row's
``outputs_sha256``. Rows recorded with other settings (or for other input bytes, or by an older
version without fingerprints) stay in the file as history but never count as done: the input is
audited again and a new row appended, so the latest row of a name is the current one.

Crash safety: images are written atomically (a temporary file, then a rename); each CSV row is
appended and flushed only after the item's images are saved, ``audit.csv``'s row last; a row cut
by a kill (no line end, or too few fields) never counts and is dropped when the file is next
opened, so appends start on a clean line. The header is written only into a new or empty file; a
file with an older header is rewritten (atomically) with the current columns.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from srjudge.audit.gate import AuditDecision, AuditPolicy, audit_image
from srjudge.errors import MissingDependencyError, MissingWeightsError, SrjudgeError
from srjudge.execute import Executor, ExecutorSpec, LocalExecutor, PerWorker
from srjudge.faces.crops import view_crop
from srjudge.faces.detect import Face, FaceFinder
from srjudge.images.io import load_image, save_png
from srjudge.images.resize import imresize
from srjudge.judges.base import Judge
from srjudge.judges.per_worker import judge_handle
from srjudge.metrics import create_metric
from srjudge.provenance import config_hash, file_sha256
from srjudge.report.panels import side_by_side
from srjudge.sr.base import SRBackend
from srjudge.sr.per_worker import backend_handle

AUDIT_COLUMNS = [
    "name",
    "backend",
    "family",
    "seed",
    "judge",
    "pure_score",
    "pure_tags",
    "confidence",
    "knob",
    "value",
    "final_score",
    "final_tags",
    "decision",
    "reason",
    "steps",
    "input",
    "input_sha256",
    "outputs_sha256",
    "fingerprint",  # last: a row cut by a kill cannot carry a complete one
]
METRICS = ("psnr", "ssim", "niqe", "lpips")
METRIC_COLUMNS = [
    "name",
    "family",
    "decision",
    *(f"{m}_{k}" for m in METRICS for k in ("pure", "judge", "delta")),
    "hr_sha256",
    "fingerprint",
]
_VARIANTS = ("pure", "judge", "panels")


@dataclass
class AuditSummary:
    out_dir: Path
    decisions: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    inputs: dict[str, Path] = field(default_factory=dict)
    """Each item name and the input it was derived from (names differ from stems on a clash)."""


def _caption(title: str, score: float | None, tags: Sequence[str], extra: str = "") -> str:
    score_text = "abstained" if score is None else f"score {score:.1f}"
    return "\n".join(x for x in (title, score_text, ", ".join(tags) or "no tags", extra) if x)


def panel(lr: np.ndarray, decision: AuditDecision, *, faces: bool = True) -> np.ndarray:
    """LR | pure | +judge, captioned with scores, tags and the decision; then, when a face is found
    (``faces``, dlib installed), the largest face zoomed from the LR (bicubic), the pure and the +judge
    output, with their identity cosines where the judge measured them."""
    pure, final = decision.pure, decision.final
    knob = f"{final.knob}={final.value:g}" if final.knob else "no knob"
    images = [lr, pure.image, final.image]
    captions = [
        "LR input",
        _caption("pure SR", pure.verdict.score, pure.verdict.tags),
        _caption(f"+judge ({knob})", final.verdict.score, final.verdict.tags, decision.decision),
    ]
    if faces:
        crops = face_columns(
            lr,
            [
                (label, step.image, step.verdict.components.get("identity"))
                for label, step in (("pure", pure), ("+judge", final))
            ],
        )
        images += [image for image, _ in crops]
        captions += [caption for _, caption in crops]
    return side_by_side(images, captions)


def face_columns(
    lr: np.ndarray, outputs: Sequence[tuple[str, np.ndarray, float | None]], *, face: Face | None = None
) -> list[tuple[np.ndarray, str]]:
    """Crops of ``face`` (else the largest face found in the outputs, first output first): from the LR
    upsampled, then from each (label, image, identity cosine) output, captioned. Empty without a face
    or without dlib."""
    image = outputs[0][1]
    if face is None:
        try:
            finder = FaceFinder()
        except (MissingDependencyError, MissingWeightsError):
            return []
        found = next((faces for faces in (finder.find(o[1]) for o in outputs) if faces), [])
        if not found:
            return []
        face = max(found, key=lambda f: f.width)
    upsampled = np.clip(imresize(lr, output_shape=(image.shape[0], image.shape[1])), 0.0, 1.0)
    columns = [(view_crop(upsampled, face), "face: LR, bicubic")]
    for label, output, identity in outputs:
        note = "" if identity is None else f"identity cos {identity:.3f}"
        columns.append((view_crop(output, face), "\n".join(x for x in (f"face: {label}", note) if x)))
    return columns


def _metric_fns() -> dict[str, Callable[..., float] | str]:
    """Each metric, or why it is not available (LPIPS needs user weights)."""
    fns: dict[str, Callable[..., float] | str] = {}
    for name in METRICS:
        try:
            fns[name] = create_metric(name)
        except (MissingWeightsError, MissingDependencyError) as exc:
            fns[name] = f"n/a: {str(exc).splitlines()[0]}"
    return fns


def item_names(paths: Sequence[Path]) -> list[str]:
    """Unique output names for ``paths``: the stem, or a path-derived name where stems clash.

    Clashes are found case-insensitively. A clashing group is told apart by the fewest trailing
    parent folders that make every name unique (``a/x.png``, ``b/x.png`` -> ``a-x``, ``b-x``), then
    by the extension (``x-png``, ``x-jpg``), then by parents and extension together; a numeric
    suffix (``x-2``) is the last resort. A derived name never takes a name used by another input.
    The same file given twice gets the same name.
    """
    keys = [Path(os.path.abspath(p)) for p in paths]
    groups: dict[str, list[Path]] = {}
    for key in dict.fromkeys(keys):
        groups.setdefault(key.stem.casefold(), []).append(key)
    names = {g[0]: g[0].stem for g in groups.values() if len(g) == 1}
    taken = {n.casefold() for n in names.values()}
    for group in (g for g in groups.values() if len(g) > 1):
        depth = max(len(_folders(k)) for k in group)
        options = [(d, False) for d in range(1, depth + 1)] + [(d, True) for d in range(depth + 1)]
        for parents, ext in options:
            chosen = [_derived_name(k, parents, ext) for k in group]
            folded = {c.casefold() for c in chosen}
            if len(folded) == len(group) and not folded & taken:
                break
        else:
            chosen = []
            for k in group:
                name, n = k.stem, 2
                while name.casefold() in taken | {c.casefold() for c in chosen}:
                    name, n = f"{k.stem}-{n}", n + 1
                chosen.append(name)
        for k, name in zip(group, chosen, strict=True):
            names[k] = name
            taken.add(name.casefold())
    return [names[k] for k in keys]


def _folders(path: Path) -> list[str]:
    return [p for p in path.parent.parts if p != path.parent.anchor]


def _derived_name(path: Path, parents: int, ext: bool) -> str:
    """The stem behind its last ``parents`` folders (``a-x``), with the extension when ``ext``."""
    folders = _folders(path)
    name = "-".join([*folders[len(folders) - parents :], path.stem] if parents else [path.stem])
    return f"{name}-{path.suffix.lstrip('.')}" if ext and path.suffix else name


def _settings(backend: SRBackend, judge: Judge, policy: AuditPolicy, scale: int, seed: int) -> dict[str, Any]:
    """Everything that decides an audit row besides the input bytes."""
    return {
        "backend": backend.spec,
        "backend_settings": backend.settings(),
        "family": backend.family,
        "judge": judge.spec,
        "judge_config_hash": judge.provenance().config_hash,
        "policy": dataclasses.asdict(policy),
        "scale": scale,
        "seed": seed,
    }


def _outputs_sha256(out_dir: Path, name: str) -> str | None:
    """One SHA-256 over the saved pure, judge and panel PNGs of ``name`` (None when one is missing)."""
    h = hashlib.sha256()
    for sub in _VARIANTS:
        path = out_dir / sub / f"{name}.png"
        if not path.is_file():
            return None
        h.update(file_sha256(path).encode())
    return h.hexdigest()


def _read_log(path: Path, columns: list[str]) -> list[dict[str, str]]:
    """The complete rows of an append-only CSV log, made ready for appending.

    A new or empty file gets the header. A last row cut by a kill (no line end) and rows with the
    wrong number of fields are dropped, and a file with other columns (an older version) is
    migrated: in both cases the file is rewritten atomically with the current header and the good
    rows (missing columns empty, so old rows never match a fingerprint).
    """
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(columns)
        return []
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise SrjudgeError(f"{path}: unreadable CSV ({exc}); move it aside to start afresh.") from None
    header, body = (records[0], records[1:]) if records else ([], [])
    whole = text.endswith(("\n", "\r"))
    if not whole and body:
        body = body[:-1]
    good = [r for r in body if len(r) == len(header)]
    rows = [dict(zip(header, r, strict=True)) for r in good]
    if header != columns or not whole or len(good) != len(body):
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    return rows


def _append(handle: TextIO, columns: list[str], row: Mapping[str, object]) -> None:
    csv.DictWriter(handle, fieldnames=columns).writerow(row)
    handle.flush()


def _hr_index(hr_dir: Path) -> dict[str, Path]:
    """Each file stem in ``hr_dir`` and its file (the first by name when several share a stem)."""
    if not hr_dir.is_dir():
        raise SrjudgeError(f"{hr_dir}: the HR folder does not exist or is not a folder.")
    index: dict[str, Path] = {}
    for p in sorted(hr_dir.iterdir()):
        if p.is_file():
            index.setdefault(p.stem, p)
    return index


def _find_hr(index: dict[str, Path], hr_dir: Path, name: str, stem: str) -> Path:
    """The HR reference ``<name>.*``; an item renamed for a stem clash never falls back to the stem."""
    if name in index:
        return index[name]
    if name != stem:
        raise SrjudgeError(
            f"no HR image named {name}.* in {hr_dir} (inputs share the stem {stem!r}, so {stem}.* "
            "would be ambiguous; name each reference after its item)"
        )
    raise SrjudgeError(f"no HR image named {name}.* in {hr_dir}")


@dataclass(frozen=True)
class AuditItem:
    """One LR input to audit, with what the driver knows of it from the run's logs."""

    path: str
    name: str
    previous_fingerprint: str | None = None
    """The fingerprint and saved-images digest of its latest ``audit.csv`` row (resume)."""
    previous_outputs: str | None = None
    previous_decision: str | None = None
    hr: str | None = None
    hr_error: str | None = None
    """Why no HR reference could be paired (the item fails with it)."""
    measured: tuple[tuple[str, str], ...] = ()
    """(fingerprint, HR SHA-256) of its rows already in ``metrics.csv``."""


@dataclass(frozen=True)
class AuditResult:
    """What the work did for one item: its fingerprint and decision, and the rows to append."""

    name: str
    fingerprint: str
    decision: str
    resumed: bool
    audit_row: dict[str, Any] | None = None
    metrics_row: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditWork:
    """Auditing one LR input: SR, judge, bounded retries; saves its three PNGs atomically and returns the
    ``audit.csv`` (and ``metrics.csv``) rows for the driver to append in order."""

    backend: PerWorker[SRBackend]
    judge: PerWorker[Judge]
    out_dir: Path
    settings_hash: str
    policy: AuditPolicy
    scale: int
    seed: int
    metric_fns: PerWorker[dict[str, Callable[..., float] | str]] | None = None

    def __call__(self, item: AuditItem) -> AuditResult:
        path, name, out_dir = Path(item.path), item.name, self.out_dir
        try:
            digest = file_sha256(path)
        except OSError as exc:
            raise SrjudgeError(f"{path}: {exc.strerror or exc}") from None
        fingerprint = config_hash({"settings": self.settings_hash, "input_sha256": digest})
        if item.hr_error is not None:
            raise SrjudgeError(item.hr_error)
        hr = load_image(item.hr) if item.hr is not None else None
        fns = self.metric_fns.get() if self.metric_fns is not None else {}
        backend = self.backend.get()
        if (  # resumed: the same settings and input, and the outputs on disk unchanged
            item.previous_fingerprint == fingerprint
            and item.previous_outputs == _outputs_sha256(out_dir, name)
        ):
            row = None
            if hr is not None and item.hr is not None:
                hr_digest = file_sha256(Path(item.hr))
                if dict(item.measured).get(fingerprint) != hr_digest:
                    row = _paired(
                        name,
                        backend.family,
                        str(item.previous_decision),
                        load_image(out_dir / "pure" / f"{name}.png"),
                        load_image(out_dir / "judge" / f"{name}.png"),
                        hr,
                        fns,
                    )
                    row.update(hr_sha256=hr_digest, fingerprint=fingerprint)
            return AuditResult(name, fingerprint, str(item.previous_decision), True, metrics_row=row)
        judge = self.judge.get()
        lr = load_image(path)
        decision = audit_image(lr, backend, judge, scale=self.scale, policy=self.policy, seed=self.seed)
        save_png(out_dir / "pure" / f"{name}.png", decision.pure.image)
        save_png(out_dir / "judge" / f"{name}.png", decision.final.image)
        save_png(out_dir / "panels" / f"{name}.png", panel(lr, decision))
        metrics_row = None
        if hr is not None and item.hr is not None:
            metrics_row = _paired(
                name,
                backend.family,
                decision.decision,
                decision.pure.image,
                decision.final.image,
                hr,
                fns,
            )
            metrics_row.update(hr_sha256=file_sha256(Path(item.hr)), fingerprint=fingerprint)
        final = decision.final
        audit_row = {
            "name": name,
            "backend": backend.spec,
            "family": backend.family,
            "seed": self.seed,
            "judge": judge.spec,
            "pure_score": _num(decision.pure.verdict.score),
            "pure_tags": ";".join(decision.pure.verdict.tags),
            "confidence": _num(decision.pure.verdict.confidence),
            "knob": final.knob or "",
            "value": "" if final.value is None else final.value,
            "final_score": _num(final.verdict.score),
            "final_tags": ";".join(final.verdict.tags),
            "decision": decision.decision,
            "reason": decision.reason,
            "steps": json.dumps([s.record() for s in decision.steps]),
            "input": str(path),
            "input_sha256": digest,
            "outputs_sha256": _outputs_sha256(out_dir, name) or "",
            "fingerprint": fingerprint,
        }
        return AuditResult(name, fingerprint, decision.decision, False, audit_row, metrics_row)


def audit_folder(
    lr_paths: Sequence[Path],
    backend: SRBackend,
    judge: Judge,
    out_dir: Path,
    *,
    scale: int = 4,
    policy: AuditPolicy | None = None,
    hr_dir: Path | None = None,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    executor: Executor | None = None,
) -> AuditSummary:
    """Audit every LR input; resumable from ``audit.csv``; a failing input is reported, the run goes on.

    Item names are the file stems, or path-derived names where stems clash (:func:`item_names`).
    An input is skipped only when ``audit.csv`` holds a row for its name with this run's
    fingerprint (settings and input SHA-256) and its saved images are unchanged; otherwise it is
    audited again and a new row appended (older rows stay, but do not count). With ``hr_dir`` a
    skipped input without a matching ``metrics.csv`` row gets one from its saved images, so
    ``metrics_summary.csv`` covers every input of the run.

    ``executor`` (default: this process) runs one input per task: each worker saves its inputs' images
    atomically, and the CSV rows are appended here in input order, so the files are the same whichever
    executor ran them.
    """
    policy = policy or AuditPolicy()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = AuditSummary(out_dir)
    settings = _settings(backend, judge, policy, scale, seed)
    settings_hash = config_hash(settings)
    csv_path, metrics_path = out_dir / "audit.csv", out_dir / "metrics.csv"
    recorded: dict[str, dict[str, str]] = {}  # name -> its latest row (the one that counts)
    for line in _read_log(csv_path, AUDIT_COLUMNS):
        recorded[line["name"]] = line
    hr_index = _hr_index(hr_dir) if hr_dir is not None else {}
    metric_fns = _metric_fns() if hr_dir is not None else {}
    measured: dict[tuple[str, str], dict[str, str]] = {}  # (name, fingerprint) -> latest metrics row
    if hr_dir is not None:
        for line in _read_log(metrics_path, METRIC_COLUMNS):
            measured[(line["name"], line["fingerprint"])] = line
    in_run: dict[str, str] = {}  # name -> fingerprint, for the items audited or resumed in this run
    names = item_names(lr_paths)
    work = AuditWork(
        backend_handle(backend),
        judge_handle(judge),
        out_dir,
        settings_hash,
        policy,
        scale,
        seed,
        PerWorker("audit:metrics", _metric_fns, local=metric_fns) if hr_dir is not None else None,
    )

    def items() -> Iterator[AuditItem | None]:
        for path, name in zip(lr_paths, names, strict=True):
            if name in summary.inputs:  # the same file given twice: nothing to run
                yield None
                continue
            summary.inputs[name] = Path(path)
            previous = recorded.get(name, {})
            hr = hr_error = None
            if hr_dir is not None:
                try:
                    hr = str(_find_hr(hr_index, hr_dir, name, Path(path).stem))
                except SrjudgeError as exc:
                    hr_error = str(exc)
            yield AuditItem(
                str(path),
                name,
                previous.get("fingerprint"),
                previous.get("outputs_sha256"),
                previous.get("decision"),
                hr,
                hr_error,
                tuple((fp, row.get("hr_sha256", "")) for (n, fp), row in measured.items() if n == name),
            )

    metrics_handle = metrics_path.open("a", newline="", encoding="utf-8") if hr_dir is not None else None
    try:
        with csv_path.open("a", newline="", encoding="utf-8") as handle:
            outcomes = (executor or LocalExecutor(ExecutorSpec())).map(_SkipNone(work), items())
            for n, outcome in enumerate(outcomes, 1):
                item = outcome.item
                name = item.name if item is not None else names[n - 1]
                result = outcome.value
                if item is None:
                    pass
                elif result is None:
                    summary.failed.append((name, str(outcome.error)))
                else:
                    if result.metrics_row is not None and metrics_handle is not None:
                        _append(metrics_handle, METRIC_COLUMNS, result.metrics_row)
                        row = {k: str(v) for k, v in result.metrics_row.items()}
                        measured[(name, result.fingerprint)] = row
                    if result.resumed:
                        summary.skipped.append(name)
                    else:
                        _append(handle, AUDIT_COLUMNS, result.audit_row or {})
                        summary.decisions[name] = result.decision
                    in_run[name] = result.fingerprint
                if progress:
                    progress(n, len(lr_paths), name)
    finally:
        if metrics_handle is not None:
            metrics_handle.close()
    if hr_dir is not None:
        covered = [measured[(name, fp)] for name, fp in in_run.items() if (name, fp) in measured]
        _write_metrics_summary(out_dir, covered, metric_fns, audited=len(in_run))
    return summary


@dataclass(frozen=True)
class _SkipNone:
    """``work`` on each item; None (a duplicate input) passes through."""

    work: AuditWork

    def __call__(self, item: AuditItem | None) -> AuditResult | None:
        return None if item is None else self.work(item)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _paired(
    name: str,
    family: str,
    decision: str,
    pure_image: np.ndarray,
    final_image: np.ndarray,
    hr: np.ndarray,
    fns: dict[str, Callable[..., float] | str],
) -> dict[str, object]:
    row: dict[str, object] = {"name": name, "family": family, "decision": decision}
    for metric, fn in fns.items():
        if isinstance(fn, str):
            row[f"{metric}_pure"] = row[f"{metric}_judge"] = row[f"{metric}_delta"] = ""
            continue
        try:
            pure = fn(pure_image, hr=hr)
            judged = fn(final_image, hr=hr)
        except SrjudgeError:
            pure = judged = math.nan
        row[f"{metric}_pure"], row[f"{metric}_judge"], row[f"{metric}_delta"] = pure, judged, judged - pure
    return row


def _write_metrics_summary(
    out_dir: Path,
    rows: list[dict[str, str]],
    fns: dict[str, Callable[..., float] | str],
    *,
    audited: int,
) -> None:
    """The per-family means over this run's items (audited now or resumed), written atomically."""
    value_columns = METRIC_COLUMNS[3:-2]
    notes = [f"{m}: {v}" for m, v in fns.items() if isinstance(v, str)]
    if len(rows) < audited:  # not expected: every item of the run gets a metrics row
        notes.append(f"{audited - len(rows)} of {audited} audited items have no metrics row")
    path = out_dir / "metrics_summary.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        table = csv.writer(handle)
        table.writerow(["family", "n", *value_columns, "notes"])
        for family in sorted({r["family"] for r in rows}):
            subset = [r for r in rows if r["family"] == family]
            means = []
            for col in value_columns:
                values = [float(r[col]) for r in subset if r.get(col) not in (None, "", "nan")]
                means.append(f"{np.mean(values):.4f}" if values else "")
            table.writerow([family, len(subset), *means, "; ".join(notes)])
    os.replace(tmp, path)
