"""The LR-conditioned reward model: pairs, synthetic generator, Bradley-Terry training, the reward judge."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import srjudge.cli.reward_cmd  # registers `srjudge reward`
import srjudge.judges.reward  # noqa: F401  (registers the reward judge)
from srjudge.cli.common import app
from srjudge.errors import MissingWeightsError, SrjudgeError
from srjudge.images.io import load_image, save_png
from srjudge.judges import create_judge
from srjudge.models.reward_net import HEAD_FILE, META_FILE, PROMPT_VERSION, LRConditionedRewardModel
from srjudge.train.reward_pairs import (
    GRADES,
    PairsError,
    convert_pseudo_labels,
    load_pairs,
    make_synthetic_pairs,
    split_by_lr,
    write_pairs,
)
from srjudge.train.reward_train import RewardConfig, bt_loss

runner = CliRunner()


def _invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Graded synthetic pairs from three bundled photos at 32x32 (LR 8x8)."""
    return make_synthetic_pairs(
        tmp_path_factory.mktemp("pairs"), size=32, photos=["astronaut", "coffee", "camera"], seed=0
    )


@pytest.fixture(scope="module")
def small_pairs(synthetic: Path) -> Path:
    """2 pairs per LR image (6 in all): HR vs strong blur, mild noise vs patch swap."""
    keep = {("hr", "blur-strong"), ("noise-mild", "patch-swap")}
    rows = [json.loads(line) for line in synthetic.read_text().splitlines()]
    chosen = [r for r in rows if (r["meta"]["preferred_kind"], r["meta"]["rejected_kind"]) in keep]
    assert len(chosen) == 6
    out = synthetic.parent / "small.jsonl"
    write_pairs(out, chosen)
    return out


