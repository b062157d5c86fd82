"""The glyph testbed's conditional diffusion SR: backend ``diffusion``, trainer, bundled checkpoint.

Tiny random UNets (2 blocks of 8/16 channels) are built from a config and saved to a temporary folder;
their samples are noise, so those tests check shapes, ranges, seeds, errors and training mechanics. The
bundled checkpoint is checked for real: it must exist (the test fails otherwise) and its samples must
be much closer to the true HR glyph than a constant image.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from srjudge.errors import ImageError, MissingWeightsError, SpecError
from srjudge.sr.base import create_sr_backend
from srjudge.sr.conditional_diffusion import (
    BUNDLED_DIR,
    ConditionalDiffusionSR,
    UNetSettings,
    build_unet,
    save_checkpoint,
    scheduler_config,
)
from srjudge.train.diffusion_sr import (
    DiffusionSRTrainConfig,
    TrainState,
    data_digest,
    evaluate_diffusion_sr,
    train_diffusion_sr,
)

TINY = UNetSettings(block_out_channels=(8, 16), norm_num_groups=8, attention_head_dim=8)


def _glyph_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random HR (n, 32, 32, 3) gray-replicated images and their 4x box-downscaled LR (n, 8, 8, 3)."""
    rng = np.random.default_rng(seed)
    gray = rng.random((n, 32, 32)).astype(np.float32)
    hr = np.repeat(gray[..., None], 3, axis=-1)
    lr = hr.reshape(n, 8, 4, 8, 4, 3).mean(axis=(2, 4))
    return hr, lr.astype(np.float32)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete checkpoint folder holding a tiny random-weight conditional UNet."""
    folder = tmp_path_factory.mktemp("tiny-diffusion")
    save_checkpoint(folder, build_unet(TINY, seed=3), scheduler_config(), {"note": "random weights"})
    return folder


def test_tiny_checkpoint_samples_shape_range_and_gray(tiny_folder: Path) -> None:
    """diffusion:<folder> loads, and sample() maps (B, 8, 8, 3) to (B, 32, 32, 3) gray RGB in [0, 1]."""
    backend = create_sr_backend(f"diffusion:{tiny_folder},steps=3,eta=1")
    assert isinstance(backend, ConditionalDiffusionSR)
    assert backend.stochastic and backend.family == "diffusion"
    _, lr = _glyph_like(3)
    out = backend.sample_batch(lr, [0, 1, 2])
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(out[..., 0], out[..., 2])
    assert np.allclose(out * 255, np.round(out * 255), atol=1e-3)  # 8-bit levels


def test_seeds_reproduce_and_differ_and_batching_is_invisible(tiny_folder: Path) -> None:
    """Same seed -> identical, other seed -> different; a sample does not depend on its batch mates."""
    backend = create_sr_backend(f"diffusion:{tiny_folder},steps=3")
    _, lr = _glyph_like(2, seed=1)
    batch = np.repeat(lr[:1], 3, axis=0)
    a = backend.sample_batch(batch, [7, 7, 8])
    assert np.array_equal(a[0], a[1])
    assert np.abs(a[0] - a[2]).mean() > 0.01
    alone = backend.sample_batch(lr[:1], [8])[0]
    assert np.abs(alone - a[2]).max() <= 1.0 / 255 + 1e-6
    again = backend.sample_batch(batch, [7, 7, 8])
    assert np.array_equal(a, again)


def test_candidates_and_upscale(tiny_folder: Path) -> None:
    """candidates() returns N seeded samples (seeds seed..seed+N-1) with settings; upscale() one of them."""
    backend = create_sr_backend(f"diffusion:{tiny_folder},steps=2,eta=0.5")
    _, lr = _glyph_like(1, seed=2)
    cands = backend.candidates(lr[0], scale=4, samples=3, seed=10)
    assert [c.seed for c in cands] == [10, 11, 12]
    assert all(c.image.shape == (32, 32, 3) for c in cands)
    rec = cands[0].record()
    assert rec["settings"]["steps"] == 2 and rec["settings"]["eta"] == 0.5
    assert len(rec["settings"]["weights_sha256"]) == 64
    one = backend.upscale(lr[0], scale=4, seed=11)
    assert np.abs(one - cands[1].image).max() <= 1.0 / 255 + 1e-6
    with pytest.raises(SpecError, match="scale 2"):
        backend.upscale(lr[0], scale=2, seed=0)
    # the public batched API: one image per (LR, seed), the same samples as candidates() draws
    listed = backend.sample([lr[0], lr[0]], scale=4, seeds=[12, 10])
    assert [im.shape for im in listed] == [(32, 32, 3)] * 2
    assert np.abs(listed[0] - cands[2].image).max() <= 1.0 / 255 + 1e-6
    assert np.abs(listed[1] - cands[0].image).max() <= 1.0 / 255 + 1e-6
    with pytest.raises(SpecError, match="seeds"):
        backend.sample([lr[0]], scale=4, seeds=[1, 2])


def test_default_sample_loops_upscale_and_deterministic_backends_make_one() -> None:
    """SRBackend.sample's default is upscale per (LR, seed); a deterministic backend has one None seed."""
    bicubic = create_sr_backend("bicubic")
    _, lr = _glyph_like(2, seed=5)
    assert not bicubic.stochastic and bicubic.sample_seeds(3, seed=7) == [None]
    out = bicubic.sample([lr[0], lr[1]], scale=4, seeds=[None, None])
    assert all(np.array_equal(o, bicubic.upscale(x, scale=4)) for o, x in zip(out, lr, strict=True))
    [cand] = bicubic.candidates(lr[0], scale=4, samples=3)
    assert cand.seed is None and np.array_equal(cand.image, out[0])
    with pytest.raises(SpecError, match="samples"):
        bicubic.sample_seeds(0)


