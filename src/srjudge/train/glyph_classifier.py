"""Train the testbed's glyph readers (:class:`srjudge.models.glyph_cnn.GlyphCNN`) on rendered glyphs.

Recipe (:class:`GlyphTrainConfig`): the first ``train_items`` font items of the testbed's train split
(:func:`srjudge.testbed.arrays.glyph_arrays`: every glyph at the four severities) give two kinds of
inputs, both 32x32 gray by the readers' rule (:func:`srjudge.readers.classifier.glyph_input`):

- each distinct HR glyph, ``hr_repeat`` times per epoch (what a good SR output looks like), and
- each LR input upsampled bicubic x4 (what the readout judge reads for the LR, and what a blurry SR
  output looks like).

Every batch is augmented on the fly (seeded): contrast and brightness (x' = 0.5 + a(x - 0.5) + b), a
3x3 Gaussian blur for a fraction of the images, and Gaussian noise, so that the network also reads
noisy or soft SR samples. AdamW with a cosine schedule and a short warm-up, cross-entropy with label
smoothing. One torch thread by default (the machine is shared; one thread was also faster than two).

Evaluation on held-out font faces (val and test splits) reports accuracy on clean HR glyphs (overall and
per face) and on LR inputs upsampled x4 per severity, plus scikit-learn's handwritten digits (LR only,
upsampled x4) per split. Nothing here reads or writes files except :func:`train_glyph_classifier`,
which writes ``model.safetensors`` and ``record.json`` into the output folder and keeps a per-epoch
resume state in ``<out>/.partial/`` so that an interrupted run continues where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from srjudge.errors import SpecError
from srjudge.readers.base import CLASS_INDEX, CLASSES
from srjudge.readers.classifier import RECORD_NAME, WEIGHTS_NAME, glyph_input
from srjudge.train.common import warmup_cosine_lr

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GlyphTrainConfig:
    """Everything that defines a trained glyph classifier (stored in its record)."""

    name: str = "glyph-reader"
    width: int = 16
    dropout: float = 0.2
    seed: int = 0
    testbed_seed: int = 0
    train_items: int = 16000
    hr_repeat: int = 2
    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    label_smoothing: float = 0.05
    blur_fraction: float = 0.3
    noise_max: float = 0.08
    contrast: tuple[float, float] = (0.55, 1.15)
    brightness: float = 0.12
    threads: int = 1
    eval_copies: int = 5

    def __post_init__(self) -> None:
        positive = ("width", "train_items", "hr_repeat", "epochs", "batch_size", "threads", "eval_copies")
        for key in positive:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"GlyphTrainConfig.{key} must be an integer >= 1, got {value!r}.")
        if not (self.lr > 0 and 0 <= self.dropout < 1 and 0 <= self.blur_fraction <= 1):
            raise SpecError(
                f"GlyphTrainConfig: need lr > 0, 0 <= dropout < 1, 0 <= blur_fraction <= 1; got "
                f"lr={self.lr}, dropout={self.dropout}, blur_fraction={self.blur_fraction}."
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["contrast"] = list(self.contrast)
        return data


#: The two bundled readers: same recipe, different width and seeds (the referee grades, never judges).
READER_CONFIG = GlyphTrainConfig(name="glyph-reader", width=16, seed=0)
REFEREE_CONFIG = GlyphTrainConfig(name="glyph-referee", width=20, seed=1)


@dataclass(frozen=True)
class TrainingData:
    """Network inputs (N, 1, 32, 32) float32 and class indices (N,), with what each input is."""

    x: np.ndarray
    y: np.ndarray
    kind: np.ndarray  # 0 = HR glyph, 1 = LR upsampled x4
    digest: str
    testbed: dict[str, Any]


def labels_to_index(labels: Sequence[str]) -> np.ndarray:
    return np.asarray([CLASS_INDEX[c] for c in labels], dtype=np.int64)


def training_data(config: GlyphTrainConfig) -> TrainingData:
    """The train-split inputs of the recipe (pure: renders in memory, ~2.5 ms per item)."""
    from srjudge.testbed import TestbedConfig, glyph_arrays

    testbed = TestbedConfig(seed=config.testbed_seed)
    arrays = glyph_arrays(testbed, "train", count=config.train_items)
    # Severities of one glyph are consecutive and share its HR: keep each HR once (severity 0 rows,
    # or the first row of a glyph if severity 0 is absent).
    first = [0] + [
        i
        for i in range(1, len(arrays))
        if arrays.ids[i].rsplit("_s", 1)[0] != arrays.ids[i - 1].rsplit("_s", 1)[0]
    ]
    hr_x = glyph_input(list(arrays.hr[first]))
    lr_x = glyph_input(list(arrays.lr))
    labels = labels_to_index(arrays.labels)
    x = np.concatenate([hr_x, lr_x])
    y = np.concatenate([labels[first], labels])
    kind = np.concatenate([np.zeros(len(first), np.int8), np.ones(len(lr_x), np.int8)])
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(y.tobytes())
    return TrainingData(x=x, y=y, kind=kind, digest="sha256:" + h.hexdigest(), testbed=testbed.to_dict())


def _augment(x: Any, gen: Any, config: GlyphTrainConfig) -> Any:
    """Seeded contrast/brightness, blur and noise on a (B, 1, 32, 32) batch (torch)."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]
    lo, hi = config.contrast
    a = lo + (hi - lo) * torch.rand(b, 1, 1, 1, generator=gen)
    shift = config.brightness * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
    out = 0.5 + a * (x - 0.5) + shift
    taps = torch.tensor([0.25, 0.5, 0.25])
    kernel = (taps[:, None] * taps[None, :])[None, None]
    blurred = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), kernel)
    use_blur = (torch.rand(b, 1, 1, 1, generator=gen) < config.blur_fraction).float()
    out = use_blur * blurred + (1 - use_blur) * out
    sigma = config.noise_max * torch.rand(b, 1, 1, 1, generator=gen)
    out = out + sigma * torch.randn(out.shape, generator=gen)
    return out.clamp(0.0, 1.0)