@pytest.fixture(scope="module")
def trained(small_pairs: Path, tiny_vlm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model trained 2 steps through the CLI (`srjudge reward train --config`), LoRA r=4."""
    out = tmp_path_factory.mktemp("rm")
    cfg = out.parent / "reward.yaml"
    cfg.write_text(
        "max_steps: 2\nbatch_size: 2\ngrad_accum: 1\nlearning_rate: 0.01\nmax_side: 56\ndevice: cpu\n"
        "heldout_fraction: 0.2\nsave_steps: 1\nlogging_steps: 1\nmargin_weight: 0.1\n"
        "lora: {r: 4, alpha: 8, dropout: 0.0}\n"
    )
    _invoke(
        [
            "reward",
            "train",
            "--pairs",
            str(small_pairs),
            "--model",
            str(tiny_vlm),
            "--out",
            str(out),
            "-c",
            str(cfg),
        ]
    )
    return out


def test_bt_loss_equals_log1p_exp_of_minus_difference() -> None:
    """-log sigmoid(d) = log(1 + e^-d), averaged; the margin shifts d."""
    chosen = torch.tensor([2.0, 0.5, -1.0])
    rejected = torch.tensor([1.0, 1.5, -1.0])
    d = (chosen - rejected).numpy()
    expected = float(np.mean(np.log1p(np.exp(-d))))
    assert float(bt_loss(chosen, rejected)) == pytest.approx(expected, abs=1e-6)
    margin = torch.tensor([0.5, 0.0, 1.0])
    expected_m = float(np.mean(np.log1p(np.exp(-(d - margin.numpy())))))
    assert float(bt_loss(chosen, rejected, margin)) == pytest.approx(expected_m, abs=1e-6)
    assert float(bt_loss(torch.tensor([0.0]), torch.tensor([0.0]))) == pytest.approx(math.log(2), abs=1e-7)


def test_pairs_validation_lists_every_problem_with_its_row(tmp_path: Path) -> None:
    """Missing file, same file, byte-identical images, HR not LR x integer, bad source: all reported."""
    rng = np.random.default_rng(0)
    save_png(tmp_path / "lr.png", rng.random((16, 16, 3)))
    save_png(tmp_path / "a.png", rng.random((64, 64, 3)))
    save_png(tmp_path / "b.png", rng.random((64, 64, 3)))
    shutil.copy(tmp_path / "a.png", tmp_path / "a_copy.png")
    save_png(tmp_path / "odd.png", rng.random((60, 60, 3)))
    rows = [
        {"lr": "lr.png", "preferred": "a.png", "rejected": "b.png", "source": "human", "margin": 1.0},
        {"lr": "lr.png", "preferred": "a.png", "rejected": "gone.png", "source": "human"},
        {"lr": "lr.png", "preferred": "a.png", "rejected": "a.png", "source": "human"},
        {"lr": "lr.png", "preferred": "a.png", "rejected": "a_copy.png", "source": "human"},
        {"lr": "lr.png", "preferred": "odd.png", "rejected": "odd.png", "source": "human"},
        {"lr": "lr.png", "preferred": "a.png", "rejected": "b.png", "source": "crowd", "margin": -1},
    ]
    path = write_pairs(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(PairsError) as info:
        load_pairs(path)
    rows_hit = sorted({p.row for p in info.value.problems})
    assert rows_hit == [2, 3, 4, 5, 6]
    text = str(info.value)
    assert "row 2:" in text and "gone.png does not exist" in text
    assert "same file" in text and "byte-identical" in text
    assert '60x60 and "lr" is 16x16' in text
    assert "source" in text and "margin" in text
    ok = load_pairs(write_pairs(tmp_path / "ok.jsonl", rows[:1]))
    assert len(ok.pairs) == 1 and ok.pairs[0].margin == 1.0 and not ok.synthetic


def test_synthetic_pairs_are_deterministic_and_labelled(synthetic: Path, tmp_path: Path) -> None:
    """Same seed -> same bytes; another seed -> other images; 'synthetic' in every row and dataset.json."""
    again = make_synthetic_pairs(tmp_path / "a", size=32, photos=["astronaut", "coffee", "camera"], seed=0)
    other = make_synthetic_pairs(tmp_path / "b", size=32, photos=["astronaut", "coffee", "camera"], seed=1)
    assert again.read_bytes() == synthetic.read_bytes()
    files = sorted(p.relative_to(synthetic.parent) for p in synthetic.parent.rglob("*.png"))
    assert len(files) == 3 * (1 + len(GRADES))
    assert all((again.parent / f).read_bytes() == (synthetic.parent / f).read_bytes() for f in files)
    assert any((other.parent / f).read_bytes() != (synthetic.parent / f).read_bytes() for f in files)
    data = load_pairs(synthetic)
    assert data.synthetic and data.sources == {"synthetic": len(data.pairs)}
    meta = json.loads((synthetic.parent / "dataset.json").read_text())
    assert meta["synthetic"] is True and "NOT human opinion" in meta["description"]
    for pair in data.pairs:
        good, poor = pair.meta["preferred_kind"], pair.meta["rejected_kind"]
        assert GRADES[good] < GRADES[poor] and pair.margin == GRADES[poor] - GRADES[good]
        assert load_image(pair.preferred).shape == (32, 32, 3) and load_image(pair.lr).shape == (8, 8, 3)


def test_heldout_split_never_shares_an_lr(synthetic: Path) -> None:
    """For several seeds: held-out and train LR sets are disjoint and cover every pair."""
    pairs = load_pairs(synthetic).pairs
    seen = set()
    for seed in range(5):
        train, held = split_by_lr(pairs, 0.34, seed)
        assert not {p.lr for p in train} & {p.lr for p in held}
        assert len(train) + len(held) == len(pairs) and held
        seen.add(frozenset(p.lr for p in held))
    assert len(seen) > 1  # the seed matters


def test_pseudo_labels_convert_and_rows_without_lr_are_rejected(synthetic: Path, tmp_path: Path) -> None:
    """evolve rows (image_a, image_b, lr, winner, vote_share) become pairs; skipped rows are left out."""
    root = synthetic.parent
    a, b = root / "candidates/coffee/hr.png", root / "candidates/coffee/blur-strong.png"
    lr = root / "lr/coffee.png"
    good = [
        {"image_a": str(b), "image_b": str(a), "lr": str(lr), "winner": "B", "vote_share": 0.9},
        {"image_a": str(a), "image_b": str(b), "lr": str(lr), "winner": None, "skipped": True},
    ]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in good))
    path, written, skipped = convert_pseudo_labels(labels, tmp_path / "out" / "pairs.jsonl")
    assert (written, skipped) == (1, 1)
    (pair,) = load_pairs(path).pairs
    assert pair.preferred == a.resolve() or pair.preferred.resolve() == a.resolve()
    assert pair.source == "pseudo-label" and pair.meta["vote_share"] == 0.9
    labels.write_text(
        json.dumps({"image_a": str(a), "image_b": str(b), "winner": "A", "vote_share": 1.0}) + "\n"
    )
    with pytest.raises(PairsError, match=r"row 1: has no 'lr'"):
        convert_pseudo_labels(labels, tmp_path / "out2" / "pairs.jsonl")


def test_cli_pairs_synthetic_and_check(tmp_path: Path) -> None:
    """`srjudge reward pairs --synthetic` writes labelled pairs that `srjudge reward check` accepts."""
    _invoke(["reward", "pairs", "--synthetic", "--out", str(tmp_path), "--size", "32", "--seed", "3"])
    summary = json.loads(_invoke(["reward", "check", str(tmp_path / "pairs.jsonl")]))
    assert summary["synthetic"] is True and summary["lr_images"] == 6
    assert summary["pairs"] == summary["sources"]["synthetic"] == 6 * 30


def test_training_moves_head_and_lora_and_records_metrics(trained: Path) -> None:
    """After 2 steps the head differs from its seeded init, LoRA B is non-zero; per-epoch accuracy saved."""
    head = load_file(str(trained / HEAD_FILE))
    hidden = head["weight"].shape[1]
    init = torch.randn(1, hidden, generator=torch.Generator().manual_seed(0)) / hidden**0.5
    assert not torch.allclose(head["weight"], init)
    adapter = load_file(str(trained / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # peft starts B at zero
    rows = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    evals = {r["split"]: r for r in rows if r["kind"] == "eval"}
    assert set(evals) == {"train", "heldout"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in evals.values())
    meta = json.loads((trained / META_FILE).read_text())
    assert meta["prompt_version"] == PROMPT_VERSION and meta["max_side"] == 56
    assert (
        meta["training"]["metrics"]["n_train_pairs"] == 4
        and meta["training"]["metrics"]["n_heldout_pairs"] == 2
    )
    assert list((trained / "checkpoints").glob("checkpoint-*/reward_trainable.safetensors"))
    record = json.loads((trained / "srjudge_training.json").read_text())
    assert record["kind"] == "reward" and record["metrics"]["synthetic_pairs"] is True


def test_rerun_with_other_config_into_same_folder_is_refused(
    trained: Path, small_pairs: Path, tiny_vlm: Path
) -> None:
    """Checkpoints of another run are never mixed in: a different config is a clear error."""
    from srjudge.train.reward_train import train_reward_model

    with pytest.raises(SrjudgeError, match="checkpoints of another run"):
        train_reward_model(
            small_pairs, tiny_vlm, trained, RewardConfig(max_steps=5, device="cpu"), log=lambda m: None
        )


def test_save_load_gives_identical_scores(tiny_vlm: Path, tmp_path: Path) -> None:
    """LoRA (perturbed, so merging matters) + head -> save -> load: the same rewards to 1e-6."""
    from srjudge.train.common import LoraSettings
    from srjudge.train.reward_model import reward_model_from_base

    torch.manual_seed(0)
    model = reward_model_from_base(
        tiny_vlm, lora=LoraSettings(r=4, alpha=8, dropout=0.0), device="cpu", max_side=56
    )
    with torch.no_grad():
        for name, p in model.backbone.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
    rng = np.random.default_rng(0)
    lr = rng.random((8, 8, 3)).astype(np.float32)
    hrs = [rng.random((32, 32, 3)).astype(np.float32) for _ in range(3)]
    before = model.rewards(lr, hrs, batch_size=2)
    model.save(tmp_path / "rm")
    loaded = LRConditionedRewardModel.load(tmp_path / "rm", device="cpu")
    after = loaded.rewards(lr, hrs, batch_size=3)
    assert np.allclose(before, after, atol=1e-6, rtol=0)
    assert len(set(np.round(after, 6))) == 3


def test_reward_judge_ranks_with_lr_and_needs_it(trained: Path, synthetic: Path) -> None:
    """create_judge('reward:...') scores in batches, ranks by reward, names the digest; no LR is an error."""
    judge = create_judge(f"reward:{trained},device=cpu,batch_size=2")
    root = synthetic.parent
    lr = load_image(root / "lr/astronaut.png")
    names = ["hr", "blur-strong", "patch-swap"]
    images = [load_image(root / f"candidates/astronaut/{n}.png") for n in names]
    ranking = judge.rank(images, lr=lr, names=names)
    rewards = [v.raw for v in judge.score_many(images, lr=lr)]
    assert ranking.order() == list(np.argsort([-r for r in rewards], kind="stable"))
    best = ranking.best.verdict
    assert best.provenance.producer.endswith("@" + judge.digest) and len(judge.digest) == 16  # type: ignore[attr-defined]
    assert 0.0 < best.score < 100.0 and best.components["reward"] == best.raw  # type: ignore[operator]
    with pytest.raises(SrjudgeError, match="LR-conditioned"):
        judge.score(images[0])
    with pytest.raises(SrjudgeError, match="integer factor"):
        judge.score(images[0][:30], lr=lr)


def test_reward_judge_through_cli_score_and_rank(trained: Path, synthetic: Path) -> None:
    """`srjudge score/rank --lr LR --judge reward:PATH` work like with any judge."""
    import srjudge.cli.main  # noqa: F401  (registers score and rank)

    root = synthetic.parent
    cands = [str(root / f"candidates/coffee/{n}.png") for n in ("hr", "other-photo")]
    spec = f"reward:{trained},device=cpu"
    scored = json.loads(
        _invoke(["score", *cands, "--lr", str(root / "lr/coffee.png"), "-j", spec, "-f", "json"])
    )
    assert len(scored["records"]) == 2 and all(r["raw"] is not None for r in scored["records"])
    ranked = json.loads(
        _invoke(["rank", *cands, "--lr", str(root / "lr/coffee.png"), "-j", spec, "-f", "json"])
    )
    assert sorted(c["rank"] for c in ranked["candidates"]) == [1, 2]
    result = runner.invoke(app, ["score", cands[0], "-j", spec])
    assert result.exit_code != 0 and "LR-conditioned" in str(result.exception)


def test_missing_or_partial_model_folder_is_named(trained: Path, tmp_path: Path) -> None:
    """A missing folder, or one without the head, raises MissingWeightsError naming it and the file."""
    gone = tmp_path / "no-such-model"
    with pytest.raises(MissingWeightsError, match="no-such-model"):
        create_judge(f"reward:{gone}")
    partial = tmp_path / "partial"
    shutil.copytree(trained, partial, ignore=shutil.ignore_patterns("checkpoints", HEAD_FILE))
    with pytest.raises(MissingWeightsError, match=f"{partial}.*missing {HEAD_FILE}"):
        create_judge(f"reward:{partial},device=cpu")


def test_reward_judge_in_select_and_bench(trained: Path, synthetic: Path, tmp_path: Path) -> None:
    """The trained folder works as a judge in selection (pick + fusion) and in `srjudge bench`."""
    from srjudge.bench.datasets import load_dataset
    from srjudge.bench.evaluate import run_bench
    from srjudge.bench.synthetic import make_synthetic
    from srjudge.select.selection import select_best

    judge = create_judge(f"reward:{trained},device=cpu")
    root = synthetic.parent
    names = ["hr", "blur-strong", "patch-swap"]
    images = [load_image(root / f"candidates/astronaut/{n}.png") for n in names]
    lr = load_image(root / "lr/astronaut.png")
    rewards = [v.raw for v in judge.score_many(images, lr=lr)]
    chosen = select_best(images, names, judge, lr=lr, top_k=2)
    assert chosen.chosen == int(np.argmax(rewards))  # type: ignore[arg-type]
    assert len(chosen.top_k) == 2 and chosen.fused.shape == images[0].shape

    csv = make_synthetic(tmp_path / "bon", "best-of-n", n_photos=2, levels=3)
    rows = run_bench(load_dataset(csv), [judge], tmp_path / "bench", n_boot=50, plots=False)
    assert rows[0]["judge"] == judge.spec and rows[0]["groups"] == 2
    assert rows[0]["top1_agreement"] not in (None, "n/a")
