"""EvoQuality iterations: vote, train, and let the evolved model vote in the next round.

Round r (1-based) writes ``OUT/round-r/``:

- ``pseudo_labels.jsonl``: the pairs voted by round r-1's model (round 1: the base model, or
  ``first_judge`` when set) with the pairwise protocol, ``samples`` votes per order;
- ``model/``: the GRPO-trained model, merged (``vlm:hf,model=OUT/round-r/model`` loads it), with
  its LoRA adapter in ``model/adapter/``;
- ``evolve.yaml``: the configuration; ``srjudge_training.json``: the record (dataset digest =
  sha256 of ``pseudo_labels.jsonl``, the rewards of every logged step, agreement, bench measures).

Each round also appends one line to ``OUT/evolve_log.jsonl`` and reports to the terminal:
(a) the agreement of its pseudo-labels with the previous round's on the pairs labelled in both, and
(b) with ``labelled`` (a bench dataset), the round's model measured by ``srjudge bench`` (SRCC/PLCC
for a MOS set, accuracy for a pairwise set), plus a round-0 line for the base model.

Resumable: a round whose ``srjudge_training.json`` exists is finished and never redone; an
interrupted round resumes its labelling from ``pseudo_labels.jsonl`` and then trains again.
Every round judges the same pairs (seeded), so agreement between rounds is measured on them.

A round is two stages that also run on their own (same files, same format): :func:`vote_round`
(``srjudge evolve vote``, one process) writes the pseudo-labels, and :func:`train_stage`
(``srjudge evolve train``) trains on a pseudo-label file. The latter runs under
``accelerate launch --num_processes N``: trl and accelerate distribute the training, and only
process 0 writes (:func:`srjudge.train.grpo.is_writer`). :func:`run_evolve` (all rounds in one
process) refuses ``WORLD_SIZE > 1`` and names the staged commands.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srjudge.errors import SpecError, SrjudgeError
from srjudge.execute import Executor
from srjudge.train.common import LoraSettings, config_to_dict
from srjudge.train.grpo import GRPOSettings
from srjudge.train.pseudo_labels import (
    DEFAULT_MIN_SHARE,
    LabelSummary,
    Layout,
    PseudoLabel,
    check_min_share,
)

RECORD_KIND = "evolve-grpo"
LOG_NAME = "evolve_log.jsonl"
LABELS_NAME = "pseudo_labels.jsonl"
CONFIG_NAME = "evolve.yaml"
RECORD_NAME = "srjudge_training.json"
BENCH_PROTOCOLS = ("level", "pairwise")
#: Settings that may change between runs of one output folder without invalidating finished rounds.
_RESUMABLE_KEYS = ("rounds", "labelled", "bench_protocol", "bench_bootstrap", "out")

Log = Callable[[str], None]


@dataclass(frozen=True)
class EvolveConfig:
    """Everything an evolution run depends on (``srjudge evolve --write-config`` writes the defaults).

    ``images``: a folder of unlabeled images, or the ``srjudge select`` layout (one sub-folder per
    LR input with ``lr.png`` and candidates; pairs are then formed within each candidate set).
    ``samples``/``temperature``: the votes per order of the pairwise protocol and their sampling
    temperature. ``first_judge``: a judge spec that votes in round 1 instead of the base model.
    ``lora: null`` trains every parameter. ``device``/``dtype`` serve both voting and training.
    """

    base_model: str = ""
    images: str = ""
    out: str = "srjudge-out/evolve"
    rounds: int = 2
    layout: Layout = "auto"
    samples: int = 4
    temperature: float = 0.7
    max_side: int = 768
    min_share: float = DEFAULT_MIN_SHARE
    max_pairs: int | None = 200
    first_judge: str | None = None
    prompt: str | None = None
    labelled: str | None = None
    bench_protocol: str = "level"
    bench_bootstrap: int = 200
    seed: int = 0
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    lora: LoraSettings | None = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise SpecError(f"rounds must be >= 1, got {self.rounds}.")
        if self.layout not in ("auto", "flat", "sets"):
            raise SpecError(f"layout must be auto, flat or sets, got {self.layout!r}.")
        if self.samples < 1:
            raise SpecError(f"samples (votes per order) must be >= 1, got {self.samples}.")
        if self.temperature < 0:
            raise SpecError(f"temperature must be >= 0, got {self.temperature}.")
        if self.samples > 1 and self.temperature == 0:
            raise SpecError(
                f"samples={self.samples} votes at temperature 0 are all the same answer: "
                "set temperature > 0 (e.g. 0.7) or samples=1."
            )
        if self.max_side < 28:
            raise SpecError(f"max_side must be >= 28 pixels, got {self.max_side}.")
        check_min_share(self.min_share)
        if self.max_pairs is not None and self.max_pairs < 1:
            raise SpecError(f"max_pairs must be >= 1 (or null for all pairs), got {self.max_pairs}.")
        if self.bench_protocol not in BENCH_PROTOCOLS:
            raise SpecError(
                f"bench_protocol must be one of {', '.join(BENCH_PROTOCOLS)}, got {self.bench_protocol!r}."
            )
        if self.bench_bootstrap < 1:
            raise SpecError(f"bench_bootstrap must be >= 1, got {self.bench_bootstrap}.")

    def check_inputs(self) -> None:
        """The base model and images must be given and exist (checked before any work starts)."""
        if not self.base_model:
            raise SpecError("base_model is not set: give --base-model /path/to/model (a local VLM folder).")
        if not self.images:
            raise SpecError(
                "images is not set: give --images FOLDER (unlabeled images, or the select layout)."
            )
        if not Path(self.images).is_dir():
            raise SrjudgeError(f"images folder {self.images} does not exist.")
        if self.labelled is not None and not Path(self.labelled).exists():
            raise SrjudgeError(f"labelled dataset {self.labelled} does not exist.")
        for name, value in (("base_model", self.base_model), ("prompt", self.prompt)):
            if value and "," in value:
                raise SpecError(
                    f"{name} {value!r} contains a comma, which judge specs cannot carry; rename it."
                )


def _spec_value(value: str) -> str:
    if "," in value:
        raise SpecError(f"{value!r} contains a comma, which judge specs cannot carry; rename the path.")
    return value


def voter_spec(config: EvolveConfig, model: str) -> str:
    """The pairwise-protocol spec that votes with ``model`` (K samples per order, seeded)."""
    parts = [
        f"vlm:hf,model={_spec_value(model)}",
        "protocol=pairwise",
        f"samples={config.samples}",
        f"temperature={config.temperature:g}",
        f"max_side={config.max_side}",
        f"seed={config.seed}",
        f"device={config.grpo.device}",
    ]
    if config.grpo.dtype != "auto":
        parts.append(f"dtype={config.grpo.dtype}")
    if config.prompt:
        parts.append(f"prompt={_spec_value(config.prompt)}")
    return ",".join(parts)


def bench_spec(config: EvolveConfig, model: str) -> str:
    """The spec ``srjudge bench`` measures a round's model with (greedy, one sample)."""
    parts = [
        f"vlm:hf,model={_spec_value(model)}",
        f"protocol={config.bench_protocol}",
        f"max_side={config.max_side}",
        f"device={config.grpo.device}",
    ]
    if config.grpo.dtype != "auto":
        parts.append(f"dtype={config.grpo.dtype}")
    if config.prompt and config.bench_protocol == "pairwise":
        parts.append(f"prompt={_spec_value(config.prompt)}")
    return ",".join(parts)


