"""EvoQuality self-evolution: rewards, vote logic, pseudo-labels, GRPO on the tiny VLM, the evolve CLI.

The tiny random-weight Qwen2-VL writes garbage, so a "decisive" copy is made here: its LM head is
zeroed except for the tokens " first" and " second", which share one row (a logit of about 6.6 at
the answer, against 0 for the other 510 tokens). Sampled answers are then " first" or " second"
(about 37 % each) or garbage: readable votes that differ between samples, and GRPO groups whose
rewards differ (so the LoRA weights move), without any mock. The votes carry no quality signal;
the tests check the machinery, not what the model learns.

Torch runs single-threaded in this module: on a shared 2-core machine two threads contend and
generation runs 10-30 times slower.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import srjudge.cli.evolve_cmd  # registers `srjudge evolve`
import srjudge.cli.main  # noqa: F401  (the other commands: with one command Typer would drop its name)
from srjudge.cli.common import app
from srjudge.errors import SpecError, SrjudgeError
from srjudge.images.io import save_png
from srjudge.jsonl import open_for_append
from srjudge.judges import create_judge
from srjudge.judges.vlm import VLMJudge
from srjudge.provenance import file_sha256
from srjudge.train.evolve import EvolveConfig, read_log
from srjudge.train.grpo import (
    GRPOSettings,
    fidelity,
    fidelity_reward,
    format_reward,
    is_writer,
    pairwise_messages,
    pairwise_template,
    train_grpo,
    training_rows,
)
from srjudge.train.pseudo_labels import (
    PairTask,
    agreement,
    decide,
    label_from_votes,
    label_pairs,
    pairs_from_folder,
    plan_pairs,
    read_pseudo_labels,
    votes_from_winners,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> object:
    """Single-threaded torch for this module (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _msg(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


# ----------------------------------------------------------------------------------------------------------
# Rewards and vote logic (pure)
# ----------------------------------------------------------------------------------------------------------


def test_fidelity_reward_on_hand_made_completions() -> None:
    """r = sqrt(p* p) + sqrt((1-p*)(1-p)); unparseable answers get 0; the format reward reads the parser."""
    completions = [
        _msg("first"),
        _msg("Second."),
        _msg("tie"),
        _msg("I think **first** is better"),
        _msg("zzz"),
    ]
    p_first = [0.8] * 5
    rewards = fidelity_reward([None] * 5, completions, p_first=p_first)
    assert rewards[0] == pytest.approx(math.sqrt(0.8))
    assert rewards[1] == pytest.approx(math.sqrt(0.2))
    assert rewards[2] == pytest.approx(math.sqrt(0.4) + math.sqrt(0.1))
    assert rewards[3] == pytest.approx(math.sqrt(0.8))
    assert rewards[4] == 0.0
    assert fidelity(1.0, 1.0) == pytest.approx(1.0) and fidelity(1.0, 0.0) == pytest.approx(0.0)
    assert format_reward([None] * 5, completions) == [1.0, 1.0, 1.0, 1.0, 0.0]
    # plain strings (standard format) and refusals
    assert format_reward([None, None], ["tie", "I'm sorry, I cannot evaluate this"]) == [1.0, 0.0]
    with pytest.raises(SrjudgeError, match="p_first"):
        fidelity_reward([None], [_msg("first")])


def test_majority_and_threshold_on_hand_made_votes() -> None:
    """Vote share of A counts ties as half; the winner needs min_share; splits and no votes are skipped."""
    d = decide({"A": 6, "B": 2, "tie": 0}, 0.75)
    assert (d.winner, d.skipped, d.vote_share, d.p_a) == ("A", False, 0.75, 0.75)
    assert d.margin == pytest.approx(50.0)
    d = decide({"A": 1, "B": 6, "tie": 1}, 0.75)
    assert (d.winner, d.skipped) == ("B", False) and d.p_a == pytest.approx(1.5 / 8)
    d = decide({"A": 5, "B": 3, "tie": 0}, 0.75)
    assert d.skipped and d.winner == "A" and "below min_share 0.75" in (d.reason or "")
    d = decide({"A": 2, "B": 2, "tie": 4})
    assert d.skipped and d.winner is None and "no majority" in (d.reason or "")
    assert decide({}).reason == "no vote could be read"
    assert not decide({"A": 5, "B": 3}, 0.5).skipped
    with pytest.raises(SpecError, match="min_share"):
        decide({"A": 1}, 0.4)
    with pytest.raises(SpecError, match="only count"):
        decide({"first": 1})
    assert votes_from_winners("A", "B") == ({"A": 2, "B": 0, "tie": 0}, 1.0)
    assert votes_from_winners("A", "A") == ({"A": 1, "B": 1, "tie": 0}, 0.0)


def test_pairs_are_seeded_and_training_rows_have_both_orders() -> None:
    """Pairs within groups, capped and seeded; each labelled pair trains in both orders with p_first."""
    groups = [("x", "lr.png", ["a", "b", "c"]), ("y", None, ["d", "e"])]
    all_pairs = plan_pairs(groups, max_pairs=None, seed=0)
    assert [t.key for t in all_pairs] == ["a|b", "a|c", "b|c", "d|e"]
    assert all_pairs[0].lr == "lr.png" and all_pairs[3].lr is None
    capped = plan_pairs(groups, max_pairs=2, seed=3)
    assert len(capped) == 2 and capped == plan_pairs(groups, max_pairs=2, seed=3)
    assert {t.key for t in capped} < {t.key for t in all_pairs}
    labels = [
        label_from_votes(PairTask("a", "b"), {"A": 3, "B": 1}, 0.5, judge="j", min_share=0.75),
        label_from_votes(PairTask("a", "c"), {"A": 2, "B": 2}, 0.5, judge="j", min_share=0.75),
    ]
    rows = training_rows(labels)
    assert [(r.first, r.second, r.order) for r in rows] == [("a", "b", "AB"), ("b", "a", "BA")]
    assert rows[0].p_first == pytest.approx(0.75) and rows[1].p_first == pytest.approx(0.25)
    later = [label_from_votes(PairTask("a", "b"), {"B": 4}, 1.0, judge="j", min_share=0.75)]
    assert agreement(labels, later) == (0.0, 1) and agreement(labels, labels) == (1.0, 1)


# ----------------------------------------------------------------------------------------------------------
# Fixtures: images and the decisive tiny VLM
# ----------------------------------------------------------------------------------------------------------


def _write_images(folder: Path, n: int, size: int = 56) -> list[Path]:
    """``n`` seeded images, each progressively blurrier (a sharpness judge has clear preferences)."""
    rng = np.random.default_rng(0)
    base = rng.random((size, size, 3)).astype(np.float32)
    paths = []
    img = base
    for i in range(n):
        paths.append(save_png(folder / f"img{i}.png", img))
        img = (img + np.roll(img, 1, axis=0) + np.roll(img, 1, axis=1)) / 3.0
    return paths


@pytest.fixture(scope="module")
def decisive_vlm(tiny_vlm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny VLM with an LM head that only says " first" or " second" (see the module docstring)."""
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    dst = tmp_path_factory.mktemp("decisive") / "model"
    shutil.copytree(tiny_vlm, dst)
    tok = AutoTokenizer.from_pretrained(str(dst))
    first, second = tok.encode(" first")[0], tok.encode(" second")[0]
    model = AutoModelForImageTextToText.from_pretrained(str(dst), dtype=torch.float32)
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        w = head[first].clone()
        w = w / w.norm() * 6.0
        head.zero_()
        head[first] = w
        head[second] = w
    model.save_pretrained(str(dst))
    return dst


@pytest.fixture(scope="module")
def opinionated_vlm(decisive_vlm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The decisive VLM, made to prefer img0 over img1 in both orders (a position-consistent opinion).

    With equal logits for " first" and " second" the seeded samples of the two orders mirror each
    other, so every pair splits evenly and nothing is labelled. Here the two rows differ by +-s v,
    with v the direction in which the last hidden state moves when img0 and img1 swap places
    (orthogonal to their mean), so that pair gets a clear majority and the pipeline has data.
    """
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from srjudge.images.io import load_image
    from srjudge.models.hf_folder import load_processor
    from srjudge.vlm.backends.hf_backend import to_pil
    from srjudge.vlm.images import fit_longest_side

    images = _write_images(tmp_path_factory.mktemp("opinion-imgs"), 2)
    a, b = (to_pil(fit_longest_side(load_image(p), 768)[0]) for p in images)
    dst = tmp_path_factory.mktemp("opinionated") / "model"
    shutil.copytree(decisive_vlm, dst)
    processor = load_processor(dst)
    model = AutoModelForImageTextToText.from_pretrained(str(dst), dtype=torch.float32)
    text = processor.apply_chat_template(
        pairwise_messages(pairwise_template()), tokenize=False, add_generation_prompt=True
    )

    def last_hidden(x: object, y: object) -> torch.Tensor:
        inputs = processor(text=[text], images=[[x, y]], return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            return model.model(**inputs).last_hidden_state[0, -1].float()

    h_ab, h_ba = last_hidden(a, b), last_hidden(b, a)
    mean, d = (h_ab + h_ba) / 2, h_ab - h_ba
    v = d - (d @ mean) / (mean @ mean) * mean
    tok = AutoTokenizer.from_pretrained(str(dst))
    first, second = tok.encode(" first")[0], tok.encode(" second")[0]
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        shift = v / float(v @ h_ab) * 2.0  # +-2 logits between the two words for this pair
        row = head[first].clone()
        head[first] = row + shift
        head[second] = row - shift
    model.save_pretrained(str(dst))
    return dst


# ----------------------------------------------------------------------------------------------------------
# Offline stage
# ----------------------------------------------------------------------------------------------------------


def test_offline_stage_with_a_metric_judge_resumes(tmp_path: Path) -> None:
    """A no-reference metric votes in both orders; sharper images win; a re-run reuses every row."""
    images = tmp_path / "imgs"
    paths = _write_images(images, 4)
    tasks = pairs_from_folder(images)
    assert len(tasks) == 6 and all(t.lr is None for t in tasks)
    out = tmp_path / "labels.jsonl"
    judge = create_judge("sharpness")
    summary = label_pairs(tasks, judge, out, min_share=0.75)
    assert (summary.pairs, summary.new, summary.labelled) == (6, 6, 6)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6
    for row in rows:
        # image i is sharper than image j > i: A (the lower index) always wins, unanimously
        assert (
            row["winner"] == "A" and row["vote_share"] == 1.0 and row["votes"] == {"A": 2, "B": 0, "tie": 0}
        )
        assert row["position_consistency"] == 1.0 and row["judge"] == judge.spec and row["lr"] is None
        assert row["image_a"] in map(str, paths) and not row["skipped"]
    # an interrupted run: drop the last two rows and cut a line in half; only those are judged again
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:4]) + "\n" + lines[4][:30])
    again = label_pairs(tasks, judge, out, min_share=0.75)
    assert (again.new, again.reused) == (2, 4)
    assert len(read_pseudo_labels(out, again.fingerprint)) == 6


def test_offline_stage_select_layout_with_the_tiny_vlm(decisive_vlm: Path, tmp_path: Path) -> None:
    """The select layout pairs candidates within each LR input; the pairwise VLM votes K per order."""
    root = tmp_path / "sets"
    for item in ("p", "q"):
        _write_images(root / item / "candidates", 3)
        save_png(root / item / "lr.png", np.full((14, 14, 3), 0.5, np.float32))
    tasks = pairs_from_folder(root)
    assert len(tasks) == 6 and {t.group for t in tasks} == {"p", "q"}
    assert all(t.lr is not None and t.lr.endswith("lr.png") for t in tasks)
    spec = f"vlm:hf,model={decisive_vlm},protocol=pairwise,samples=2,temperature=1,cache=off"
    judge = create_judge(spec)
    summary = label_pairs(tasks[:3], judge, tmp_path / "l.jsonl", min_share=0.5, judge_spec=spec)
    labels = read_pseudo_labels(tmp_path / "l.jsonl")
    assert summary.pairs == 3 and len(labels) == 3
    for label in labels:
        assert sum(label.votes.values()) == 4  # 2 samples x 2 orders, all readable
        assert label.judge == spec and label.position_consistency is not None
        if not label.skipped:
            assert label.winner in ("A", "B") and label.vote_share is not None and label.vote_share > 0.5


# ----------------------------------------------------------------------------------------------------------
# Online stage
# ----------------------------------------------------------------------------------------------------------


def test_policy_prompt_is_the_pairwise_protocol_prompt(decisive_vlm: Path) -> None:
    """The GRPO prompt renders to exactly the text the pairwise judge sends to the hf backend."""
    judge = create_judge(f"vlm:hf,model={decisive_vlm},protocol=pairwise,cache=off")
    assert isinstance(judge, VLMJudge)
    sent = []
    original = judge.backend.complete

    def spy(requests, on_result=None):  # type: ignore[no-untyped-def]
        sent.extend(requests)
        return original(requests, on_result)

    judge.backend.complete = spy  # type: ignore[method-assign]
    img = np.zeros((56, 56, 3), np.float32)
    judge.compare(img, img)
    rendered = judge.backend.render(sent[0])  # type: ignore[attr-defined]
    processor = judge.backend.processor  # type: ignore[attr-defined]
    ours = processor.apply_chat_template(
        pairwise_messages(pairwise_template()), tokenize=False, add_generation_prompt=True
    )
    assert rendered == ours and rendered.count("<|image_pad|>") == 2


def test_grpo_changes_lora_and_the_saved_model_judges_the_same(decisive_vlm: Path, tmp_path: Path) -> None:
    """Two GRPO steps move the LoRA weights; the merged model reloads and compares identically."""
    from safetensors.torch import load_file

    paths = [str(p) for p in _write_images(tmp_path / "imgs", 3)]
    labels = [
        label_from_votes(PairTask(paths[0], paths[1]), {"A": 4}, 1.0, judge="j", min_share=0.75),
        label_from_votes(PairTask(paths[1], paths[2]), {"B": 3, "A": 1}, 0.5, judge="j", min_share=0.75),
    ]
    settings = GRPOSettings(
        max_steps=2,
        num_generations=4,
        batch_size=4,
        max_completion_length=2,
        learning_rate=5e-2,
        device="cpu",
    )
    from srjudge.train.common import LoraSettings

    result = train_grpo(
        labels,
        decisive_vlm,
        tmp_path / "run",
        settings=settings,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0),
        seed=0,
    )
    assert result.steps == 2 and len(result.log) == 2 and result.rows == 4 and result.pairs == 2
    assert all(
        "rewards/fidelity_reward/mean" in row and "rewards/format_reward/mean" in row for row in result.log
    )
    assert any(row["reward_std"] > 0 for row in result.log)  # some group had differing rewards
    assert result.adapter_dir is not None
    adapter = load_file(str(Path(result.adapter_dir) / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # lora_B starts at zero
    assert not (Path(result.adapter_dir) / "ref").exists()

    # the merged folder equals the base model plus the saved adapter
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    ids = AutoTokenizer.from_pretrained(result.model_dir)("Which image is better? first", return_tensors="pt")
    merged = AutoModelForImageTextToText.from_pretrained(result.model_dir, dtype=torch.float32)
    base = AutoModelForImageTextToText.from_pretrained(str(decisive_vlm), dtype=torch.float32)
    with torch.no_grad():
        moved = (merged(**ids).logits - base(**ids).logits).abs().max()
        adapted = PeftModel.from_pretrained(base, result.adapter_dir)(**ids).logits
        assert float((merged(**ids).logits - adapted).abs().max()) < 1e-4 < float(moved)

    # the saved folder is a pairwise judge; greedy comparisons are the same on every load
    spec = f"vlm:hf,model={result.model_dir},protocol=pairwise,cache=off"
    a, b = np.zeros((56, 56, 3), np.float32), np.ones((56, 56, 3), np.float32) * 0.7
    first = create_judge(spec).compare(a, b)
    second = create_judge(spec).compare(a, b)
    assert first.to_dict()["votes"] == second.to_dict()["votes"] and first.winner == second.winner
    assert first.margin == second.margin


# ----------------------------------------------------------------------------------------------------------
# Iterations through the CLI
# ----------------------------------------------------------------------------------------------------------


def test_evolve_two_rounds_via_cli_and_resume(opinionated_vlm: Path, tmp_path: Path) -> None:
    """Two rounds end to end: labels, merged models, records, the log; a re-run redoes nothing."""
    images = tmp_path / "imgs"
    _write_images(images, 3)
    out = tmp_path / "out"
    cfg = tmp_path / "evolve.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["evolve", "--write-config", str(cfg)])
    assert result.exit_code == 0, result.output
    default = cfg.read_text()
    assert "min_share: 0.75" in default and "grpo:" in default and "lora:" in default
    args = [
        "evolve", "--base-model", str(opinionated_vlm), "--images", str(images), "--out", str(out),
        "--rounds", "2", "--samples", "2", "--temperature", "1.0", "--min-share", "0.5",
        "--steps", "1", "--num-generations", "4", "--batch-size", "4", "--device", "cpu",
        "--write-config", str(cfg),
    ]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    loaded = cfg.read_text()
    assert "rounds: 2" in loaded and "max_steps: 1" in loaded
    result = runner.invoke(app, ["evolve", "--config", str(cfg), "--max-pairs", "3"])
    assert result.exit_code == 0, result.output
    for r in (1, 2):
        rdir = out / f"round-{r}"
        assert (rdir / "model" / "config.json").is_file() and (rdir / "model" / "adapter").is_dir()
        assert (rdir / "evolve.yaml").is_file() and (rdir / "pseudo_labels.jsonl").is_file()
        record = json.loads((rdir / "srjudge_training.json").read_text())
        assert record["dataset_digest"] == file_sha256(rdir / "pseudo_labels.jsonl")
        assert record["kind"] == "evolve-grpo" and len(record["metrics"]["rewards"]) == 1
    record2 = json.loads((out / "round-2" / "srjudge_training.json").read_text())
    assert record2["base_model"] == str(out / "round-1" / "model")
    assert str(out / "round-1" / "model") in record2["metrics"]["voter"]
    log = read_log(out)
    assert sorted(log) == [1, 2] and log[1]["agreement_with_previous"] is None
    assert log[2]["pairs"] == 3
    # agreement counted independently from the two label files: pairs labelled (not skipped) in both
    firsts, seconds = ({x.key: x for x in read_pseudo_labels(out / f"round-{r}" / "pseudo_labels.jsonl")
                        if not x.skipped} for r in (1, 2))  # fmt: skip
    common = sorted(set(firsts) & set(seconds))
    assert common and log[2]["common_pairs"] == len(common)
    same = sum(firsts[k].winner == seconds[k].winner for k in common)
    assert log[2]["agreement_with_previous"] == pytest.approx(same / len(common))
    stamp = (out / "round-1" / "srjudge_training.json").stat().st_mtime_ns
    again = runner.invoke(app, ["evolve", "--config", str(cfg), "--max-pairs", "3"])
    assert again.exit_code == 0, again.output
    assert "not redone" in again.output
    assert (out / "round-1" / "srjudge_training.json").stat().st_mtime_ns == stamp
    assert len((out / "evolve_log.jsonl").read_text().splitlines()) == 2
    changed = runner.invoke(app, ["evolve", "--config", str(cfg), "--max-pairs", "3", "--min-share", "0.9"])
    assert isinstance(changed.exception, SrjudgeError) and "min_share" in str(changed.exception)

    # the same round in stages: `evolve vote`, then `evolve train` on the pseudo-label file
    staged_cfg = tmp_path / "staged.yaml"
    w = runner.invoke(
        app, ["evolve", "--config", str(cfg), "--max-pairs", "3", "--write-config", str(staged_cfg)]
    )
    assert w.exit_code == 0, w.output
    staged = tmp_path / "staged"
    vote = runner.invoke(
        app, ["evolve", "vote", "--config", str(staged_cfg), "--out", str(staged), "--round", "1"]
    )
    assert vote.exit_code == 0, vote.output
    labels = staged / "round-1" / "pseudo_labels.jsonl"
    assert file_sha256(labels) == file_sha256(out / "round-1" / "pseudo_labels.jsonl")
    train = runner.invoke(app, ["evolve", "train", "--config", str(staged_cfg), "--labels", str(labels)])
    assert train.exit_code == 0, train.output
    revote = runner.invoke(
        app, ["evolve", "vote", "--config", str(staged_cfg), "--out", str(staged), "--round", "1"]
    )  # a finished round's labels and evolve.yaml stay as its model was trained with
    assert isinstance(revote.exception, SrjudgeError) and "round-1" in str(revote.exception)
    staged_record = json.loads((staged / "round-1" / "srjudge_training.json").read_text())
    full_record = json.loads((out / "round-1" / "srjudge_training.json").read_text())
    assert staged_record["dataset_digest"] == full_record["dataset_digest"]
    assert staged_record["base_model"] == str(opinionated_vlm)
    assert staged_record["metrics"]["rewards"] == full_record["metrics"]["rewards"]
    from safetensors.torch import load_file

    adapters = [
        load_file(str(d / "round-1" / "model" / "adapter" / "adapter_model.safetensors"))
        for d in (out, staged)
    ]
    assert adapters[0].keys() == adapters[1].keys()
    assert all(torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0])  # same seed, same labels
    assert any(float(v.abs().max()) > 0 for k, v in adapters[1].items() if "lora_B" in k)  # it trained
    model_dir = staged / "round-1" / "model"
    pair = np.zeros((56, 56, 3), np.float32), np.full((56, 56, 3), 0.7, np.float32)
    verdicts = [
        create_judge(f"vlm:hf,model={d},protocol=pairwise,cache=off").compare(*pair)
        for d in (model_dir, out / "round-1" / "model")
    ]  # the staged model, reloaded, judges as the one-process run's round-1 model does
    assert verdicts[0].to_dict()["votes"] == verdicts[1].to_dict()["votes"]
    assert (verdicts[0].winner, verdicts[0].margin) == (verdicts[1].winner, verdicts[1].margin)
    assert read_log(staged)[1]["model"] == str(model_dir)
    # the all-rounds command resumes over the staged round; round 2's vote needs round 1's model first
    resumed = runner.invoke(
        app, ["evolve", "--config", str(staged_cfg), "--out", str(staged), "--rounds", "1"]
    )
    assert resumed.exit_code == 0 and "not redone" in resumed.output, resumed.output
    early = runner.invoke(
        app, ["evolve", "vote", "--config", str(staged_cfg), "--out", str(staged), "-r", "3"]
    )
    assert isinstance(early.exception, SrjudgeError) and "round-2/model" in str(early.exception)


def test_config_errors_are_clear(tmp_path: Path) -> None:
    """Bad settings name the setting and the fix."""
    with pytest.raises(SpecError, match="multiple of"):
        GRPOSettings(num_generations=3, batch_size=4)
    with pytest.raises(SpecError, match="temperature"):
        EvolveConfig(samples=4, temperature=0.0)
    with pytest.raises(SpecError, match="base_model is not set"):
        EvolveConfig(images=str(tmp_path)).check_inputs()
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_shares: 0.8\n")
    result = CliRunner().invoke(app, ["evolve", "--config", str(bad)])
    assert isinstance(result.exception, SpecError) and "min_share" in str(result.exception)


def test_only_process_zero_writes() -> None:
    """The "who writes" decision: process 0 of a run; a launcher/accelerate mismatch is refused."""
    assert is_writer(0, 1) and is_writer(0, 1, world_size_env=1)
    assert is_writer(0, 8, world_size_env=8)
    assert not any(is_writer(i, 8, world_size_env=8) for i in range(1, 8))
    with pytest.raises(SrjudgeError, match="accelerate launch --num_processes"):
        is_writer(0, 1, world_size_env=4)  # WORLD_SIZE=4 but no distributed state: all would write
    with pytest.raises(SrjudgeError, match="not within"):
        is_writer(2, 2)


def test_single_process_commands_refuse_world_size(tmp_path: Path) -> None:
    """`srjudge evolve` and `evolve vote` refuse WORLD_SIZE > 1 and name the staged commands."""
    runner = CliRunner()
    cfg = tmp_path / "c.yaml"
    assert runner.invoke(app, ["evolve", "--write-config", str(cfg)]).exit_code == 0
    for args in (["evolve", "--config", str(cfg)], ["evolve", "vote", "--config", str(cfg)]):
        result = runner.invoke(app, args, env={"WORLD_SIZE": "2"})
        assert isinstance(result.exception, SrjudgeError), result.output
        message = str(result.exception)
        assert "WORLD_SIZE=2" in message and "srjudge evolve vote" in message
        assert "accelerate launch --num_processes N -m srjudge.cli.main evolve train" in message
    misplaced = runner.invoke(app, ["evolve", "--seed", "1", "vote", "--config", str(cfg)])
    assert isinstance(misplaced.exception, SpecError) and "--seed" in str(misplaced.exception)


def test_bench_measures_of_a_round_model(decisive_vlm: Path, tmp_path: Path) -> None:
    """--labelled runs srjudge bench on a model folder and keeps the point estimates and the spec."""
    from srjudge.bench.synthetic import make_synthetic
    from srjudge.train.evolve import run_bench_measures

    data = make_synthetic(tmp_path / "data", "mos", seed=0, n_photos=1, levels=2)
    config = EvolveConfig(labelled=str(data), bench_protocol="level", bench_bootstrap=20, max_side=64)
    measures = run_bench_measures(config, str(decisive_vlm), tmp_path / "bench")
    assert measures["judge"].startswith(f"vlm:hf,model={decisive_vlm},protocol=level")
    assert measures["n"] == 4 and {"srcc", "plcc", "krcc"} <= set(measures)
    assert (tmp_path / "bench" / "table.json").is_file()


def test_jsonl_readers_tolerate_only_a_cut_last_line(tmp_path: Path) -> None:
    """A write cut by an interruption (unterminated last line) is left out and dropped on the next append;
    a bad line anywhere else is corruption and raises, naming the file and line."""
    row = {"image_a": "a.png", "image_b": "b.png", "winner": "A", "judge": "j", "skipped": False}
    labels = tmp_path / "pseudo_labels.jsonl"
    labels.write_text(json.dumps(row) + "\n" + '{"image_a": "c.p')
    assert [x.key for x in read_pseudo_labels(labels)] == ["a.png|b.png"]
    with open_for_append(labels) as handle:
        handle.write(json.dumps({**row, "image_a": "c.png"}) + "\n")
    assert [x.key for x in read_pseudo_labels(labels)] == ["a.png|b.png", "c.png|b.png"]
    labels.write_text(json.dumps(row) + "\n" + '{"image_a": "c.p\n' + json.dumps(row) + "\n")
    with pytest.raises(SrjudgeError, match=r"pseudo_labels\.jsonl:2: not valid JSON"):
        read_pseudo_labels(labels)
    (tmp_path / "evolve_log.jsonl").write_text('{"round": 1}\nnot json\n')
    with pytest.raises(SrjudgeError, match=r"evolve_log\.jsonl:2: not valid JSON"):
        read_log(tmp_path)
    (tmp_path / "evolve_log.jsonl").write_text('{"round": 1}\n{"rou')
    assert sorted(read_log(tmp_path)) == [1]
