"""``srjudge align``: the DPO and GRPO losses on hand-made cases, the chain sampler, the frozen reference,
resumption, and the aligned model round-tripping as the ``diffusion:PATH`` SR backend.

Models here are tiny random-weight UNets built from a config (their samples are noise); the reward is
the real ``readout:classifier`` judge with its bundled reader. Whether alignment helps is measured by
``benchmarks/bench_align.py`` on the bundled testbed model, not here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from srjudge.errors import SpecError, SrjudgeError
from srjudge.readers.base import Reader, Reading
from srjudge.sr.base import create_sr_backend
from srjudge.sr.conditional_diffusion import (
    UNetSettings,
    build_unet,
    condition_tensor,
    ddim_sample,
    load_model,
    save_checkpoint,
    scheduler_config,
)
from srjudge.testbed.alignment import bicubic_wrong, compare_groups, sample_groups, samples_figure
from srjudge.train.align import (
    AlignConfig,
    AlignState,
    align,
    best_samples,
    consistency_penalty,
    diffusion_dpo_loss,
    gaussian_kl_same_std,
    gaussian_logprob,
    group_advantages,
    grpo_loss,
    preference_pairs,
    sample_chains,
)
from srjudge.train.align_run import EvalSettings, run_alignment

TINY = UNetSettings(block_out_channels=(8, 16), norm_num_groups=8, attention_head_dim=8, attention=False)
SMALL = AlignConfig(
    rounds=2,
    prompts_per_round=3,
    samples=3,
    sample_steps=3,
    timesteps_per_sample=2,
    batch_size=4,
    severities=(3,),
    train_copies=1,
    lr=1e-3,
    min_gap=0.0,
)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-align-base")
    save_checkpoint(folder, build_unet(TINY, seed=5), scheduler_config(), {"note": "random weights"})
    return folder


def _prompts(n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gray = rng.integers(0, 256, (n, 8, 8)).astype(np.float32) / 255.0
    return np.repeat(gray[..., None], 3, axis=-1)


def _params(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------------------------------
# Hand-made cases
# ----------------------------------------------------------------------------------------------------


def test_group_advantages_normalise_within_each_group_and_skip_abstentions() -> None:
    adv = group_advantages(
        np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [np.nan, 1.0, 3.0], [np.nan, 2.0, np.nan]])
    )
    z = math.sqrt(1.5)  # (3 - 2) / std([1, 2, 3]) with the population std sqrt(2/3)
    np.testing.assert_allclose(adv[0], [-z, 0.0, z], atol=1e-12)
    np.testing.assert_array_equal(adv[1], [0.0, 0.0, 0.0])  # all equal: nothing to learn
    np.testing.assert_allclose(adv[2], [0.0, -1.0, 1.0], atol=1e-12)  # the abstention is left out
    np.testing.assert_array_equal(adv[3], [0.0, 0.0, 0.0])  # one reward is not a group
    with pytest.raises(SpecError, match="groups, samples"):
        group_advantages(np.zeros(3))


def test_preference_pairs_best_against_the_worst_with_a_gap() -> None:
    rewards = np.array([[10.0, 50.0, 30.0, 49.0], [1.0, 1.5, np.nan, 0.0]])
    assert preference_pairs(rewards, min_gap=5.0, per_group=2) == [(0, 1, 0), (0, 1, 2)]  # 1.5 - 0 < 5
    assert preference_pairs(rewards, min_gap=1.0, per_group=2) == [(0, 1, 0), (0, 1, 2), (1, 1, 3)]
    assert preference_pairs(rewards, min_gap=25.0, per_group=3) == [(0, 1, 0)]
    assert preference_pairs(np.array([[np.nan, 3.0]]), min_gap=0.0, per_group=1) == []


def test_best_samples_keep_the_best_above_the_mean_where_the_group_disagrees() -> None:
    rewards = np.array(
        [
            [10.0, 50.0, 30.0, 49.0],  # mean 34.75: 50 and 49 kept
            [60.0, 60.0, 60.0, 20.0],  # mean 50: the top two of the tied 60s (lowest index first)
            [40.0, 41.0, 39.0, 40.0],  # gap 2 < min_gap: no signal, nothing kept
            [np.nan, 90.0, 10.0, np.nan],  # abstentions never kept; mean of the finite ones
        ]
    )
    assert best_samples(rewards, min_gap=5.0, keep=2) == [(0, 1), (0, 3), (1, 0), (1, 1), (3, 1)]
    assert best_samples(rewards, min_gap=5.0, keep=1) == [(0, 1), (1, 0), (3, 1)]
    # min_gap 0: group 2 counts too, and only its 41 is above its mean of 40
    assert (2, 1) in best_samples(rewards, min_gap=0.0, keep=3)
    assert [k for k in best_samples(rewards, min_gap=0.0, keep=3) if k[0] == 2] == [(2, 1)]
    assert best_samples(np.array([[np.nan, 3.0]]), min_gap=0.0, keep=2) == []


def test_dpo_loss_is_log2_at_the_reference_and_rewards_the_preferred_sample() -> None:
    err_w = torch.tensor([0.30, 0.20], requires_grad=True)
    err_l = torch.tensor([0.25, 0.40], requires_grad=True)
    ref_w, ref_l = torch.tensor([0.30, 0.20]), torch.tensor([0.25, 0.40])
    loss, stats = diffusion_dpo_loss(err_w, err_l, ref_w, ref_l, beta=100.0)
    assert float(loss.detach()) == pytest.approx(math.log(2.0), abs=1e-6)  # policy == reference
    loss.backward()
    assert err_w.grad is not None and err_l.grad is not None
    assert (err_w.grad > 0).all() and (err_l.grad < 0).all()  # lower the winner's error, raise the loser's
    # the trained model denoises the preferred sample better than the reference: loss below log 2
    better, stats = diffusion_dpo_loss(ref_w - 0.01, ref_l + 0.01, ref_w, ref_l, beta=100.0)
    expected = -math.log(1.0 / (1.0 + math.exp(-0.5 * 100.0 * 0.02)))
    assert float(better) == pytest.approx(expected, rel=1e-5)
    assert stats["implicit_accuracy"] == 1.0 and stats["margin"] == pytest.approx(1.0, rel=1e-5)


def test_grpo_loss_on_policy_clipping_and_kl() -> None:
    adv = torch.tensor([1.0, -1.0, 2.0])
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    loss, stats = grpo_loss(logp, logp.detach(), adv, clip=0.2)
    assert float(loss) == pytest.approx(-float(adv.mean()))  # ratio 1: the plain policy gradient
    loss.backward()
    assert logp.grad is not None
    np.testing.assert_allclose(logp.grad.numpy(), (-adv / 3).numpy(), rtol=1e-6)
    assert stats["clip_fraction"] == 0.0 and stats["ratio"] == pytest.approx(1.0)
    # a ratio of 1.5 on a positive advantage is clipped at 1.2: no gradient pushes it further
    new = torch.tensor([math.log(1.5)], requires_grad=True)
    clipped, stats = grpo_loss(new, torch.zeros(1), torch.ones(1), clip=0.2)
    assert float(clipped) == pytest.approx(-1.2)
    clipped.backward()
    assert new.grad is not None and float(new.grad) == 0.0 and stats["clip_fraction"] == 1.0
    # the KL term adds kl_coef * mean(kl)
    with_kl, stats = grpo_loss(
        logp.detach(), logp.detach(), adv, clip=0.2, kl=torch.tensor([0.5, 1.5, 1.0]), kl_coef=0.1
    )
    assert float(with_kl) == pytest.approx(-float(adv.mean()) + 0.1) and stats["kl"] == pytest.approx(1.0)


def test_gaussian_logprob_and_kl_match_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    x, mean, ref = (torch.randn(2, 1, 4, 4, generator=g) for _ in range(3))
    std = torch.tensor(0.7)
    expected = torch.distributions.Normal(mean, std).log_prob(x).flatten(1).mean(dim=1)
    torch.testing.assert_close(gaussian_logprob(x, mean, std), expected)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std), torch.distributions.Normal(ref, std)
    )
    torch.testing.assert_close(gaussian_kl_same_std(mean, ref, std), kl.flatten(1).mean(dim=1))


def test_consistency_penalty_is_relative_to_the_group_median() -> None:
    psnr = np.array([[30.0, 29.8, 28.0, 31.0]])  # median 29.9
    np.testing.assert_allclose(
        consistency_penalty(psnr, margin_db=0.5, weight=2.0), [[0.0, 0.0, 2.0 * 1.4, 0.0]], atol=1e-9
    )


# ----------------------------------------------------------------------------------------------------
# Chains, the frozen reference, resumption
# ----------------------------------------------------------------------------------------------------


def test_sample_chains_reproduce_the_backend_samples_and_their_logprobs(tiny_folder: Path) -> None:
    unet, sched, _ = load_model(tiny_folder)
    cond = condition_tensor(_prompts(3))
    seeds = [4, 5, 6]
    chains = sample_chains(unet, sched, cond, seeds, steps=4, eta=1.0)
    torch.testing.assert_close(chains.latents[-1], ddim_sample(unet, sched, cond, seeds, steps=4, eta=1.0))
    assert chains.latents.shape == (5, 3, 1, 32, 32) and chains.logp.shape == (4, 3)
    assert chains.stochastic_steps() == [0, 1, 2]  # the last DDIM step is deterministic
    assert float(chains.logp[-1].abs().sum()) == 0.0
    # each step's log-probability is that of the drawn latent under the step's Gaussian
    from srjudge.sr.conditional_diffusion import ddim_step_mean
    from srjudge.train.align import _acp

    k = 1
    t, prev = chains.timesteps[k], chains.prevs[k]
    with torch.no_grad():
        out = unet(torch.cat([chains.latents[k], cond], dim=1), torch.full((3,), t)).sample
    mean, std = ddim_step_mean(chains.latents[k], out, _acp(sched, "cpu"), t, prev, 1.0, True)
    torch.testing.assert_close(chains.logp[k], gaussian_logprob(chains.latents[k + 1], mean, std))


@pytest.mark.parametrize("method", ["dpo", "grpo", "raft"])
def test_align_keeps_the_reference_frozen_changes_the_policy_and_resumes_exactly(
    tiny_folder: Path, method: str
) -> None:
    from srjudge.judges import create_judge

    unet, sched, _ = load_model(tiny_folder)
    before = _params(unet)
    judge = create_judge("readout:classifier")
    config = dataclasses.replace(SMALL, method=method)
    states: list[AlignState] = []
    full = align(unet, sched, _prompts(), judge, config, on_round=states.append)
    for key, value in _params(unet).items():  # the base model (the frozen reference) is unchanged
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert not all(torch.equal(v, before[k]) for k, v in _params(full.unet).items())
    assert [s.round for s in states] == [1, 2] and len(full.logs) == 2
    row = full.logs[0]
    assert row["samples"] == 9 and row["updates"] >= 1 and math.isfinite(row["loss"])
    assert 0.0 <= row["judge_score"] <= 100.0 and row["spread"] > 0.0
    # resumed from the state after round 1: the same model as the uninterrupted run
    resumed = align(unet, sched, _prompts(), judge, config, state=states[0])
    assert resumed.resumed_from == 1 and [dict(r)["round"] for r in resumed.logs] == [1, 2]
    for key, value in _params(resumed.unet).items():
        torch.testing.assert_close(value, _params(full.unet)[key], rtol=1e-5, atol=1e-6)


def test_align_config_rejects_bad_values() -> None:
    with pytest.raises(SpecError, match="method 'ppo'"):
        AlignConfig(method="ppo")
    with pytest.raises(SpecError, match="eta"):
        AlignConfig(eta=0.0)
    with pytest.raises(SpecError, match="timesteps_per_sample"):
        AlignConfig(sample_steps=4, timesteps_per_sample=4)
    with pytest.raises(SpecError, match="samples"):
        AlignConfig(samples=1)


# ----------------------------------------------------------------------------------------------------
# The run folder and the backend round trip
# ----------------------------------------------------------------------------------------------------


def test_run_alignment_resumes_after_a_kill_and_the_model_loads_as_a_backend(
    tiny_folder: Path, tmp_path: Path
) -> None:
    config = dataclasses.replace(SMALL, method="grpo")
    settings = EvalSettings(count=4, samples=2, figure_inputs=2)

    class Killed(Exception):
        pass

    def kill_after_round_1(message: str) -> None:
        if message.startswith("[align] round 1/"):
            raise Killed

    with pytest.raises(Killed):
        run_alignment(f"diffusion:{tiny_folder}", tmp_path / "run", config, log=kill_after_round_1)
    assert (tmp_path / "run" / "_align_state.pt").is_file()
    lines: list[str] = []
    run = run_alignment(
        f"diffusion:{tiny_folder}", tmp_path / "run", config, evaluation=settings, log=lines.append
    )
    assert any("resuming after round 1/2" in m for m in lines)
    assert not (tmp_path / "run" / "_align_state.pt").exists()
    log_rows = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log_rows) == 2  # round 1 from the resume point, round 2 redone: nothing lost or doubled
    straight = run_alignment(f"diffusion:{tiny_folder}", tmp_path / "straight", config)
    a, _, _ = load_model(run.model_dir)
    b, _, _ = load_model(straight.model_dir)
    for key, value in _params(a).items():
        torch.testing.assert_close(value, _params(b)[key], rtol=1e-5, atol=1e-6)
    # the aligned model is an SR backend; its record says what it was aligned from and with
    backend = create_sr_backend(f"diffusion:{run.model_dir},steps=3")
    out = backend.upscale(_prompts(1)[0], scale=4, seed=1)
    assert out.shape == (32, 32, 3) and out.min() >= 0.0 and out.max() <= 1.0
    import json

    record = json.loads((run.model_dir / "srjudge_diffusion.json").read_text())
    assert record["kind"] == "aligned-diffusion-x4" and record["alignment"]["method"] == "grpo"
    assert record["reward_judge"]["spec"] == "readout:classifier" and len(record["rounds"]) == 2
    assert record["data"]["split"] == "train" and len(record["data"]["sha256"]) == 64
    assert {r.measure for r in run.rows} >= {"wrong", "hallucinated", "lr_psnr", "spread", "distinct"}
    assert (tmp_path / "run" / "evaluation.md").is_file() and (tmp_path / "run" / "samples.png").is_file()


def test_run_alignment_refuses_to_resume_another_config_and_other_model_families(
    tiny_folder: Path, tmp_path: Path
) -> None:
    def stop(message: str) -> None:
        if message.startswith("[align] round 1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_alignment(f"diffusion:{tiny_folder}", tmp_path, SMALL, log=stop)
    with pytest.raises(SrjudgeError, match="another config"):
        run_alignment(f"diffusion:{tiny_folder}", tmp_path, dataclasses.replace(SMALL, lr=5e-4))
    with pytest.raises(SpecError, match="only the conditional pixel diffusion"):
        run_alignment("bicubic", tmp_path / "x", SMALL)
    with pytest.raises(SpecError, match="needs an HR reference"):
        run_alignment(f"diffusion:{tiny_folder}", tmp_path / "y", dataclasses.replace(SMALL, reward="psnr"))


def test_compare_groups_pairs_the_same_inputs() -> None:
    rng = np.random.default_rng(0)
    gray = rng.random((4, 3, 32, 32)).astype(np.float32)
    lr = rng.random((4, 8, 8)).astype(np.float32)
    truth = ["A", "B", "C", "D"]
    base_reads = [[("A", 0.9), ("E", 0.8), (None, 0.0)]] * 4
    aligned_reads = [[("A", 0.9), ("A", 0.8), ("A", 0.6)]] * 4
    groups = ["severe", "severe", "clean", "clean"]
    ids = ["i0", "i1", "i2", "i3"]
    base = sample_groups(ids, truth, groups, gray, lr, base_reads)
    aligned = sample_groups(ids, truth, groups, gray, lr, aligned_reads)
    rows = {(r.group, r.measure): r for r in compare_groups(base, aligned, n_boot=50)}
    # item i0 (truth A): base 2/3 wrong, 1/3 hallucinated; aligned none wrong; the others: all wrong
    assert rows[("severe", "wrong")].base.value == pytest.approx((2 / 3 + 1) / 2)
    assert rows[("severe", "wrong")].aligned.value == pytest.approx((0 + 1) / 2)
    assert rows[("all", "hallucinated")].delta.value == pytest.approx(((0 - 1 / 3) + (1 - 2 / 3) * 3) / 4)
    assert rows[("all", "lr_psnr")].delta.value == 0.0 and rows[("all", "distinct")].base.value == 3.0
    with pytest.raises(SpecError, match="not of the same LR inputs"):
        compare_groups(base, sample_groups(["x", *ids[1:]], truth, groups, gray, lr, base_reads))
    fig = samples_figure(
        np.repeat(lr[..., None], 3, -1), np.repeat(gray[..., None], 3, -1), np.repeat(gray[..., None], 3, -1),
        truth=truth, before_labels=base.labels, after_labels=aligned.labels,
    )  # fmt: skip
    assert fig.shape[2] == 3 and fig.shape[0] == 18 + 4 * (32 * 3 + 4)  # header + 4 rows


class _InkReader(Reader):
    """Reads 'A' on dark images and 'B' on light ones; records the sizes it was given."""

    spec, config = "ink", {}

    def __init__(self) -> None:
        self.sizes: list[tuple[int, ...]] = []

    def read(self, images: Any) -> list[Reading]:
        self.sizes += [im.shape for im in images]
        return [Reading("A" if float(im.mean()) < 0.5 else "B", 0.9) for im in images]


def test_bicubic_wrong_reads_the_plain_upsample_of_each_lr() -> None:
    lrs = np.stack([np.full((8, 8, 3), v, np.float32) for v in (0.2, 0.8, 0.8)])
    reader = _InkReader()
    wrong = bicubic_wrong(reader, lrs, (32, 32), ["A", "A", "B"])
    assert wrong.tolist() == [0.0, 1.0, 0.0]
    assert reader.sizes == [(32, 32, 3)] * 3
    with pytest.raises(SpecError, match="3 LR inputs but 2"):
        bicubic_wrong(reader, lrs, (32, 32), ["A", "B"])


def test_align_command_runs_raft_on_the_bundled_model_and_saves_a_backend(tmp_path: Path) -> None:
    """`srjudge align` with the default method (raft) on the bundled testbed model, offline."""
    from typer.testing import CliRunner

    import srjudge.cli.main  # noqa: F401  (every command: with one command Typer would drop its name)
    from srjudge.cli.common import app

    config = tmp_path / "align.yaml"
    config.write_text(
        "rounds: 1\nprompts_per_round: 2\nsamples: 3\nsample_steps: 3\ntimesteps_per_sample: 1\n"
        "severities: [3]\ntrain_copies: 1\nmin_gap: 0.0\nbatch_size: 4\n"
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["align", "--config", str(config), "--out", str(out), "--eval-count", "0"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["samples"] == 6 and "kept" in rows[0] and "drift" in rows[0]
    assert "[align] round 1/1" in (out / "align.log").read_text()
    backend = create_sr_backend(f"diffusion:{out / 'model'},steps=2")
    image = backend.upscale(_prompts(1)[0], scale=4, seed=0)
    assert image.shape == (32, 32, 3)