def _fingerprint(config: EvolveConfig) -> dict[str, Any]:
    data = config_to_dict(config)
    return {k: v for k, v in data.items() if k not in _RESUMABLE_KEYS}


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


def _check_same_settings(config: EvolveConfig, rdir: Path) -> None:
    """Refuse to reuse the finished round ``rdir`` when ``config`` differs from its ``evolve.yaml``."""
    from srjudge.train.common import load_config_yaml

    before = _fingerprint(load_config_yaml(EvolveConfig, rdir / CONFIG_NAME))
    changed = _changed(before, _fingerprint(config))
    if changed:
        raise SrjudgeError(
            f"{rdir} was made with other settings ({', '.join(changed)} differ from "
            f"{rdir / CONFIG_NAME}); use a new --out folder, or restore those settings to resume."
        )


@dataclass(frozen=True)
class RoundResult:
    """One round's outcome, as appended to ``evolve_log.jsonl``."""

    round: int
    voter: str
    model: str
    pairs: int
    labelled: int
    skipped: int
    agreement: float | None
    common_pairs: int
    steps: int
    rewards: tuple[Mapping[str, float], ...]
    bench: Mapping[str, Any] | None
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        first = self.rewards[0].get("reward") if self.rewards else None
        last = self.rewards[-1].get("reward") if self.rewards else None
        return {
            "round": self.round,
            "voter": self.voter,
            "model": self.model,
            "pairs": self.pairs,
            "labelled": self.labelled,
            "skipped": self.skipped,
            "agreement_with_previous": self.agreement,
            "common_pairs": self.common_pairs,
            "steps": self.steps,
            "reward_first_step": first,
            "reward_last_step": last,
            "bench": None if self.bench is None else dict(self.bench),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], reused: bool = True) -> RoundResult:
        return cls(
            round=int(data["round"]),
            voter=str(data.get("voter", "")),
            model=str(data.get("model", "")),
            pairs=int(data.get("pairs", 0)),
            labelled=int(data.get("labelled", 0)),
            skipped=int(data.get("skipped", 0)),
            agreement=data.get("agreement_with_previous"),
            common_pairs=int(data.get("common_pairs", 0)),
            steps=int(data.get("steps", 0)),
            rewards=tuple(data.get("rewards", ())),
            bench=data.get("bench"),
            reused=reused,
        )


