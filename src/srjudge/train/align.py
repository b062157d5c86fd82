"""Align a conditional diffusion SR model with a judge's reward (``srjudge align``).

The loop, round after round (online: each round samples from the current model)::

    LR prompts --sample N per LR (DDIM, eta=1, the chain kept)--> candidates
    candidates --judge.score_many(group, lr=LR) - consistency penalty--> rewards
    rewards --raft: best samples | dpo: (preferred, rejected) pairs | grpo: advantages--> update the UNet

Methods (all on the same rounds of samples):

* ``dpo``: Diffusion-DPO (Wallace et al. 2023). Pairs per LR: the best-rewarded sample against the
  worst ones, when their reward gap is at least ``min_gap``. The loss, for one shared timestep and
  noise per pair, with ``e = ||target - prediction||^2`` (pixel mean) under the trained model (θ) and
  the frozen reference (ref)::

      L = -log sigmoid(-beta/2 * ((e_θ(w) - e_ref(w)) - (e_θ(l) - e_ref(l))))

* ``grpo``: policy gradient on the denoising chain (DDPO's MDP view, GRPO's group baseline). With
  eta=1 every DDIM step is a Gaussian whose std does not depend on the model
  (:func:`srjudge.sr.conditional_diffusion.ddim_step_mean`), so ``log p(x_prev | x_t)`` (pixel mean)
  is the policy. Advantages are the rewards normalised within the N samples of one LR; the loss is
  PPO's clipped ratio on ``timesteps_per_sample`` random steps of each chain, plus ``kl`` times the
  exact per-step KL to the frozen reference, ``||mu_θ - mu_ref||^2 / (2 std^2)`` (pixel mean).

* ``raft``: reward-ranked fine-tuning (RAFT, Dong et al. 2023; best-of-N distillation). In each
  group whose best and worst rewards differ by at least ``min_gap``, the ``keep`` best samples above
  the group mean become denoising targets (the plain diffusion loss, ``||target - prediction||^2``),
  so the model moves toward its own best-of-N outputs without a gradient through the judge, plus
  ``anchor`` times ``||prediction_θ - prediction_ref||^2`` on noised samples of every group (those
  without a signal included), which holds the model to the frozen reference where the judge says nothing.

Guards against reward hacking: the reference model stays frozen (RAFT's anchor, DPO's reference,
GRPO's KL); an LR-consistency penalty (:func:`consistency_penalty`) is part of every reward; each
round logs the samples' LR-PSNR and their per-LR pixel spread, so drift and collapse show in the log;
evaluation (:mod:`srjudge.testbed.alignment`) always uses another reader than the reward (the referee).

Pure arrays in (LR prompts), the trained UNet out; the command (:mod:`srjudge.cli.align_cmd`) and
the records (:func:`run_alignment`) live below. Determinism: round ``r`` draws its prompts, sample
seeds and update order from ``(seed, r)`` only, so a run resumed at a round boundary follows the
same path as an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from srjudge.errors import SpecError
from srjudge.sr.conditional_diffusion import (
    condition_tensor,
    ddim_scheduler,
    ddim_step_mean,
    tensor_to_images,
    to_gray,
)
from srjudge.testbed.alignment import lr_psnr, pixel_spread

if TYPE_CHECKING:
    import torch

    from srjudge.judges.base import Judge

METHODS = ("dpo", "grpo", "raft")
DEFAULT_LR = {"grpo": 4e-4, "dpo": 1e-4, "raft": 1e-4}
"""Learning rates measured on the testbed model: GRPO at 1e-3 collapsed in 2 rounds (LR-PSNR 21 ->
15 dB); DPO at 4e-4 drifted (loss far above log 2, LR-PSNR down 4 dB); RAFT at 3e-4 with 3 passes
(prompts at moderate and severe only) did worse on the val font than 1e-4 with 2 passes at every level;
best of 16 samples per LR beat best of 8 (val and test fonts)."""
DEFAULT_EPOCHS = {"grpo": 1, "dpo": 4, "raft": 2}
"""DPO's updates are cheap next to sampling (one denoising step per pair), so it reuses pairs more."""