def test_bad_inputs_and_options_are_rejected(tiny_folder: Path) -> None:
    """LR sizes outside 4..32, non-RGB arrays, values outside [0, 1] and bad options give clear errors."""
    backend = create_sr_backend(f"diffusion:{tiny_folder},steps=2")
    with pytest.raises(ImageError, match=r"4\.\.32"):
        backend.sample_batch(np.full((1, 2, 2, 3), 0.5, np.float32), [0])
    with pytest.raises(ImageError, match="RGB"):
        backend.sample_batch(np.full((1, 8, 8), 0.5, np.float32), [0])
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        backend.sample_batch(np.full((1, 8, 8, 3), 2.0, np.float32), [0])
    with pytest.raises(SpecError, match="seeds"):
        backend.sample_batch(np.full((2, 8, 8, 3), 0.5, np.float32), [0])
    with pytest.raises(SpecError, match="eta"):
        create_sr_backend(f"diffusion:{tiny_folder},eta=2")
    with pytest.raises(SpecError, match="Unknown option"):
        create_sr_backend(f"diffusion:{tiny_folder},guidance=3")


def test_missing_and_partial_folders(tmp_path: Path, tiny_folder: Path) -> None:
    """A missing folder, a folder without weights, a UNet with the wrong channels: MissingWeightsError."""
    with pytest.raises(MissingWeightsError, match="does not exist"):
        create_sr_backend(f"diffusion:{tmp_path / 'nope'}")
    partial = tmp_path / "partial"
    shutil.copytree(tiny_folder, partial)
    (partial / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    (partial / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(MissingWeightsError) as info:
        create_sr_backend(f"diffusion:{partial}")
    assert "unet/diffusion_pytorch_model.safetensors" in str(info.value)
    assert "scheduler/scheduler_config.json" in str(info.value)
    from diffusers import UNet2DModel

    wrong = tmp_path / "wrong"
    unet = UNet2DModel(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )
    save_checkpoint(wrong, unet, scheduler_config())
    backend = create_sr_backend(f"diffusion:{wrong}")
    with pytest.raises(MissingWeightsError, match="in_channels=3"):
        backend.sample_batch(np.full((1, 8, 8, 3), 0.5, np.float32), [0])


def test_training_changes_weights_finite_loss_and_resumes_identically() -> None:
    """A few steps change the weights with a finite loss; 2 steps + resume 2 equal 4 steps straight."""
    import torch

    hr, lr = _glyph_like(12, seed=4)
    config = DiffusionSRTrainConfig(
        steps=4, batch_size=4, unet=TINY, warmup_steps=1, log_every=1, ema_decay=0.9
    )
    initial = build_unet(TINY, seed=config.seed).state_dict()
    states: list[TrainState] = []
    full = train_diffusion_sr(hr, lr, config, checkpoint_every=2, on_checkpoint=states.append)
    assert len(full.losses) == 4 and all(np.isfinite(full.losses))
    trained = full.unet.state_dict()
    assert any(not torch.equal(initial[k], trained[k]) for k in initial)
    assert len(states) == 1 and states[0].step == 2
    resumed = train_diffusion_sr(hr, lr, config, state=states[0])
    assert resumed.resumed_from == 2 and resumed.losses == full.losses
    for key, value in resumed.unet.state_dict().items():
        assert torch.allclose(value, trained[key], atol=1e-6), key
    assert full.curve(2) == [
        [2, pytest.approx(np.mean(full.losses[:2]))],
        [4, pytest.approx(np.mean(full.losses[2:]))],
    ]
    assert data_digest(hr, lr, {"a": 1}) != data_digest(hr, lr, {"a": 2})
    with pytest.raises(ImageError, match="4x"):
        train_diffusion_sr(hr, hr, config)


def test_bundled_checkpoint_beats_a_constant_on_true_glyphs() -> None:
    """The bundled model (must exist) turns 8x8 val LR glyphs into 32x32 RGB samples far closer to HR than
    a constant image, and its samples at severe differ from each other (it is stochastic)."""
    from srjudge.testbed import TestbedConfig, glyph_arrays

    assert (BUNDLED_DIR / "unet" / "diffusion_pytorch_model.safetensors").is_file(), (
        f"the bundled checkpoint is missing from {BUNDLED_DIR}: run scripts/train_testbed_diffusion.py"
    )
    backend = create_sr_backend("diffusion:steps=10")
    assert backend.spec == "diffusion:steps=10"
    assert backend.settings()["folder"] == "bundled:diffusion-x4"
    data = glyph_arrays(TestbedConfig(), "val", count=16)  # 4 glyphs x 4 severities
    cands = backend.candidates(data.lr[0], scale=4, samples=2, seed=0)
    assert cands[0].image.shape == (32, 32, 3)
    ev = evaluate_diffusion_sr(
        backend.sample_batch,
        data.hr,
        data.lr,
        data.labels,
        data.severities,
        samples=2,
        batch=32,  # type: ignore[attr-defined]
    )
    rows = {r.name: r for r in ev.rows}
    hr_gray = data.hr.mean(axis=-1)
    constant_l1 = float(np.abs(hr_gray - hr_gray.mean(axis=(1, 2), keepdims=True)).mean())
    assert rows["clean"].l1_hr < 0.5 * constant_l1, (rows["clean"].l1_hr, constant_l1)
    assert rows["mild"].l1_hr < 0.6 * constant_l1, (rows["mild"].l1_hr, constant_l1)
    assert rows["severe"].diversity > 0.005