@dataclass(frozen=True)
class EvolveSummary:
    out: str
    baseline: Mapping[str, Any] | None
    rounds: tuple[RoundResult, ...]

    @property
    def final_model(self) -> str:
        return self.rounds[-1].model


def describe(result: RoundResult) -> str:
    """One terminal line for a round."""
    agree = (
        "-"
        if result.agreement is None
        else f"{result.agreement:.3f} on {result.common_pairs} pairs labelled in both rounds"
    )
    d = result.to_dict()
    rewards = (
        f"reward {d['reward_first_step']:.3f} -> {d['reward_last_step']:.3f} over {result.steps} steps"
        if d["reward_first_step"] is not None and d["reward_last_step"] is not None
        else f"{result.steps} steps"
    )
    bench = f"; bench {_bench_text(result.bench)}" if result.bench else ""
    state = " (finished earlier, not redone)" if result.reused else ""
    return (
        f"round {result.round}{state}: {result.labelled}/{result.pairs} pairs labelled "
        f"({result.skipped} skipped); agreement with previous round {agree}; {rewards}{bench}"
    )


def _bench_text(bench: Mapping[str, Any]) -> str:
    keys = [k for k in ("srcc", "plcc", "accuracy", "top1") if bench.get(k) is not None]
    return ", ".join(f"{k.upper()} {float(bench[k]):.3f}" for k in keys) or "no measure"


# ----------------------------------------------------------------------------------------------------------
# Log file
# ----------------------------------------------------------------------------------------------------------