@dataclass(frozen=True)
class AlignConfig:
    """Every setting of one alignment run (the YAML config has these keys)."""

    method: str = "raft"
    reward: str = "readout:classifier"
    seed: int = 0
    rounds: int = 16
    prompts_per_round: int = 48
    samples: int = 16
    sample_steps: int = 25
    eta: float = 1.0
    severities: tuple[int, ...] = (0, 1, 2, 3)
    train_copies: int = 4
    lr: float | None = None
    """None: the method's default (:data:`DEFAULT_LR`)."""
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    batch_size: int = 32
    epochs: int | None = None
    """Passes over a round's samples (GRPO), pairs (DPO) or kept samples (RAFT); None: the default."""
    # dpo and raft
    min_gap: float = 10.0
    """DPO: the least reward gap of a pair; RAFT: of a group's best and worst samples."""
    # dpo
    beta: float = 2000.0
    pairs_per_group: int = 2
    # raft
    keep: int = 2
    anchor: float = 1.0
    # grpo
    clip: float = 0.2
    kl: float = 0.05
    timesteps_per_sample: int = 6
    # guards
    consistency_margin_db: float = 0.5
    consistency_weight: float = 2.0
    threads: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SpecError(f"align: method {self.method!r} is not known; use one of {', '.join(METHODS)}.")
        for name in ("rounds", "prompts_per_round", "sample_steps", "batch_size", "epochs", "threads"):
            value = getattr(self, name)
            if name == "epochs" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"align: {name} must be an integer >= 1, got {value!r}.")
        if self.samples < 2:
            raise SpecError(f"align: samples must be >= 2 (a group to compare), got {self.samples!r}.")
        if not 0.0 < self.eta <= 1.0:
            raise SpecError(f"align: eta must be in (0, 1] (the chain must be stochastic), got {self.eta!r}.")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise SpecError(f"align: lr must be a positive number, got {self.lr!r}.")
        if self.beta <= 0 or self.min_gap < 0 or self.pairs_per_group < 1:
            raise SpecError("align: beta must be > 0, min_gap >= 0 and pairs_per_group >= 1.")
        if not 0.0 < self.clip < 1.0 or self.kl < 0:
            raise SpecError(f"align: clip must be in (0, 1) and kl >= 0; got {self.clip!r}, {self.kl!r}.")
        if not 1 <= self.timesteps_per_sample < self.sample_steps:
            raise SpecError(
                f"align: timesteps_per_sample must be in 1..sample_steps-1 (the last DDIM step is "
                f"deterministic), got {self.timesteps_per_sample!r}."
            )
        if self.consistency_weight < 0:
            raise SpecError(f"align: consistency_weight must be >= 0, got {self.consistency_weight!r}.")
        if not self.severities or any(s not in (0, 1, 2, 3) for s in self.severities):
            raise SpecError(f"align: severities must list testbed levels 0..3, got {self.severities!r}.")
        if self.keep < 1 or self.anchor < 0:
            raise SpecError(f"align: keep must be >= 1 and anchor >= 0; got {self.keep!r}, {self.anchor!r}.")
        if self.train_copies < 1:
            raise SpecError(f"align: train_copies must be >= 1, got {self.train_copies!r}.")

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.method] if self.lr is None else float(self.lr)

    @property
    def passes(self) -> int:
        return DEFAULT_EPOCHS[self.method] if self.epochs is None else int(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["severities"] = list(self.severities)
        data["resolved"] = {"lr": self.learning_rate, "epochs": self.passes}
        return data


# ----------------------------------------------------------------------------------------------------
# Pure pieces: advantages, pairs, losses
# ----------------------------------------------------------------------------------------------------


def group_advantages(rewards: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(G, N) rewards -> (G, N) advantages ``(r - mean) / std`` within each group (row).

    NaN rewards (the judge abstained) get advantage 0 and do not enter their group's mean and std; a
    group with fewer than 2 rewards, or whose rewards are all equal, gets 0 everywhere (nothing to learn).
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 2:
        raise SpecError(f"group_advantages needs a (groups, samples) array, got shape {r.shape}")
    out = np.zeros_like(r)
    for g in range(r.shape[0]):
        valid = np.isfinite(r[g])
        if valid.sum() < 2:
            continue
        values = r[g, valid]
        std = float(values.std())
        if std < eps:
            continue
        out[g, valid] = (values - values.mean()) / std
    return out


def preference_pairs(rewards: np.ndarray, *, min_gap: float, per_group: int) -> list[tuple[int, int, int]]:
    """(group, preferred, rejected) index triples: each group's best sample against its worst ones.

    The best-rewarded sample is paired with up to ``per_group`` of the lowest-rewarded samples whose
    reward is at least ``min_gap`` lower. NaN rewards (abstentions) are never paired.
    """
    pairs: list[tuple[int, int, int]] = []
    r = np.asarray(rewards, dtype=np.float64)
    for g in range(r.shape[0]):
        valid = [int(i) for i in np.flatnonzero(np.isfinite(r[g]))]
        if len(valid) < 2:
            continue
        order = sorted(valid, key=lambda i: (-r[g, i], i))
        best = order[0]
        losers = [i for i in reversed(order[1:]) if r[g, best] - r[g, i] >= min_gap][:per_group]
        pairs.extend((g, best, i) for i in losers)
    return pairs


def best_samples(rewards: np.ndarray, *, min_gap: float, keep: int) -> list[tuple[int, int]]:
    """(group, sample) of the ``keep`` best samples above the group mean, in each group whose best and
    worst finite rewards differ by at least ``min_gap`` (RAFT's targets). NaN rewards are never kept."""
    kept: list[tuple[int, int]] = []
    r = np.asarray(rewards, dtype=np.float64)
    for g in range(r.shape[0]):
        valid = [int(i) for i in np.flatnonzero(np.isfinite(r[g]))]
        if len(valid) < 2:
            continue
        order = sorted(valid, key=lambda i: (-r[g, i], i))
        if r[g, order[0]] - r[g, order[-1]] < min_gap:
            continue
        mean = float(r[g, valid].mean())
        kept.extend((g, i) for i in order[:keep] if r[g, i] > mean)
    return kept


def diffusion_dpo_loss(
    err_w: torch.Tensor,
    err_l: torch.Tensor,
    ref_err_w: torch.Tensor,
    ref_err_l: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Diffusion-DPO's loss from per-pair denoising errors (pixel-mean squared errors, shape (B,)).

    Returns the mean loss and stats: ``implicit_accuracy`` (pairs whose preferred sample gained more
    than the rejected one, relative to the reference) and ``margin`` (the mean of the sigmoid's argument).
    """
    import torch.nn.functional as F

    inside = -0.5 * beta * ((err_w - ref_err_w) - (err_l - ref_err_l))
    loss = -F.logsigmoid(inside).mean()
    stats = {
        "implicit_accuracy": float((inside.detach() > 0).float().mean()),
        "margin": float(inside.detach().mean()),
    }
    return loss, stats


def gaussian_logprob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Pixel-mean log density of ``x`` under N(mean, std^2) per row (B, ...) -> (B,) (std > 0)."""
    import torch

    var = std**2
    logp = -((x - mean) ** 2) / (2 * var) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return logp.flatten(1).mean(dim=1)


def grpo_loss(
    logp_new: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip: float,
    kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate on (B,) log-probabilities and advantages, plus ``kl_coef * kl.mean()``.

    Stats: ``clip_fraction`` (ratios outside [1-clip, 1+clip]), ``ratio`` (mean) and ``kl`` (mean).
    """
    import torch

    ratio = torch.exp(logp_new - logp_old)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip, 1.0 + clip)
    loss = torch.maximum(unclipped, clipped).mean()
    stats = {
        "clip_fraction": float(((ratio.detach() - 1.0).abs() > clip).float().mean()),
        "ratio": float(ratio.detach().mean()),
        "kl": float(kl.detach().mean()) if kl is not None else 0.0,
    }
    if kl is not None and kl_coef > 0:
        loss = loss + kl_coef * kl.mean()
    return loss, stats


def gaussian_kl_same_std(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std^2) || N(ref_mean, std^2)), pixel mean per row: ``(mean - ref)^2 / (2 std^2)``."""
    return ((mean - ref_mean) ** 2 / (2 * std**2)).flatten(1).mean(dim=1)


def consistency_penalty(psnr_db: np.ndarray, *, margin_db: float, weight: float) -> np.ndarray:
    """(G, N) LR-PSNR -> (G, N) reward points taken off samples that drift from their LR.

    ``weight * max(0, median_g - margin_db - psnr)``: a sample loses ``weight`` points per dB that its
    LR-PSNR falls below its group's median by more than ``margin_db``. Relative to the group because the
    attainable LR-PSNR depends on the input (noise and JPEG in the LR cap it); the drift of the whole
    model is held by the frozen reference (DPO's anchor, GRPO's KL) and logged every round.
    """
    psnr = np.asarray(psnr_db, np.float64)
    median = np.median(psnr, axis=1, keepdims=True)
    return np.asarray(weight * np.maximum(0.0, median - margin_db - psnr), np.float64)


# ----------------------------------------------------------------------------------------------------
# Sampling with the chain kept
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chains:
    """DDIM chains of B samples: ``latents`` (S+1, B, 1, H, W), from the start noise to the sample.

    Step ``k`` goes from timestep ``timesteps[k]`` to ``prevs[k]`` with std ``stds[k]``; ``logp``
    (S, B) is each step's pixel-mean log-probability under the sampling model (0 where std is 0).
    """

    latents: Any = field(repr=False)
    timesteps: tuple[int, ...]
    prevs: tuple[int, ...]
    stds: tuple[float, ...]
    logp: Any = field(repr=False)

    def stochastic_steps(self) -> list[int]:
        """Steps whose std is positive (the last DDIM step is deterministic)."""
        return [k for k, s in enumerate(self.stds) if s > 1e-8]


def _acp(config: Mapping[str, Any], device: Any) -> Any:
    import torch

    scheduler = ddim_scheduler(config)
    return scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)


def _schedule(config: Mapping[str, Any], steps: int) -> tuple[list[int], list[int]]:
    scheduler = ddim_scheduler(config)
    scheduler.set_timesteps(int(steps))
    jump = int(config.get("num_train_timesteps", 1000)) // int(steps)
    ts = [int(t) for t in scheduler.timesteps.tolist()]
    return ts, [t - jump for t in ts]


def sample_chains(
    unet: Any,
    config: Mapping[str, Any],
    cond: torch.Tensor,
    seeds: Sequence[int],
    *,
    steps: int,
    eta: float,
) -> Chains:
    """DDIM sampling as :func:`srjudge.sr.conditional_diffusion.ddim_sample` (same seeds, same noise
    order, so the same samples), keeping every latent and each step's log-probability."""
    import torch

    device = next(unet.parameters()).device
    shape = (1, 1, int(cond.shape[2]), int(cond.shape[3]))
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]

    def noise() -> torch.Tensor:
        return torch.cat([torch.randn(shape, generator=g) for g in generators]).to(device)

    acp = _acp(config, device)
    ts, prevs = _schedule(config, steps)
    v_pred = config.get("prediction_type") == "v_prediction"
    cond = cond.to(device)
    x = noise()
    latents = [x]
    logps: list[torch.Tensor] = []
    stds: list[float] = []
    with torch.no_grad():  # not inference_mode: the latents are inputs of the training step later
        for t, prev in zip(ts, prevs, strict=True):
            tt = torch.full((x.shape[0],), t, device=device, dtype=torch.long)
            out = unet(torch.cat([x, cond], dim=1), tt).sample
            mean, std = ddim_step_mean(x, out, acp, t, prev, float(eta), v_pred)
            s = float(std)
            if s > 1e-8:
                x = mean + std * noise()
                logps.append(gaussian_logprob(x, mean, std))
            else:
                x = mean
                logps.append(torch.zeros(x.shape[0], device=device))
            stds.append(s)
            latents.append(x)
    return Chains(
        latents=torch.stack(latents),
        timesteps=tuple(ts),
        prevs=tuple(prevs),
        stds=tuple(stds),
        logp=torch.stack(logps),
    )


# ----------------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------------

ADVANTAGE_CLIP = 5.0
SAMPLE_BATCH = 256


@dataclass(frozen=True)
class AlignState:
    """What a resumed run needs: rounds done, the model and optimizer state dicts, the round logs."""

    round: int
    model: Mapping[str, Any] = field(repr=False)
    optimizer: Mapping[str, Any] = field(repr=False)
    logs: tuple[Mapping[str, Any], ...] = field(repr=False)


@dataclass(frozen=True)
class AlignResult:
    """The aligned UNet (eval mode), one log row per round, and timing."""

    unet: Any = field(repr=False)
    logs: tuple[Mapping[str, Any], ...]
    seconds: float
    cpu_seconds: float
    resumed_from: int


@dataclass(frozen=True)
class RoundSamples:
    """One round's groups: G LR prompts x N samples, their chains, rewards and guard measures."""

    prompt_index: np.ndarray  # (G,) indices into the prompt pool
    cond: Any = field(repr=False)  # (G*N, 1, H, W) conditioning, sample-major within a group
    chains: Chains = field(repr=False)
    judge_scores: np.ndarray = field(repr=False)  # (G, N), NaN where the judge abstained
    lr_psnr: np.ndarray = field(repr=False)  # (G, N) dB
    rewards: np.ndarray = field(repr=False)  # (G, N) judge score - consistency penalty
    spread: np.ndarray = field(repr=False)  # (G,) per-LR pixel spread


def _mixed_seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in ("align", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _judge_scores(judge: Judge, images: np.ndarray, lr: np.ndarray) -> np.ndarray:
    verdicts = judge.score_many(list(images), lr=lr)
    return np.asarray([np.nan if v.score is None else float(v.score) for v in verdicts], np.float64)


def sample_round(
    policy: Any,
    sched: Mapping[str, Any],
    prompts: np.ndarray,
    judge: Judge,
    config: AlignConfig,
    round_index: int,
) -> RoundSamples:
    """Draw this round's prompts and N samples each from ``policy``, and score them (pure arrays in)."""
    import torch

    rng = np.random.default_rng(_mixed_seed(config.seed, round_index, "prompts"))
    g = min(config.prompts_per_round, len(prompts))
    index = np.sort(rng.choice(len(prompts), size=g, replace=False))
    n = config.samples
    lrs = np.repeat(prompts[index], n, axis=0)
    cond = condition_tensor(lrs)
    seeds = [_mixed_seed(config.seed, round_index, int(i), j) for i in index for j in range(n)]
    parts: list[Chains] = []
    policy.eval()
    for start in range(0, len(seeds), SAMPLE_BATCH):
        stop = start + SAMPLE_BATCH
        parts.append(
            sample_chains(
                policy, sched, cond[start:stop], seeds[start:stop], steps=config.sample_steps, eta=config.eta
            )
        )
    chains = Chains(
        latents=torch.cat([c.latents for c in parts], dim=1),
        timesteps=parts[0].timesteps,
        prevs=parts[0].prevs,
        stds=parts[0].stds,
        logp=torch.cat([c.logp for c in parts], dim=1),
    )
    images = tensor_to_images(chains.latents[-1])
    gray = to_gray(images)
    lr_gray = to_gray(lrs)
    psnr = lr_psnr(gray, lr_gray).reshape(g, n)
    scores = np.stack(
        [_judge_scores(judge, images[k * n : (k + 1) * n], prompts[index[k]]) for k in range(g)]
    )
    rewards = scores - consistency_penalty(
        psnr, margin_db=config.consistency_margin_db, weight=config.consistency_weight
    )
    spread = pixel_spread(gray.reshape(g, n, *gray.shape[1:]))
    return RoundSamples(index, cond, chains, scores, psnr, rewards, spread)


def _grpo_update(
    policy: Any,
    reference: Any,
    optimizer: Any,
    sched: Mapping[str, Any],
    data: RoundSamples,
    config: AlignConfig,
    round_index: int,
) -> dict[str, float]:
    import torch

    adv_all = np.clip(group_advantages(data.rewards), -ADVANTAGE_CLIP, ADVANTAGE_CLIP).reshape(-1)
    active = np.flatnonzero(adv_all != 0.0)
    stats: dict[str, list[float]] = {"loss": [], "clip_fraction": [], "ratio": [], "kl": []}
    if len(active) == 0:
        return {"loss": math.nan, "clip_fraction": 0.0, "ratio": 1.0, "kl": 0.0, "updates": 0}
    device = next(policy.parameters()).device
    acp = _acp(sched, device)
    v_pred = sched.get("prediction_type") == "v_prediction"
    steps = data.chains.stochastic_steps()
    rng = np.random.default_rng(_mixed_seed(config.seed, round_index, "grpo"))
    updates = 0
    policy.train()
    for _ in range(config.passes):
        order = rng.permutation(active)
        for start in range(0, len(order), config.batch_size):
            rows = torch.as_tensor(order[start : start + config.batch_size], dtype=torch.long)
            chosen = rng.choice(steps, size=config.timesteps_per_sample, replace=False)
            optimizer.zero_grad(set_to_none=True)
            adv = torch.as_tensor(adv_all[rows.numpy()], dtype=torch.float32, device=device)
            cond = data.cond[rows].to(device)
            for k in sorted(int(c) for c in chosen):
                t, prev = data.chains.timesteps[k], data.chains.prevs[k]
                x_t = data.chains.latents[k][rows].to(device)
                x_prev = data.chains.latents[k + 1][rows].to(device)
                tt = torch.full((len(rows),), t, device=device, dtype=torch.long)
                out = policy(torch.cat([x_t, cond], dim=1), tt).sample
                mean, std = ddim_step_mean(x_t, out, acp, t, prev, config.eta, v_pred)
                logp = gaussian_logprob(x_prev, mean, std)
                kl = None
                if config.kl > 0:
                    with torch.no_grad():
                        ref_out = reference(torch.cat([x_t, cond], dim=1), tt).sample
                        ref_mean, _ = ddim_step_mean(x_t, ref_out, acp, t, prev, config.eta, v_pred)
                    kl = gaussian_kl_same_std(mean, ref_mean, std)
                old = data.chains.logp[k][rows].to(device)
                loss, s = grpo_loss(logp, old, adv, clip=config.clip, kl=kl, kl_coef=config.kl)
                (loss / len(chosen)).backward()
                stats["loss"].append(float(loss.detach()))
                for key in ("clip_fraction", "ratio", "kl"):
                    stats[key].append(s[key])
            _step(policy, optimizer, None, config.grad_clip)
            updates += 1
    policy.eval()
    return {**{k: float(np.mean(v)) for k, v in stats.items()}, "updates": updates}


def _step(policy: Any, optimizer: Any, loss: torch.Tensor | None, grad_clip: float) -> None:
    """One optimizer step: backward ``loss`` (None: the gradients are already accumulated), clip, step."""
    import torch

    if loss is not None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
    optimizer.step()


def _noised(
    scheduler: Any, sched: Mapping[str, Any], clean: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clean samples noised at random training timesteps: (noisy, timesteps, the model's target)."""
    import torch

    b = clean.shape[0]
    t = torch.randint(0, int(sched.get("num_train_timesteps", 1000)), (b,), generator=gen)
    noise = torch.randn(clean.shape, generator=gen)
    noisy = scheduler.add_noise(clean, noise, t)
    target = noise if sched.get("prediction_type") == "epsilon" else scheduler.get_velocity(clean, noise, t)
    return noisy, t, target


def _raft_update(
    policy: Any,
    reference: Any,
    optimizer: Any,
    sched: Mapping[str, Any],
    data: RoundSamples,
    config: AlignConfig,
    round_index: int,
) -> dict[str, float]:
    import torch
    from diffusers import DDPMScheduler

    kept = best_samples(data.rewards, min_gap=config.min_gap, keep=config.keep)
    if not kept:
        return {"loss": math.nan, "fit": math.nan, "drift": math.nan, "kept": 0, "updates": 0}
    device = next(policy.parameters()).device
    scheduler: Any = DDPMScheduler(**dict(sched))
    n = config.samples
    x0 = data.chains.latents[-1]
    gen = torch.Generator(device="cpu").manual_seed(_mixed_seed(config.seed, round_index, "raft"))
    rng = np.random.default_rng(_mixed_seed(config.seed, round_index, "raft-order"))
    targets = np.asarray([g * n + i for g, i in kept])
    stats: dict[str, list[float]] = {"loss": [], "fit": [], "drift": []}
    updates = 0
    policy.train()
    for _ in range(config.passes):
        order = rng.permutation(targets)
        for start in range(0, len(order), config.batch_size):
            rows = torch.as_tensor(order[start : start + config.batch_size], dtype=torch.long)
            noisy, t, target = _noised(scheduler, sched, x0[rows], gen)
            pred = policy(torch.cat([noisy, data.cond[rows]], dim=1).to(device), t.to(device)).sample
            fit = ((pred - target.to(device)) ** 2).mean()
            loss = fit
            drift = torch.zeros(())
            if config.anchor > 0:
                others = torch.as_tensor(rng.choice(x0.shape[0], size=len(rows), replace=False))
                noisy_a, t_a, _ = _noised(scheduler, sched, x0[others], gen)
                inputs = torch.cat([noisy_a, data.cond[others]], dim=1).to(device)
                pred_a = policy(inputs, t_a.to(device)).sample
                with torch.no_grad():
                    ref_a = reference(inputs, t_a.to(device)).sample
                drift = ((pred_a - ref_a) ** 2).mean()
                loss = fit + config.anchor * drift
            _step(policy, optimizer, loss, config.grad_clip)
            updates += 1
            for key, value in (("loss", loss), ("fit", fit), ("drift", drift)):
                stats[key].append(float(value.detach()))
    policy.eval()
    return {**{k: float(np.mean(v)) for k, v in stats.items()}, "kept": len(kept), "updates": updates}


def _dpo_update(
    policy: Any,
    reference: Any,
    optimizer: Any,
    sched: Mapping[str, Any],
    data: RoundSamples,
    config: AlignConfig,
    round_index: int,
) -> dict[str, float]:
    import torch
    from diffusers import DDPMScheduler

    pairs = preference_pairs(data.rewards, min_gap=config.min_gap, per_group=config.pairs_per_group)
    if not pairs:
        return {"loss": math.nan, "implicit_accuracy": math.nan, "margin": 0.0, "pairs": 0, "updates": 0}
    device = next(policy.parameters()).device
    scheduler: Any = DDPMScheduler(**dict(sched))
    n = config.samples
    x0 = data.chains.latents[-1]
    gen = torch.Generator(device="cpu").manual_seed(_mixed_seed(config.seed, round_index, "dpo"))
    rng = np.random.default_rng(_mixed_seed(config.seed, round_index, "dpo-order"))
    stats: dict[str, list[float]] = {"loss": [], "implicit_accuracy": [], "margin": []}
    updates = 0
    policy.train()
    for _ in range(config.passes):
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), config.batch_size):
            batch = [pairs[int(i)] for i in order[start : start + config.batch_size]]
            w = torch.as_tensor([g * n + i for g, i, _ in batch], dtype=torch.long)
            lo = torch.as_tensor([g * n + j for g, _, j in batch], dtype=torch.long)
            b = len(batch)
            t = torch.randint(0, int(sched.get("num_train_timesteps", 1000)), (b,), generator=gen)
            noise = torch.randn((b, *x0.shape[1:]), generator=gen)
            clean = torch.cat([x0[w], x0[lo]])
            tt = torch.cat([t, t])  # the pair shares its timestep and noise
            eps = torch.cat([noise, noise])
            noisy = scheduler.add_noise(clean, eps, tt)
            target = (
                eps if sched.get("prediction_type") == "epsilon" else scheduler.get_velocity(clean, eps, tt)
            )
            inputs = torch.cat([noisy, torch.cat([data.cond[w], data.cond[lo]])], dim=1).to(device)
            tt, target = tt.to(device), target.to(device)
            pred = policy(inputs, tt).sample
            with torch.no_grad():
                ref = reference(inputs, tt).sample
            err = ((pred - target) ** 2).flatten(1).mean(dim=1)
            ref_err = ((ref - target) ** 2).flatten(1).mean(dim=1)
            loss, s = diffusion_dpo_loss(err[:b], err[b:], ref_err[:b], ref_err[b:], config.beta)
            _step(policy, optimizer, loss, config.grad_clip)
            updates += 1
            stats["loss"].append(float(loss.detach()))
            for key in ("implicit_accuracy", "margin"):
                stats[key].append(s[key])
    policy.eval()
    return {**{k: float(np.mean(v)) for k, v in stats.items()}, "pairs": len(pairs), "updates": updates}


def align(
    base_unet: Any,
    sched: Mapping[str, Any],
    prompts: np.ndarray,
    judge: Judge,
    config: AlignConfig,
    *,
    state: AlignState | None = None,
    on_round: Callable[[AlignState], None] | None = None,
    progress: Callable[[Mapping[str, Any]], None] | None = None,
) -> AlignResult:
    """Align a copy of ``base_unet`` with ``judge``'s reward on LR ``prompts`` (P, h, w, 3) in [0, 1].

    ``base_unet`` is never changed (it is the frozen reference). ``on_round(state)`` is called after
    each round (to save a resume point) and ``progress(log row)`` with each round's log.
    """
    import torch

    if prompts.ndim != 4 or prompts.shape[0] < 1 or prompts.shape[3] != 3:
        raise SpecError(
            f"align: prompts must be a non-empty (P, h, w, 3) LR array, got shape {prompts.shape}"
        )
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        reference = base_unet.eval().requires_grad_(False)
        policy = copy.deepcopy(base_unet).requires_grad_(True)
        optimizer = torch.optim.AdamW(
            policy.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        logs: list[Mapping[str, Any]] = []
        start = 0
        if state is not None:
            if state.round > config.rounds:
                raise SpecError(
                    f"align: the resume state is at round {state.round}, past rounds={config.rounds}"
                )
            policy.load_state_dict(dict(state.model))
            optimizer.load_state_dict(dict(state.optimizer))
            logs = list(state.logs)
            start = state.round
        update = {"dpo": _dpo_update, "grpo": _grpo_update, "raft": _raft_update}[config.method]
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        for r in range(start, config.rounds):
            t0 = time.perf_counter()
            data = sample_round(policy, sched, prompts, judge, config, r)
            t_sample = time.perf_counter() - t0
            stats = update(policy, reference, optimizer, sched, data, config, r)
            row = {
                "round": r + 1,
                "prompts": len(data.prompt_index),
                "samples": int(data.rewards.size),
                "reward": _nanmean(data.rewards),
                "judge_score": _nanmean(data.judge_scores),
                "abstained": int(np.isnan(data.judge_scores).sum()),
                "lr_psnr": float(data.lr_psnr.mean()),
                "penalised": float((data.rewards < data.judge_scores).mean()),
                "spread": float(data.spread.mean()),
                **stats,
                "sample_seconds": round(t_sample, 2),
                "seconds": round(time.perf_counter() - t0, 2),
            }
            logs.append(row)
            if on_round is not None:  # first the resume point, then the log: a log row is never lost
                on_round(
                    AlignState(
                        round=r + 1,
                        model=copy.deepcopy(policy.state_dict()),
                        optimizer=copy.deepcopy(optimizer.state_dict()),
                        logs=tuple(logs),
                    )
                )
            if progress is not None:
                progress(row)
        policy.eval().requires_grad_(False)
        return AlignResult(
            unet=policy,
            logs=tuple(logs),
            seconds=time.perf_counter() - t_wall,
            cpu_seconds=time.process_time() - t_cpu,
            resumed_from=start,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _nanmean(values: np.ndarray) -> float:
    finite = np.asarray(values, np.float64)[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan
