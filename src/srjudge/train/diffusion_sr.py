"""Train and evaluate the glyph testbed's diffusion SR model (:mod:`srjudge.sr.conditional_diffusion`).

Pure arrays in: :func:`train_diffusion_sr` takes HR (N, 32, 32, 3) and LR (N, 8, 8, 3) float arrays in
[0, 1] and a :class:`DiffusionSRTrainConfig`, and returns a :class:`TrainResult` (the UNet, with EMA
weights when enabled, and the loss curve). DDPM training: a random timestep per example, noise added by
``DDPMScheduler.add_noise``, MSE against the noise (``epsilon``) or the velocity (``v_prediction``).
AdamW with linear warm-up and cosine decay, gradient clipping, optional EMA of the weights.

Determinism and resuming: step ``k`` draws its batch indices, timesteps and noise from a generator
seeded with ``(seed, k)`` only, so a run resumed from a :class:`TrainState` (saved every
``checkpoint_every`` steps through ``on_checkpoint``) follows the same data as an uninterrupted one.

:func:`evaluate_diffusion_sr` measures, per severity, the diversity of N samples per LR (mean pixel
standard deviation across the samples), their LR consistency (downscaled sample vs LR), their L1 to the
HR glyph (and bicubic's, for reference) and, given a reader (e.g. the testbed's ``referee``), the rate of
samples that show the WRONG symbol.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srjudge.errors import ImageError, SpecError
from srjudge.images.resize import imresize
from srjudge.sr.conditional_diffusion import (
    SCALE,
    UNetSettings,
    build_unet,
    condition_tensor,
    hr_tensor,
    scheduler_config,
    to_gray,
    upsample_condition,
)
from srjudge.train.common import warmup_cosine_lr

SEVERITY_NAMES = ("clean", "mild", "moderate", "severe")


@dataclass(frozen=True)
class DiffusionSRTrainConfig:
    """Every hyper-parameter of one training run (recorded in the checkpoint's record)."""

    seed: int = 0
    steps: int = 1200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float | None = 0.995
    prediction_type: str = "v_prediction"
    beta_schedule: str = "squaredcos_cap_v2"
    num_train_timesteps: int = 1000
    unet: UNetSettings = field(default_factory=lambda: UNetSettings(block_out_channels=(16, 32, 64)))
    threads: int = 2
    log_every: int = 25

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "num_train_timesteps", "threads", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"DiffusionSRTrainConfig.{name} must be an integer >= 1, got {value!r}")
        if self.warmup_steps < 0:
            raise SpecError(f"DiffusionSRTrainConfig.warmup_steps must be >= 0, got {self.warmup_steps!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SpecError(f"DiffusionSRTrainConfig.lr must be a positive number, got {self.lr!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise SpecError(
                f"DiffusionSRTrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}"
            )
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise SpecError(
                f"DiffusionSRTrainConfig.ema_decay must be in (0, 1) or None, got {self.ema_decay!r}"
            )
        scheduler_config(  # validates prediction_type and beta_schedule
            prediction_type=self.prediction_type,
            beta_schedule=self.beta_schedule,
            num_train_timesteps=self.num_train_timesteps,
        )

    def scheduler_config(self) -> dict[str, Any]:
        return scheduler_config(
            prediction_type=self.prediction_type,
            beta_schedule=self.beta_schedule,
            num_train_timesteps=self.num_train_timesteps,
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unet"]["block_out_channels"] = list(self.unet.block_out_channels)
        return data


@dataclass(frozen=True)
class TrainState:
    """Everything needed to resume: the step reached, model/EMA/optimizer state dicts, the per-step losses."""

    step: int
    model: Mapping[str, Any] = field(repr=False)
    ema: Mapping[str, Any] | None = field(repr=False)
    optimizer: Mapping[str, Any] = field(repr=False)
    losses: tuple[float, ...] = field(repr=False)


@dataclass(frozen=True)
class TrainResult:
    """The trained UNet (EMA weights when enabled), the raw per-step losses and timing."""

    unet: Any = field(repr=False)
    losses: tuple[float, ...] = field(repr=False)
    steps: int
    seconds: float
    cpu_seconds: float
    resumed_from: int

    def curve(self, every: int) -> list[list[float]]:
        """``[[last step of window, mean loss of window], ...]`` over windows of ``every`` steps."""
        out: list[list[float]] = []
        for start in range(0, len(self.losses), every):
            window = self.losses[start : start + every]
            out.append([start + len(window), float(np.mean(window))])
        return out


def check_pairs(hr: np.ndarray, lr: np.ndarray) -> None:
    """HR (N, 4h, 4w, 3) and LR (N, h, w, 3) float arrays in [0, 1] with N >= 1; else ImageError."""
    if hr.ndim != 4 or lr.ndim != 4 or hr.shape[3] != 3 or lr.shape[3] != 3:
        raise ImageError(
            f"training needs HR (N, H, W, 3) and LR (N, h, w, 3) arrays; got {hr.shape} and {lr.shape}"
        )
    if hr.shape[0] != lr.shape[0] or hr.shape[0] < 1:
        raise ImageError(
            f"HR and LR must hold the same number (>= 1) of images; got {hr.shape[0]} and {lr.shape[0]}"
        )
    if hr.shape[1:3] != (lr.shape[1] * SCALE, lr.shape[2] * SCALE):
        raise ImageError(f"HR must be {SCALE}x the LR size; got HR {hr.shape[1:3]} and LR {lr.shape[1:3]}")
    for name, a in (("HR", hr), ("LR", lr)):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ImageError(f"{name} values must be finite and in [0, 1]")


def data_digest(hr: np.ndarray, lr: np.ndarray, extra: Mapping[str, Any] | None = None) -> str:
    """sha256 of the training arrays (float32 bytes, shapes) and ``extra`` (e.g. the data config), as JSON."""
    h = hashlib.sha256()
    for a in (hr, lr):
        arr = np.ascontiguousarray(a, dtype=np.float32)
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
    h.update(json.dumps(dict(extra or {}), sort_keys=True, default=str).encode())
    return h.hexdigest()


def _step_generator(seed: int, step: int) -> Any:
    import torch

    mixed = int.from_bytes(hashlib.sha256(f"diffusion-sr:{seed}:{step}".encode()).digest()[:8], "little")
    return torch.Generator(device="cpu").manual_seed(mixed & ((1 << 63) - 1))


def learning_rate(config: DiffusionSRTrainConfig, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    return warmup_cosine_lr(
        step,
        config.steps,
        lr=config.lr,
        warmup_steps=config.warmup_steps,
        min_lr_ratio=config.min_lr_ratio,
    )


def train_diffusion_sr(
    hr: np.ndarray,
    lr: np.ndarray,
    config: DiffusionSRTrainConfig,
    *,
    state: TrainState | None = None,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train the conditional UNet on (HR, LR) pairs; resume from ``state`` when given.

    ``on_checkpoint(state)`` is called every ``checkpoint_every`` steps (0: never) and ``progress(step,
    mean loss of the last log window)`` every ``config.log_every`` steps.
    """
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    hr = np.asarray(hr, dtype=np.float32)
    lr = np.asarray(lr, dtype=np.float32)
    check_pairs(hr, lr)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        x0_all = hr_tensor(hr)
        cond_all = condition_tensor(lr)
        n = x0_all.shape[0]
        scheduler: Any = DDPMScheduler(**config.scheduler_config())
        unet = build_unet(config.unet, seed=config.seed)
        unet.train()
        ema = copy.deepcopy(unet).eval().requires_grad_(False) if config.ema_decay is not None else None
        optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        losses: list[float] = []
        start = 0
        if state is not None:
            if state.step > config.steps:
                raise SpecError(f"the resume state is at step {state.step}, past config.steps={config.steps}")
            unet.load_state_dict(dict(state.model))
            optimizer.load_state_dict(dict(state.optimizer))
            if ema is not None:
                if state.ema is None:
                    raise SpecError("the resume state has no EMA weights but config.ema_decay is set")
                ema.load_state_dict(dict(state.ema))
            losses = list(state.losses)
            start = state.step
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        for step in range(start, config.steps):
            gen = _step_generator(config.seed, step)
            idx = torch.randint(0, n, (config.batch_size,), generator=gen)
            t = torch.randint(0, config.num_train_timesteps, (config.batch_size,), generator=gen)
            x0 = x0_all[idx]
            noise = torch.randn(x0.shape, generator=gen)
            noisy = scheduler.add_noise(x0, noise, t)
            target = noise if config.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            pred = unet(torch.cat([noisy, cond_all[idx]], dim=1), t).sample
            loss = F.mse_loss(pred, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(unet.parameters(), config.grad_clip)
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"diffusion SR training diverged at step {step} (loss {value})")
            losses.append(value)
            if ema is not None:
                decay = min(float(config.ema_decay or 0.0), (1.0 + step) / (10.0 + step))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), unet.parameters(), strict=True):
                        pe.lerp_(pm, 1.0 - decay)
            done = step + 1
            if progress is not None and done % config.log_every == 0:
                progress(done, float(np.mean(losses[-config.log_every :])))
            if (
                on_checkpoint is not None
                and checkpoint_every
                and done % checkpoint_every == 0
                and done < config.steps
            ):
                on_checkpoint(
                    TrainState(
                        step=done,
                        model=copy.deepcopy(unet.state_dict()),
                        ema=None if ema is None else copy.deepcopy(ema.state_dict()),
                        optimizer=copy.deepcopy(optimizer.state_dict()),
                        losses=tuple(losses),
                    )
                )
        final = ema if ema is not None else unet
        final.eval()
        return TrainResult(
            unet=final,
            losses=tuple(losses),
            steps=config.steps,
            seconds=time.perf_counter() - t_wall,
            cpu_seconds=time.process_time() - t_cpu,
            resumed_from=start,
        )
    finally:
        torch.set_num_threads(previous_threads)


# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeverityEvaluation:
    """Sample statistics at one severity (means over LR inputs; ``None`` when no reader was given).

    ``diversity``: per LR, the per-pixel std across its samples (gray, [0, 1]), averaged over pixels.
    ``lr_mae``: |bicubic downscale of a sample - LR| (gray). ``l1_hr`` / ``bicubic_l1_hr``: |sample - HR|
    and |bicubic(LR) - HR|. ``wrong_rate``: the fraction of samples whose read symbol differs from the
    label (unreadable counts as wrong); ``lr_any_wrong``: LRs with at least one wrong sample;
    ``lr_mixed``: LRs with at least one wrong AND one right sample (where selection can matter).
    """

    severity: int
    name: str
    count: int
    samples: int
    diversity: float
    lr_mae: float
    l1_hr: float
    bicubic_l1_hr: float
    wrong_rate: float | None = None
    lr_any_wrong: float | None = None
    lr_mixed: float | None = None
    bicubic_wrong_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DiffusionEvaluation:
    """Per-severity sample statistics with the sampling settings and the reader used."""

    split: str
    samples: int
    steps: int
    eta: float
    reader: str | None
    seconds: float
    samples_per_second: float
    rows: tuple[SeverityEvaluation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "seconds": round(self.seconds, 2),
            "samples_per_second": round(self.samples_per_second, 2),
            "rows": [r.to_dict() for r in self.rows],
        }


SampleFn = Callable[[np.ndarray, Sequence[int]], np.ndarray]
ReadFn = Callable[[Sequence[np.ndarray]], list[str | None]]


def evaluate_diffusion_sr(
    sample: SampleFn,
    hr: np.ndarray,
    lr: np.ndarray,
    labels: Sequence[str],
    severities: np.ndarray,
    *,
    samples: int = 8,
    seed: int = 0,
    batch: int = 64,
    read: ReadFn | None = None,
    reader_name: str | None = None,
    split: str = "val",
    steps: int = 0,
    eta: float = 0.0,
) -> DiffusionEvaluation:
    """Draw ``samples`` SR outputs per LR with ``sample(lrs, seeds)`` and measure them per severity.

    LR ``i`` uses seeds ``seed + i * samples + j``. ``read(images) -> labels`` (e.g. a reader's labels)
    turns on the wrong-symbol measures. ``steps``/``eta`` are only recorded.
    """
    hr = np.asarray(hr, dtype=np.float32)
    lr = np.asarray(lr, dtype=np.float32)
    check_pairs(hr, lr)
    if len(labels) != hr.shape[0] or len(severities) != hr.shape[0]:
        raise SpecError("labels and severities must have one entry per image")
    if samples < 2:
        raise SpecError(f"evaluation needs samples >= 2 to measure diversity, got {samples}")
    n = hr.shape[0]
    per_batch = max(batch // samples, 1)
    outs = np.zeros((n, samples, *hr.shape[1:3]), np.float32)
    read_labels: list[list[str | None]] = []
    t0 = time.perf_counter()
    for start in range(0, n, per_batch):
        stop = min(start + per_batch, n)
        lrs = np.repeat(lr[start:stop], samples, axis=0)
        seeds = [seed + i * samples + j for i in range(start, stop) for j in range(samples)]
        images = sample(lrs, seeds)
        outs[start:stop] = to_gray(images).reshape(stop - start, samples, *hr.shape[1:3])
        if read is not None:
            got = read(list(images))
            read_labels.extend(got[k * samples : (k + 1) * samples] for k in range(stop - start))
    seconds = time.perf_counter() - t0
    hr_gray = to_gray(hr)
    lr_gray = to_gray(lr)
    bicubic = upsample_condition(lr_gray)
    bicubic_read: list[str | None] | None = None
    if read is not None:
        bicubic_read = read([np.repeat(b[..., None], 3, axis=-1) for b in bicubic])
    rows: list[SeverityEvaluation] = []
    sev = np.asarray(severities)
    for s in sorted({int(v) for v in sev}):
        idx = [int(i) for i in np.flatnonzero(sev == s)]
        diversity = float(outs[idx].std(axis=1).mean())
        down = np.stack([_downscale(outs[i]) for i in idx])  # (k, samples, h, w)
        lr_mae = float(np.abs(down - lr_gray[idx][:, None]).mean())
        l1 = float(np.abs(outs[idx] - hr_gray[idx][:, None]).mean())
        bic = float(np.abs(bicubic[idx] - hr_gray[idx]).mean())
        wrong = any_wrong = mixed = bic_wrong = None
        if read is not None and bicubic_read is not None:
            flags = np.asarray([[got != labels[i] for got in read_labels[i]] for i in idx], dtype=np.bool_)
            wrong = float(flags.mean())
            any_wrong = float(flags.any(axis=1).mean())
            mixed = float((flags.any(axis=1) & ~flags.all(axis=1)).mean())
            bic_wrong = float(np.mean([bicubic_read[i] != labels[i] for i in idx]))
        name = SEVERITY_NAMES[s] if 0 <= s < len(SEVERITY_NAMES) else str(s)
        rows.append(
            SeverityEvaluation(
                s, name, len(idx), samples, diversity, lr_mae, l1, bic, wrong, any_wrong, mixed, bic_wrong
            )
        )
    total = n * samples
    return DiffusionEvaluation(
        split=split,
        samples=samples,
        steps=steps,
        eta=eta,
        reader=reader_name,
        seconds=seconds,
        samples_per_second=total / seconds if seconds > 0 else float("inf"),
        rows=tuple(rows),
    )


def _downscale(stack: np.ndarray) -> np.ndarray:
    """(S, H, W) -> (S, H/4, W/4) MATLAB bicubic (antialiased) downscale."""
    _, h, w = stack.shape
    down = imresize(np.transpose(stack, (1, 2, 0)).astype(np.float64), output_shape=(h // SCALE, w // SCALE))
    if down.ndim == 2:
        down = down[:, :, None]
    return np.transpose(down, (2, 0, 1)).astype(np.float32)