def read_log(out: Path) -> dict[int, dict[str, Any]]:
    """The lines of ``evolve_log.jsonl`` by round (0 = the base model's bench).

    An unterminated last line (cut by an interruption) is left out; any other bad line raises
    :class:`SrjudgeError` naming the file and line.
    """
    from srjudge.jsonl import read_jsonl

    path = out / LOG_NAME
    rows: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    for n, data in read_jsonl(path):
        try:
            rows[int(data["round"])] = data
        except (KeyError, TypeError, ValueError) as exc:
            raise SrjudgeError(
                f"{path}:{n}: not a round line ({type(exc).__name__}: {exc}); fix or delete that line."
            ) from None
    return rows


def _append_log(out: Path, row: Mapping[str, Any]) -> None:
    from srjudge.jsonl import open_for_append

    out.mkdir(parents=True, exist_ok=True)
    with open_for_append(out / LOG_NAME) as handle:
        handle.write(json.dumps(dict(row)) + "\n")
        handle.flush()


# ----------------------------------------------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------------------------------------------


def _release(judge: Any) -> None:
    backend = getattr(judge, "backend", None)
    close = getattr(backend, "close", None)
    if callable(close):
        close()
    gc.collect()


def run_bench_measures(config: EvolveConfig, model: str, out_dir: Path) -> dict[str, Any]:
    """Measure ``model`` on the ``labelled`` dataset with ``srjudge bench``; the point estimates and spec."""
    from srjudge.bench.datasets import load_dataset
    from srjudge.bench.evaluate import run_bench
    from srjudge.judges import create_judge

    assert config.labelled is not None
    dataset = load_dataset(config.labelled)
    spec = bench_spec(config, model)
    judge = create_judge(spec)
    try:
        run_bench(dataset, [judge], out_dir, n_boot=config.bench_bootstrap, seed=config.seed, plots=False)
    finally:
        _release(judge)
    table = json.loads((out_dir / "table.json").read_text())
    measures = (table.get("details") or [{}])[0].get("measures") or {}
    out: dict[str, Any] = {"judge": spec, "dataset": str(config.labelled), "bench_dir": str(out_dir)}
    for key in ("srcc", "plcc", "krcc", "accuracy", "top1"):
        value = measures.get(key)
        if isinstance(value, Mapping):
            out[key] = value.get("value")
    if "n" in measures:
        out["n"] = measures["n"]
    return out


