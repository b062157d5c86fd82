"""The testbed experiment: does the output a judge picks still show the symbol the LR input showed?

Reproduces the set-up of the diffusion-SR selection paper (arXiv 2506.20832) on the digits-and-letters
testbed. For every test LR glyph, a stochastic SR backend (``diffusion``) makes N seeded samples and
each other backend (``bicubic``, optionally ``realesrgan``) one output; an independent referee reader
says which symbol each candidate shows. Every judge ranks the candidates of an item (with the LR input),
its top-1 pick and the fusion of its top-k are read by the referee, and the measures of
:mod:`srjudge.testbed.measures` are computed per judge and per severity with 95 % bootstrap intervals
over items.

This module runs it (:func:`run_experiment`): candidates (:mod:`srjudge.testbed.candidates`), the
referee's readings, and every judge's picks, each written as it is made, so an interrupted run resumes
and a re-run with other judges reuses candidates, readings and picks. Settings and results are in
:mod:`srjudge.testbed.results`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srjudge.bench.store import JsonlStore, slug
from srjudge.errors import MissingWeightsError, SrjudgeError
from srjudge.judges.per_worker import judge_handle
from srjudge.provenance import config_hash
from srjudge.testbed.candidates import (
    CandidateCache,
    CandidateKey,
    Item,
    Progress,
    ensure_candidates,
    testbed_items,
)
from srjudge.testbed.measures import ItemFacts, Pick, backend_name, measure_all
from srjudge.testbed.results import (
    BASELINE_JUDGES,
    ExperimentConfig,
    ExperimentResult,
    ItemRecord,
    JudgeInfo,
    backend_specs,
    jsonable,
)
from srjudge.testbed.work import ItemUnit, PickWork, ReadingWork, reader_handle

if TYPE_CHECKING:
    from srjudge.execute import Executor
    from srjudge.judges.base import Judge
    from srjudge.readers.base import Reader


def _reader_info(reader: Reader) -> dict[str, Any]:
    """The referee's identity for the settings and the readings' cache key."""
    info: dict[str, Any] = {
        "spec": str(reader.spec),
        "config": {k: jsonable(v) for k, v in reader.config.items()},
        "provenance": reader.provenance().to_dict(),
    }
    info["hash"] = config_hash(info)
    return info


def build_judges(config: ExperimentConfig) -> list[tuple[JudgeInfo, Judge | None]]:
    """The requested judges, then the metric baselines not already requested (LPIPS: 'needs weights')."""
    from srjudge.judges import create_judge

    out: list[tuple[JudgeInfo, Judge | None]] = []
    for spec in config.judges:
        judge = create_judge(spec)
        out.append(
            (JudgeInfo(judge.spec, "judge", "ok", judge.config, judge.provenance().config_hash), judge)
        )
    if config.baselines:
        have = {info.spec for info, _ in out} | set(config.judges)
        for spec in BASELINE_JUDGES:
            if spec in have:
                continue
            try:
                judge = create_judge(spec)
            except MissingWeightsError as exc:
                out.append((JudgeInfo(spec, "baseline", "needs weights", message=str(exc)), None))
                continue
            out.append(
                (JudgeInfo(judge.spec, "baseline", "ok", judge.config, judge.provenance().config_hash), judge)
            )
    return out


def run_experiment(
    testbed: Path | str,
    config: ExperimentConfig,
    out_dir: Path | str,
    *,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> ExperimentResult:
    """Generate (or reuse) candidates, read them, run every judge (streamed), and measure.

    ``executor`` (default: local) runs the three stages' units of work (:mod:`srjudge.testbed.work`);
    the records are the same on any executor."""
    from srjudge.execute import create_executor
    from srjudge.judges import create_judge
    from srjudge.readers import create_reader

    testbed = Path(testbed)
    out = Path(out_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    items, tb_info, scale = testbed_items(testbed, config.split, config.limit)
    judges = build_judges(config)
    tws_judge = create_judge(config.tws)
    timings["setup"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cache = CandidateCache(out / "candidates")
    digest = str(tb_info.get("digest", ""))
    sets, made, reused = ensure_candidates(
        items, cache, backend_specs(config), config, scale=scale, testbed=digest, progress=progress,
        executor=executor,
    )  # fmt: skip
    timings["candidates"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    reader = create_reader(config.referee)
    referee = _reader_info(reader)
    pool = executor or create_executor()
    facts = _ensure_readings(
        items, sets, reader, referee, tws_judge, config, out, progress, testbed=digest, executor=pool
    )
    timings["readings"] = time.perf_counter() - t0

    picks: dict[str, dict[str, Pick]] = {}
    infos: list[JudgeInfo] = []
    run = [(info, judge) for info, judge in judges if judge is not None]
    stores = {
        info.spec: JsonlStore(
            out / "picks" / f"{slug(info.spec)}.jsonl",
            config_hash(
                {
                    "judge": info.config_hash,
                    "backends": list(backend_specs(config)),
                    "samples": config.samples,
                    "seed": config.seed,
                    "top_k": config.top_k,
                    "fusion": config.fusion,
                    "referee": referee["hash"],
                    "tws": config.tws,
                    "testbed": digest,
                }
            ),
        )
        for info, _ in run
    }
    seconds = {info.spec: 0.0 for info, _ in run}
    reused_picks = {info.spec: 0 for info, _ in run}
    t0 = time.perf_counter()
    work = PickWork(
        tuple((info.spec, judge_handle(judge)) for info, judge in run),
        reader_handle(reader),
        judge_handle(tws_judge),
        config,
    )
    todo_units = []
    for item in items:
        todo = tuple(info.spec for info, _ in run if stores[info.spec].get(item.item_id) is None)
        for info, _ in run:
            if info.spec not in todo:
                reused_picks[info.spec] += 1
        if todo:
            files = tuple(p for _, p in sets[item.item_id])
            todo_units.append((item, todo, files))
    failed: list[str] = []
    try:
        units = ((ItemUnit(it.item_id, it.lr(), files), todo) for it, todo, files in todo_units)
        for n, outcome in enumerate(pool.map(work, units)):
            item = todo_units[outcome.index][0]
            if outcome.error is not None or outcome.value is None:
                failed.append(f"{item.item_id}: {outcome.error}")
            else:
                for spec, row in outcome.value.items():
                    stores[spec].put(item.item_id, row)
            if progress:
                progress("judges", n + 1, len(todo_units))
    finally:
        for store in stores.values():
            store.close()
    if failed:
        raise SrjudgeError(
            f"{len(failed)} item(s) could not be judged (the others are recorded; a re-run resumes): "
            + "; ".join(failed[:3])
        )
    timings["judges"] = time.perf_counter() - t0
    by_id = {f.item_id: f for f in facts}
    for info, _ in run:
        picks[info.spec] = {
            item.item_id: _pick_from_row(by_id[item.item_id], stores[info.spec].rows[item.item_id])
            for item in items
        }
    for info, _ in run:  # judge time as recorded with the picks, so a resumed run reports the full cost
        rows_of = stores[info.spec].rows
        seconds[info.spec] = sum(float(rows_of[it.item_id].get("seconds") or 0.0) for it in items)
    for info, _ in judges:
        if info.status == "ok":
            info = JudgeInfo(
                info.spec, info.kind, info.status, info.config, info.config_hash,
                seconds[info.spec], reused_picks[info.spec], info.message,
            )  # fmt: skip
        infos.append(info)

    t0 = time.perf_counter()
    rows_m, cand_m = measure_all(
        facts,
        picks,
        infos,
        config.backends,
        threshold=config.threshold,
        n_boot=config.n_boot,
        seed=config.seed,
    )
    timings["measures"] = time.perf_counter() - t0
    records = {
        item.item_id: ItemRecord(item.item_id, item.lr_path, tuple(p for _, p in sets[item.item_id]))
        for item in items
    }
    counts = {
        "items": len(items),
        "candidates": sum(len(s) for s in sets.values()),
        "candidates_made": made,
        "candidates_reused": reused,
    }
    return ExperimentResult(
        config=config,
        testbed=tb_info,
        facts=tuple(facts),
        picks=picks,
        judges=tuple(infos),
        rows=tuple(rows_m),
        candidates=tuple(cand_m),
        records=records,
        timings=timings,
        counts=counts,
        referee=referee,
        lr_scale=scale,
    )


def _pick_from_row(f: ItemFacts, row: Mapping[str, Any]) -> Pick:
    index = row.get("pick")
    if index is None:
        return Pick(f.item_id, None, None, 0.0, abstained_candidates=int(row.get("abstained_candidates", 0)))
    i = int(index)
    return Pick(
        item_id=f.item_id,
        index=i,
        label=f.labels[i],
        confidence=f.confidences[i],
        topk=tuple(int(t) for t in row.get("topk", [])),
        fused_label=row.get("fused_label"),
        fused_confidence=float(row.get("fused_confidence") or 0.0),
        tws=f.tws[i] if f.tws else None,
        fused_tws=row.get("fused_tws"),
        abstained_candidates=int(row.get("abstained_candidates", 0)),
        scores=tuple(None if s is None else float(s) for s in row.get("scores", [])),
    )


def _ensure_readings(
    items: Sequence[Item],
    sets: Mapping[str, Sequence[tuple[CandidateKey, Path]]],
    reader: Reader,
    referee: Mapping[str, Any],
    tws_judge: Judge,
    config: ExperimentConfig,
    out: Path,
    progress: Progress | None,
    *,
    testbed: str,
    executor: Executor,
) -> list[ItemFacts]:
    """The referee's reading and the TWS of every candidate, cached in ``readings.jsonl`` (batched)."""
    store = JsonlStore(
        out / "readings.jsonl",
        config_hash(
            {"referee": referee["hash"], "tws": tws_judge.provenance().config_hash, "testbed": testbed}
        ),
    )
    try:
        todo = [
            it
            for it in items
            if (row := store.get(it.item_id)) is None
            or row.get("candidates") != [e.key() for e, _ in sets[it.item_id]]
        ]
        per_batch = max(1, config.batch // max(1, len(next(iter(sets.values()), []))))
        chunks = [todo[i : i + per_batch] for i in range(0, len(todo), per_batch)]
        work = ReadingWork(reader_handle(reader), judge_handle(tws_judge))
        units = (
            [ItemUnit(it.item_id, it.lr(), tuple(p for _, p in sets[it.item_id])) for it in c] for c in chunks
        )
        if progress and todo:
            progress("readings", 0, len(todo))
        done = 0
        for outcome in executor.map(work, units):
            chunk = chunks[outcome.index]
            if outcome.error is not None or outcome.value is None:
                raise SrjudgeError(
                    f"the referee could not read items {chunk[0].item_id}..{chunk[-1].item_id} (the earlier "
                    f"ones are recorded; a re-run resumes): {outcome.error}"
                )
            for it, row in zip(chunk, outcome.value, strict=True):
                store.put(it.item_id, {"candidates": [e.key() for e, _ in sets[it.item_id]], **row})
            done += len(chunk)
            if progress:
                progress("readings", done, len(todo))
        facts = []
        for it in items:
            row = store.rows[it.item_id]
            facts.append(
                ItemFacts(
                    item_id=it.item_id,
                    truth=it.label,
                    severity=it.severity,
                    source=it.source,
                    backends=tuple(backend_name(e.backend) for e, _ in sets[it.item_id]),
                    labels=tuple(row["labels"]),
                    confidences=tuple(float(c) for c in row["confidences"]),
                    tws=tuple(row["tws"]),
                )
            )
        return facts
    finally:
        store.close()