def _epoch_order(data: TrainingData, config: GlyphTrainConfig, epoch: int) -> np.ndarray:
    rng = np.random.default_rng([config.seed, epoch])
    hr = np.flatnonzero(data.kind == 0)
    lr = np.flatnonzero(data.kind == 1)
    order = np.concatenate([np.tile(hr, config.hr_repeat), lr])
    return rng.permutation(order)


def steps_per_epoch(data: TrainingData, config: GlyphTrainConfig) -> int:
    n = int((data.kind == 0).sum()) * config.hr_repeat + int((data.kind == 1).sum())
    return math.ceil(n / config.batch_size)


def train_network(
    data: TrainingData,
    config: GlyphTrainConfig,
    *,
    state: Mapping[str, Any] | None = None,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    progress: Progress | None = None,
) -> Any:
    """Train a :class:`GlyphCNN` on ``data``; ``state`` resumes from an epoch boundary (deterministic).

    ``on_epoch(epoch, state)`` receives the resume state after each epoch (model, optimiser, epoch).
    """
    import torch
    import torch.nn.functional as F

    from srjudge.models.glyph_cnn import GlyphCNN

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    net = GlyphCNN(width=config.width, dropout=config.dropout)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
    per_epoch = steps_per_epoch(data, config)
    total = per_epoch * config.epochs
    x_all = torch.from_numpy(data.x)
    y_all = torch.from_numpy(data.y)
    for epoch in range(start, config.epochs):
        net.train()
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout stream of this epoch
        gen = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        order = torch.from_numpy(_epoch_order(data, config, epoch))
        seen, correct, loss_sum, t0 = 0, 0, 0.0, time.perf_counter()
        for i in range(per_epoch):
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            xb = _augment(x_all[idx], gen, config)
            yb = y_all[idx]
            for group in opt.param_groups:
                step = epoch * per_epoch + i
                group["lr"] = warmup_cosine_lr(step, total, lr=config.lr, warmup_steps=config.warmup_steps)
            logits = net(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            loss_sum += float(loss.detach()) * len(idx)
        if progress is not None:
            progress(
                f"{config.name} epoch {epoch + 1}/{config.epochs}: loss {loss_sum / seen:.3f}, "
                f"train acc {correct / seen:.3f}, {time.perf_counter() - t0:.0f}s"
            )
        if on_epoch is not None:
            snapshot = {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1}
            on_epoch(epoch + 1, copy.deepcopy(snapshot))  # a copy: training goes on in place
    net.eval()
    return net


def predict(net: Any, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(N, 36) probabilities of a network on prepared inputs (N, 1, 32, 32)."""
    import torch

    outs = []
    net.eval()
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            outs.append(torch.softmax(net(torch.from_numpy(x[s : s + batch_size])).double(), 1).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, len(CLASSES)))


def _acc(pred: np.ndarray, y: np.ndarray) -> float:
    return round(float(np.mean(pred == y)), 4) if len(y) else float("nan")


def _top1(scores: np.ndarray) -> np.ndarray:
    """Argmax per row; -1 (never correct) where the row is all zeros (the reader read nothing)."""
    return np.where(scores.sum(axis=1) > 0, scores.argmax(axis=1), -1)


ReadFn = Callable[[list[np.ndarray]], np.ndarray]


def network_read(net: Any) -> ReadFn:
    """A :data:`ReadFn` for a network: images -> (N, 36) probabilities (the readers' input rule)."""
    return lambda images: predict(net, glyph_input(images))


def reader_read(reader: Any) -> ReadFn:
    """A :data:`ReadFn` for any :class:`srjudge.readers.Reader` (rows of zeros where nothing was read)."""

    def read(images: list[np.ndarray]) -> np.ndarray:
        return np.stack([r.distribution() for r in reader.read(images)]) if images else np.zeros((0, 36))

    return read


def evaluate(
    read: ReadFn, *, testbed_seed: int = 0, copies: int = 2, splits: Sequence[str] = ("val", "test")
) -> dict[str, Any]:
    """Held-out accuracy of a reader on the val and test font faces (never seen in training).

    ``read(images) -> (N, 36)`` class scores (a zero row: nothing read, counted wrong). Per split:
    clean HR glyphs (overall and per face), LR inputs upsampled bicubic x4 (as the readout judge
    does) per severity (overall and per face), and scikit-learn digits upsampled x4 (top-1 over the
    36 classes, and restricted to the digits); ``unread`` is the fraction read as nothing.
    """
    from srjudge.metrics.noref import upsample_lr
    from srjudge.testbed import SEVERITIES, TestbedConfig, digits_lr, glyph_arrays

    testbed = TestbedConfig(seed=testbed_seed, val_copies=copies, test_copies=copies)
    out: dict[str, Any] = {}
    for split in splits:
        arrays = glyph_arrays(testbed, split)
        y = labels_to_index(arrays.labels)
        faces = np.asarray(arrays.faces)
        sev = arrays.severities
        clean = sev == 0
        hr_scores = read(list(arrays.hr[clean]))
        lr_scores = read([upsample_lr(lr, (32, 32)) for lr in arrays.lr])
        hr_pred, lr_pred = _top1(hr_scores), _top1(lr_scores)
        levels = sorted(set(sev.tolist()))
        split_out: dict[str, Any] = {
            "n_glyphs": int(clean.sum()),
            "faces": sorted(set(arrays.faces)),
            "hr_clean": _acc(hr_pred, y[clean]),
            "hr_clean_unread": round(float(np.mean(hr_pred < 0)), 4),
            "hr_clean_by_face": {
                f: _acc(hr_pred[faces[clean] == f], y[clean][faces[clean] == f]) for f in sorted(set(faces))
            },
            "lr_up_by_severity": {SEVERITIES[s]: _acc(lr_pred[sev == s], y[sev == s]) for s in levels},
            "lr_up_unread_by_severity": {
                SEVERITIES[s]: round(float(np.mean(lr_pred[sev == s] < 0)), 4) for s in levels
            },
            "lr_up_by_face_severity": {
                f: {
                    SEVERITIES[s]: _acc(lr_pred[(faces == f) & (sev == s)], y[(faces == f) & (sev == s)])
                    for s in levels
                }
                for f in sorted(set(faces))
            },
        }
        digits = digits_lr(split, testbed)
        dy = labels_to_index(digits.labels)
        dp = read([upsample_lr(lr, (32, 32)) for lr in digits.lr])
        split_out["sklearn_digits_lr_up"] = {
            "n": len(dy),
            "top1_36": _acc(_top1(dp), dy),
            "top1_digits_only": _acc(_top1(dp[:, :10]), dy),
        }
        out[split] = split_out
    return out


def _sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def train_glyph_classifier(
    config: GlyphTrainConfig, out_dir: str | os.PathLike[str], *, progress: Progress | None = None
) -> dict[str, Any]:
    """Train, evaluate and save one classifier into ``out_dir``; returns its record.

    Resumable: a finished folder (weights + record with this recipe) is returned as is; an interrupted
    run resumes from its last finished epoch (``<out>/.partial/state.pt``, recipe-checked).
    """
    import torch
    from safetensors.torch import save_file

    from srjudge import __version__

    out = Path(out_dir)
    record_path = out / RECORD_NAME
    recipe = config.to_dict()
    if record_path.is_file() and (out / WEIGHTS_NAME).is_file():
        done = json.loads(record_path.read_text())
        if done.get("recipe") == recipe:
            if progress is not None:
                progress(f"{config.name}: already trained in {out}; nothing to do")
            return dict(done)
    partial = out / ".partial"
    partial.mkdir(parents=True, exist_ok=True)
    state_path = partial / "state.pt"
    t_start = time.perf_counter()
    data = training_data(config)
    t_data = time.perf_counter() - t_start
    if progress is not None:
        progress(
            f"{config.name}: {len(data.y)} training inputs rendered in {t_data:.0f}s ({data.digest[:19]})"
        )
    state = None
    spent_before = 0.0
    if state_path.is_file():
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        if saved.get("recipe") == recipe and saved.get("digest") == data.digest:
            state, spent_before = saved, float(saved.get("train_s", 0.0))
            if progress is not None:
                progress(f"{config.name}: resuming after epoch {state['epoch']}")
    t_train = time.perf_counter()

    def keep(epoch: int, st: dict[str, Any]) -> None:
        st = {
            **st,
            "recipe": recipe,
            "digest": data.digest,
            "train_s": spent_before + time.perf_counter() - t_train,
        }
        tmp = state_path.with_suffix(".tmp")
        torch.save(st, tmp)
        os.replace(tmp, state_path)

    net = train_network(data, config, state=state, on_epoch=keep, progress=progress)
    train_s = spent_before + time.perf_counter() - t_train
    t_eval = time.perf_counter()
    heldout = evaluate(network_read(net), testbed_seed=config.testbed_seed, copies=config.eval_copies)
    eval_s = time.perf_counter() - t_eval
    weights = out / WEIGHTS_NAME
    tmp_weights = partial / WEIGHTS_NAME
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_weights))
    os.replace(tmp_weights, weights)
    os.chmod(weights, 0o644)  # safetensors writes owner-only files; package data must be readable
    record = {
        "format": "srjudge-glyph-classifier",
        "schema": 1,
        "name": config.name,
        "classes": CLASSES,
        "architecture": {
            "type": "GlyphCNN",
            "width": config.width,
            "dropout": config.dropout,
            "input": [1, 32, 32],
        },
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "recipe": recipe,
        "seed": config.seed,
        "data": {
            "testbed_config": data.testbed,
            "split": "train",
            "train_items": config.train_items,
            "inputs": len(data.y),
            "hr_glyphs": int((data.kind == 0).sum()),
            "lr_inputs": int((data.kind == 1).sum()),
            "digest": data.digest,
        },
        "heldout": heldout,
        "wall_time_s": {
            "data": round(t_data, 1),
            "train": round(train_s, 1),
            "evaluate": round(eval_s, 1),
        },
        "weights_sha256": _sha256_file(weights),
        "environment": {
            "torch": torch.__version__,
            "torch_threads": config.threads,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "srjudge": __version__,
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp_record = partial / RECORD_NAME
    tmp_record.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_record, record_path)
    shutil.rmtree(partial, ignore_errors=True)
    return record