def _label_round(
    config: EvolveConfig, tasks: Sequence[Any], voter: str, path: Path, log: Log
) -> tuple[list[PseudoLabel], LabelSummary]:
    from srjudge.judges import create_judge
    from srjudge.train.pseudo_labels import label_pairs, read_pseudo_labels

    judge = create_judge(voter)
    step = max(1, len(tasks) // 10)
    try:
        summary = label_pairs(
            tasks,
            judge,
            path,
            min_share=config.min_share,
            judge_spec=voter,
            progress=lambda n, total: (
                log(f"  voted {n}/{total} pairs") if n % step == 0 or n == total else None
            ),
        )
    finally:
        _release(judge)
    return read_pseudo_labels(path, summary.fingerprint), summary


# ----------------------------------------------------------------------------------------------------------
# Stages of a round (each runnable on its own: `srjudge evolve vote` / `srjudge evolve train`)
# ----------------------------------------------------------------------------------------------------------

STAGED_HINT = (
    "`srjudge evolve vote --config C --round R` (one process), then "
    "`accelerate launch --num_processes N -m srjudge.cli.main evolve train --config C "
    "--labels OUT/round-R/pseudo_labels.jsonl` (see the README)"
)


def refuse_multi_process(command: str) -> None:
    """Single-process commands (voting, the all-rounds loop) refuse to run under a multi-process launcher."""
    from srjudge.train.grpo import env_world_size

    world = env_world_size()
    if world > 1:
        raise SrjudgeError(
            f"{command} votes and writes pseudo-labels in one process, but WORLD_SIZE={world}: under "
            "`accelerate launch` every process would vote and append to the same files. Run it as a "
            f"single process, or split the round into stages: {STAGED_HINT}."
        )


def round_dir(out: Path, r: int) -> Path:
    """``OUT/round-r``."""
    return Path(out) / f"round-{r}"


def round_of(folder: Path) -> int | None:
    """The round number of a ``round-r`` folder, else None."""
    match = re.fullmatch(r"round-(\d+)", Path(folder).name)
    return int(match.group(1)) if match else None


def model_before(config: EvolveConfig, r: int, out: Path) -> str:
    """The model round ``r`` starts from: the base model for round 1, else ``OUT/round-(r-1)/model``."""
    if r <= 1:
        return config.base_model
    model = round_dir(out, r - 1) / "model"
    if not (model / "config.json").is_file():
        raise SrjudgeError(
            f"round {r} starts from round {r - 1}'s model, but {model} has no config.json: train round "
            f"{r - 1} first (srjudge evolve train --labels {round_dir(out, r - 1) / LABELS_NAME}), or give "
            "the model explicitly."
        )
    return str(model)


def default_voter(config: EvolveConfig, r: int, out: Path) -> str:
    """Who votes in round ``r``: ``first_judge`` (round 1, when set), else the model the round starts from."""
    if r == 1 and config.first_judge:
        return config.first_judge
    return voter_spec(config, model_before(config, r, out))


@dataclass(frozen=True)
class VoteResult:
    """The offline stage of one round: the pseudo-label file and what the labelling did."""

    round: int
    voter: str
    path: str
    labels: tuple[PseudoLabel, ...]
    summary: LabelSummary


def vote_round(
    config: EvolveConfig,
    r: int,
    *,
    voter: str | None = None,
    tasks: Sequence[Any] | None = None,
    log: Log | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VoteResult:
    """The offline stage of round ``r``: vote every pair into ``OUT/round-r/pseudo_labels.jsonl`` (resumes).

    ``voter`` defaults to :func:`default_voter`. Also writes ``OUT/round-r/evolve.yaml``.
    Single-process only (refused under ``WORLD_SIZE > 1``). ``executor`` spreads the pairs over worker
    processes or a Ray cluster (the voter built once per worker): the same file as in this process; a
    pair whose work failed is left out (voted on a re-run) and reported.
    """
    from srjudge.train.common import save_config_yaml
    from srjudge.train.pseudo_labels import pairs_from_folder

    say: Log = log or (lambda _msg: None)
    refuse_multi_process("srjudge evolve vote")
    if r < 1:
        raise SpecError(f"round must be >= 1, got {r}.")
    out = Path(config.out)
    if tasks is None:
        config.check_inputs()
        tasks = pairs_from_folder(
            Path(config.images).resolve(), layout=config.layout, max_pairs=config.max_pairs, seed=config.seed
        )
    rdir = round_dir(out, r)
    if (rdir / RECORD_NAME).is_file():
        raise SrjudgeError(
            f"{rdir} holds a finished round ({RECORD_NAME}); voting into it would change the labels and "
            "settings its model was trained with. Vote into a new --out folder (or delete that round folder)."
        )
    voter = voter or default_voter(config, r, out)
    rdir.mkdir(parents=True, exist_ok=True)
    save_config_yaml(config, rdir / CONFIG_NAME)
    failed: list[tuple[str, str]] = []
    if executor is None:
        say(f"round {r}: voting on {len(tasks)} pairs with {voter}")
        labels, summary = _label_round(config, tasks, voter, rdir / LABELS_NAME, say)
    else:
        from srjudge.train.vote_work import label_pairs_on

        where = f"{executor.spec}, {executor.workers} workers"
        say(f"round {r}: voting on {len(tasks)} pairs with {voter} ({where})")
        labels, summary, failed = label_pairs_on(
            executor, tasks, voter, rdir / LABELS_NAME, min_share=config.min_share, progress=progress
        )
        for key, why in failed:
            say(f"  failed: {key}: {why}")
    say(
        f"round {r}: {summary.labelled}/{summary.pairs} pairs labelled, {summary.skipped} skipped "
        f"(vote share below {config.min_share:g} or unreadable) -> {rdir / LABELS_NAME}"
        + (f"; {len(failed)} pairs failed (voted again on a re-run)" if failed else "")
    )
    return VoteResult(
        round=r, voter=voter, path=str(rdir / LABELS_NAME), labels=tuple(labels), summary=summary
    )


def summary_from_file(path: Path) -> tuple[list[PseudoLabel], LabelSummary]:
    """The labels of a pseudo-label file and their summary; a file mixing several voters is refused."""
    from srjudge.train.pseudo_labels import read_pseudo_labels

    labels = read_pseudo_labels(path)
    if not labels:
        raise SrjudgeError(f"{path} holds no pseudo-label row; run `srjudge evolve vote` first.")
    prints = sorted({label.fingerprint for label in labels})
    if len(prints) > 1:
        raise SrjudgeError(
            f"{path} mixes rows of {len(prints)} labelling runs (other judges or min_share): train on one "
            "run's file; vote again into a fresh round folder."
        )
    skipped = sum(label.skipped for label in labels)
    summary = LabelSummary(
        path=str(path),
        pairs=len(labels),
        new=0,
        reused=len(labels),
        labelled=len(labels) - skipped,
        skipped=skipped,
        fingerprint=prints[0],
    )
    return labels, summary


def _train_and_record(
    config: EvolveConfig,
    rdir: Path,
    r: int,
    *,
    model: str,
    voter: str,
    labels: Sequence[PseudoLabel],
    summary: LabelSummary,
    previous: Sequence[PseudoLabel] | None,
    say: Log,
) -> RoundResult | None:
    """GRPO on ``labels`` from ``model``; process 0 then benches and writes the record and log line.

    Returns None on the other processes of a multi-process run.
    """
    from srjudge.provenance import file_sha256
    from srjudge.train.common import write_training_record
    from srjudge.train.grpo import train_grpo
    from srjudge.train.pseudo_labels import agreement

    labels_path = Path(summary.path)
    agree, common = agreement(previous, labels) if previous is not None else (None, 0)
    say(f"round {r}: GRPO on {2 * summary.labelled} prompts (both orders) from {model}")
    trained = train_grpo(
        labels,
        model,
        rdir,
        settings=config.grpo,
        lora=config.lora,
        seed=config.seed + r,
        max_side=config.max_side,
        prompt=config.prompt,
    )
    gc.collect()
    if not trained.writer:
        return None
    for row in trained.log:
        say(
            "  step {:.0f}: reward {:.3f} (fidelity {:.3f}, format {:.3f})".format(
                row.get("step", 0),
                row.get("reward", float("nan")),
                row.get("rewards/fidelity_reward/mean", float("nan")),
                row.get("rewards/format_reward/mean", float("nan")),
            )
        )
    bench = None
    if config.labelled is not None:
        say(f"round {r}: measuring {trained.model_dir} on {config.labelled}")
        bench = run_bench_measures(config, trained.model_dir, rdir / "bench")
    result = RoundResult(
        round=r,
        voter=voter,
        model=trained.model_dir,
        pairs=summary.pairs,
        labelled=summary.labelled,
        skipped=summary.skipped,
        agreement=agree,
        common_pairs=common,
        steps=trained.steps,
        rewards=trained.log,
        bench=bench,
    )
    metrics = {
        **result.to_dict(),
        "rewards": [dict(x) for x in trained.log],
        "label_fingerprint": summary.fingerprint,
        "labels": summary.to_dict(),
        "training": {k: v for k, v in trained.to_dict().items() if k != "log"},
    }
    write_training_record(
        rdir,
        kind=RECORD_KIND,
        config=config,
        base_model=str(model),
        dataset_digest=file_sha256(labels_path),
        metrics=metrics,
    )
    return result


def _main_process(device: str) -> bool:
    """Whether this is process 0 of the run (accelerate's ``PartialState``; True without a launcher).

    ``cpu`` is passed as trl's trainer will (``use_cpu``), so that a CPU run under ``torchrun``
    forms the same gloo process group the trainer then uses.
    """
    import importlib

    from srjudge.train.common import resolve_train_device
    from srjudge.train.grpo import env_world_size, is_writer

    accelerate = importlib.import_module("accelerate")  # untyped; trl's own dependency
    state = accelerate.PartialState(cpu=resolve_train_device(device) == "cpu")
    return is_writer(int(state.process_index), int(state.num_processes), env_world_size())


def train_stage(
    config: EvolveConfig,
    labels_path: Path,
    *,
    out_dir: Path | None = None,
    round_number: int | None = None,
    from_model: str | None = None,
    log: Log | None = None,
) -> RoundResult | None:
    """The online stage of one round on its own: GRPO on an existing pseudo-label file.

    ``out_dir`` (default: the folder of ``labels_path``) receives ``model/`` (merged; adapter in
    ``model/adapter/``), ``evolve.yaml`` and ``srjudge_training.json``, in the format of
    :func:`run_evolve`, which therefore resumes over staged rounds. The round ``r`` is
    ``round_number``, else read from a ``round-r`` folder name, else 1; it sets the seed
    (``seed + r``, as in :func:`run_evolve`) and, without ``from_model``, the model trained from
    (:func:`model_before`: the base model for round 1, else the sibling ``round-(r-1)/model``).
    When ``out_dir`` is a ``round-r`` folder its parent's ``evolve_log.jsonl`` gets the round's line.

    Runs under ``accelerate launch``: every process reads the same file and builds the same
    dataset; only process 0 (:func:`srjudge.train.grpo.is_writer`) logs and writes; the others
    return None. A round whose record exists is not redone (when made from the same labels).
    """
    from srjudge.models.hf_folder import resolve_model_path
    from srjudge.provenance import file_sha256
    from srjudge.train.common import save_config_yaml
    from srjudge.train.pseudo_labels import read_pseudo_labels

    labels_path = Path(labels_path)
    rdir = Path(out_dir) if out_dir is not None else labels_path.parent
    r = round_number if round_number is not None else (round_of(rdir) or 1)
    if r < 1:
        raise SpecError(f"round must be >= 1, got {r}.")
    main = _main_process(config.grpo.device)
    say: Log = (log or (lambda _msg: None)) if main else (lambda _msg: None)
    labels, summary = summary_from_file(labels_path)
    model = from_model or model_before(config, r, rdir.parent)
    if not model:
        raise SpecError("base_model is not set: give --base-model /path/to/model (a local VLM folder).")
    resolve_model_path(model)
    record_path = rdir / RECORD_NAME
    if record_path.is_file():
        _check_same_settings(config, rdir)
        record = json.loads(record_path.read_text())
        if record.get("dataset_digest") != file_sha256(labels_path):
            raise SrjudgeError(
                f"{record_path} records a round trained on other pseudo-labels than {labels_path}; "
                "use a new --out folder (or delete that one) to train on these."
            )
        done = RoundResult.from_dict({**record.get("metrics", {}), "round": r}, reused=True)
        say(describe(done))
        return done if main else None
    previous = None
    before = round_dir(rdir.parent, r - 1) / LABELS_NAME if round_of(rdir) == r and r > 1 else None
    if before is not None and before.is_file():
        previous = read_pseudo_labels(before)
    if main:
        rdir.mkdir(parents=True, exist_ok=True)
        save_config_yaml(config, rdir / CONFIG_NAME)
    voter = labels[0].judge
    result = _train_and_record(
        config,
        rdir,
        r,
        model=model,
        voter=voter,
        labels=labels,
        summary=summary,
        previous=previous,
        say=say,
    )
    if result is None:
        return None
    if round_of(rdir) == r:
        logged = read_log(rdir.parent)
        if r not in logged:
            _append_log(rdir.parent, result.to_dict())
    say(describe(result))
    return result


def run_evolve(config: EvolveConfig, *, log: Log | None = None) -> EvolveSummary:
    """Run (or resume) every round in one process; see the module docstring for what each round writes."""
    from srjudge.models.hf_folder import resolve_model_path
    from srjudge.train.pseudo_labels import pairs_from_folder, read_pseudo_labels

    say: Log = log or (lambda _msg: None)
    refuse_multi_process("srjudge evolve")
    config.check_inputs()
    resolve_model_path(config.base_model)  # a clear error now rather than after voting
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = pairs_from_folder(
        Path(config.images).resolve(), layout=config.layout, max_pairs=config.max_pairs, seed=config.seed
    )
    say(f"{len(tasks)} pairs from {config.images}; {config.rounds} round(s) into {out}")
    logged = read_log(out)

    baseline: dict[str, Any] | None = None
    if config.labelled is not None:
        if 0 in logged and logged[0].get("bench", {}).get("dataset") == str(config.labelled):
            baseline = logged[0]["bench"]
        else:
            say(f"round 0: measuring the base model on {config.labelled}")
            baseline = run_bench_measures(config, config.base_model, out / "round-0" / "bench")
            _append_log(out, {"round": 0, "model": config.base_model, "bench": baseline})
        say(f"round 0 (base model): bench {_bench_text(baseline)}")

    results: list[RoundResult] = []
    model = config.base_model
    previous: list[PseudoLabel] | None = None
    for r in range(1, config.rounds + 1):
        rdir = round_dir(out, r)
        labels_path = rdir / LABELS_NAME
        record_path = rdir / RECORD_NAME
        if record_path.is_file():
            _check_same_settings(config, rdir)
            record = json.loads(record_path.read_text())
            metrics = record.get("metrics", {})
            result = RoundResult.from_dict({**metrics, "round": r}, reused=True)
            if not (Path(result.model) / "config.json").is_file():
                raise SrjudgeError(
                    f"{record_path} says round {r} finished, but its model {result.model} is missing; "
                    f"delete {rdir} to redo the round."
                )
            if r not in logged:
                _append_log(out, result.to_dict())
            say(describe(result))
            results.append(result)
            model = result.model
            previous = read_pseudo_labels(labels_path, metrics.get("label_fingerprint"))
            continue

        voter = config.first_judge if (r == 1 and config.first_judge) else voter_spec(config, model)
        vote = vote_round(config, r, voter=voter, tasks=tasks, log=say)
        labels = list(vote.labels)
        trained = _train_and_record(
            config,
            rdir,
            r,
            model=model,
            voter=voter,
            labels=labels,
            summary=vote.summary,
            previous=previous,
            say=say,
        )
        assert trained is not None  # one process: always the writer
        _append_log(out, trained.to_dict())
        say(describe(trained))
        results.append(trained)
        model = trained.model
        previous = labels
    return EvolveSummary(out=str(out), baseline=baseline, rounds=tuple(results))


def with_overrides(config: EvolveConfig, **changes: Any) -> EvolveConfig:
    """``config`` with the non-None top-level ``changes`` and ``grpo__<name>`` changes applied."""
    top = {k: v for k, v in changes.items() if v is not None and not k.startswith("grpo__")}
    grpo = {
        k.removeprefix("grpo__"): v for k, v in changes.items() if v is not None and k.startswith("grpo__")
    }
    if grpo:
        top["grpo"] = dataclasses.replace(config.grpo, **grpo)
    return dataclasses.replace(config, **top)


__all__ = [
    "EvolveConfig",
    "EvolveSummary",
    "RoundResult",
    "VoteResult",
    "bench_spec",
    "default_voter",
    "describe",
    "model_before",
    "read_log",
    "refuse_multi_process",
    "round_dir",
    "round_of",
    "run_bench_measures",
    "run_evolve",
    "summary_from_file",
    "train_stage",
    "vote_round",
    "voter_spec",
    "with_overrides",
]
