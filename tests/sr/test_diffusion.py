"""The ``diffusers`` SR backend on tiny random pipelines built offline and saved to a temporary folder.

The pipelines are built here from configs with seeded random weights (a few MB in all): an x4
``StableDiffusionUpscalePipeline`` (a 2-block UNet with 7 input channels and class-embedded noise
levels, a 3-block AutoencoderKL with the x4 upscaler's scaling factor 0.08333, a 1-layer CLIP text
encoder with a character-level CLIP tokenizer whose vocab.json and merges.txt are written here) and
an ``LDMSuperResolutionPipeline`` (a 2-block UNet2DModel with 6 input channels and a 3-block VQModel).
Their images are noise; the tests check sizes, ranges, seeds, settings and error messages. Error
paths that fail before diffusers is imported use hand-written ``model_index.json`` files and run
without the extra.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from srjudge.errors import ImageError, MissingDependencyError, MissingWeightsError, SpecError
from srjudge.sr.base import create_sr_backend, list_sr_backends
from srjudge.sr.diffusion import DiffusersSR, pad_multiple

SPECIALS = ("<|startoftext|>", "<|endoftext|>")


def _write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A character-level CLIP BPE vocabulary (printable ASCII, each also as a word end) and no merges."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(33, 127)]
    tokens = [*chars, *(c + "</w>" for c in chars), *SPECIALS]
    vocab = folder / "vocab.json"
    merges = folder / "merges.txt"
    vocab.write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    merges.write_text("#version: 0.2\n", encoding="utf-8")
    return vocab, merges


def build_tiny_sd_x4(folder: Path) -> Path:
    """Save a tiny random ``StableDiffusionUpscalePipeline`` (x4) to ``folder``."""
    import diffusers
    import torch
    import transformers

    vocab, merges = _write_tokenizer_files(folder.parent / f"{folder.name}-tokenizer-src")
    tokenizer = transformers.CLIPTokenizer(str(vocab), str(merges), model_max_length=77)
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=16,
        in_channels=7,  # 4 latent channels + the 3-channel noised LR image
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=8,
        num_class_embeds=400,  # the noise level is a class label; max_noise_level is 350
        use_linear_projection=True,
    )
    torch.manual_seed(1)
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16, 16),  # 3 blocks: the decoder upsamples x4
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        scaling_factor=0.08333,  # the x4 upscaler's VAE scaling
    )
    torch.manual_seed(2)
    text_config = transformers.CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_attention_heads=2,
        num_hidden_layers=1,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = transformers.CLIPTextModel(text_config)
    pipe = diffusers.StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=diffusers.DDPMScheduler(beta_schedule="scaled_linear"),
        scheduler=diffusers.DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction"),
        max_noise_level=350,
    )
    pipe.save_pretrained(str(folder))
    return folder


def build_tiny_ldm(folder: Path, vq_channels: tuple[int, ...] = (8, 16, 16)) -> Path:
    """Save a tiny random ``LDMSuperResolutionPipeline`` to ``folder`` (x4 with 3 VQ decoder blocks)."""
    import diffusers
    import torch

    torch.manual_seed(3)
    unet = diffusers.UNet2DModel(
        sample_size=16,
        in_channels=6,  # 3 latent channels + the 3-channel LR image
        out_channels=3,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        norm_num_groups=8,
    )
    torch.manual_seed(4)
    vqvae = diffusers.VQModel(
        in_channels=3,
        out_channels=3,
        block_out_channels=vq_channels,  # n blocks: the decoder upsamples by 2**(n-1)
        down_block_types=("DownEncoderBlock2D",) * len(vq_channels),
        up_block_types=("UpDecoderBlock2D",) * len(vq_channels),
        latent_channels=3,
        num_vq_embeddings=32,
        layers_per_block=1,
        norm_num_groups=8,
    )
    pipe = diffusers.LDMSuperResolutionPipeline(vqvae=vqvae, unet=unet, scheduler=diffusers.DDIMScheduler())
    pipe.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def sd_x4_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import diffusers  # noqa: F401  (the [diffusion] extra: missing, these tests fail rather than skip)

    return build_tiny_sd_x4(tmp_path_factory.mktemp("diffusion") / "sd-x4")


@pytest.fixture(scope="module")
def ldm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import diffusers  # noqa: F401

    return build_tiny_ldm(tmp_path_factory.mktemp("diffusion") / "ldm")


@pytest.fixture(params=["sd-x4", "ldm"])
def tiny_folder(request: pytest.FixtureRequest) -> Path:
    """Each tiny pipeline folder in turn."""
    name = "sd_x4_folder" if request.param == "sd-x4" else "ldm_folder"
    return Path(request.getfixturevalue(name))


@pytest.fixture
def lr() -> np.ndarray:
    rng = np.random.default_rng(7)
    return (np.round(rng.random((16, 16, 3)) * 255) / 255).astype(np.float32)


def _backend(folder: Path, extra: str = "") -> DiffusersSR:
    backend = create_sr_backend(f"diffusers:{folder},steps=2{extra}")
    assert isinstance(backend, DiffusersSR)
    return backend


def _fake_folder(path: Path, index: dict[str, Any]) -> Path:
    path.mkdir(parents=True)
    (path / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# Both pipelines
# ---------------------------------------------------------------------------------------------------------


def test_registered_with_family_and_scales(tiny_folder: Path) -> None:
    assert "diffusers" in list_sr_backends()
    backend = _backend(tiny_folder)
    assert backend.family == "diffusion"
    assert backend.stochastic is True
    assert backend.scales == (4,)
    assert backend.spec == f"diffusers:{tiny_folder},steps=2"


def test_output_is_x4_float32_8bit(tiny_folder: Path, lr: np.ndarray) -> None:
    sr = _backend(tiny_folder).upscale(lr, scale=4, seed=0)
    assert sr.shape == (64, 64, 3)
    assert sr.dtype == np.float32
    assert 0.0 <= sr.min() <= sr.max() <= 1.0
    assert np.allclose(sr * 255, np.round(sr * 255), atol=1e-3)  # 8-bit levels


def test_same_seed_same_image_other_seed_differs(tiny_folder: Path, lr: np.ndarray) -> None:
    backend = _backend(tiny_folder)
    a = backend.upscale(lr, scale=4, seed=11)
    b = _backend(tiny_folder).upscale(lr, scale=4, seed=11)
    c = backend.upscale(lr, scale=4, seed=12)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def test_seed_none_means_zero(tiny_folder: Path, lr: np.ndarray) -> None:
    backend = _backend(tiny_folder)
    np.testing.assert_array_equal(backend.upscale(lr, scale=4), backend.upscale(lr, scale=4, seed=0))


def test_candidates_record_consecutive_seeds(tiny_folder: Path, lr: np.ndarray) -> None:
    backend = _backend(tiny_folder)
    cands = backend.candidates(lr, scale=4, samples=3, seed=5)
    assert [c.seed for c in cands] == [5, 6, 7]
    assert all(c.backend == backend.spec and c.image.shape == (64, 64, 3) for c in cands)
    assert cands[0].record()["settings"] == backend.settings()
    np.testing.assert_array_equal(cands[1].image, backend.upscale(lr, scale=4, seed=6))
    assert np.abs(cands[0].image - cands[2].image).max() > 0


def test_odd_sizes_are_padded_then_cropped(tiny_folder: Path) -> None:
    rng = np.random.default_rng(3)
    lr = rng.random((13, 17, 3)).astype(np.float32)
    backend = _backend(tiny_folder)
    assert backend.multiple() == (4 if backend.options.kind == "sd-x4" else 2)
    sr = backend.upscale(lr, scale=4, seed=1)
    assert sr.shape == (52, 68, 3)
    np.testing.assert_array_equal(sr, backend.upscale(lr, scale=4, seed=1))


def test_other_scales_and_bad_images_are_refused(tiny_folder: Path, lr: np.ndarray) -> None:
    backend = _backend(tiny_folder)
    with pytest.raises(SpecError, match="scale 2"):
        backend.upscale(lr, scale=2, seed=0)
    with pytest.raises(ImageError, match="H x W x 3"):
        backend.upscale(lr[..., 0], scale=4, seed=0)


def test_pipeline_is_loaded_once(tiny_folder: Path) -> None:
    assert _backend(tiny_folder).pipeline() is _backend(tiny_folder).pipeline()


def test_weights_that_do_not_load_are_named(tiny_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.unlink()
    backend = _backend(broken)
    with pytest.raises(MissingWeightsError, match="could not load") as info:
        backend.upscale(np.zeros((8, 8, 3), np.float32), scale=4, seed=0)
    assert str(broken) in str(info.value)
    assert "save_pretrained" in str(info.value)


# ---------------------------------------------------------------------------------------------------------
# sd-x4 and ldm specifics
# ---------------------------------------------------------------------------------------------------------


def test_sd_x4_settings_defaults_and_digest(sd_x4_folder: Path) -> None:
    settings = create_sr_backend(f"diffusers:{sd_x4_folder}").settings()
    digest = hashlib.sha256((sd_x4_folder / "model_index.json").read_bytes()).hexdigest()
    assert settings == {
        "pipeline": "sd-x4",
        "pipeline_class": "StableDiffusionUpscalePipeline",
        "steps": 50,
        "guidance": 9.0,
        "noise_level": 20,
        "prompt": "",
        "device": "cpu",
        "dtype": "float32",
        "model_index_sha256": digest,
    }
    custom = _backend(sd_x4_folder, ",pipeline=sd-x4,guidance=1.5,noise_level=40,prompt=a cat").settings()
    assert (custom["steps"], custom["guidance"], custom["noise_level"], custom["prompt"]) == (
        2,
        1.5,
        40,
        "a cat",
    )


def test_ldm_settings_defaults(ldm_folder: Path) -> None:
    settings = create_sr_backend(f"diffusers:{ldm_folder}").settings()
    assert settings["pipeline"] == "ldm"
    assert settings["pipeline_class"] == "LDMSuperResolutionPipeline"
    assert settings["steps"] == 100
    assert settings["guidance"] is None and settings["noise_level"] is None and settings["prompt"] is None
    assert settings["dtype"] == "float32"
    assert (
        settings["model_index_sha256"]
        == hashlib.sha256((ldm_folder / "model_index.json").read_bytes()).hexdigest()
    )


def test_sd_x4_prompt_and_noise_level_change_the_sample(sd_x4_folder: Path, lr: np.ndarray) -> None:
    base = _backend(sd_x4_folder).upscale(lr, scale=4, seed=0)
    prompted = _backend(sd_x4_folder, ",prompt=a sharp photo").upscale(lr, scale=4, seed=0)
    noisier = _backend(sd_x4_folder, ",noise_level=200").upscale(lr, scale=4, seed=0)
    assert np.abs(base - prompted).max() > 0
    assert np.abs(base - noisier).max() > 0


def test_sd_only_options_are_refused_for_ldm(ldm_folder: Path) -> None:
    with pytest.raises(SpecError, match="guidance apply to pipeline=sd-x4 only"):
        create_sr_backend(f"diffusers:{ldm_folder},guidance=5")


def test_explicit_pipeline_must_match_the_folder(sd_x4_folder: Path, ldm_folder: Path) -> None:
    with pytest.raises(SpecError, match="holds a StableDiffusionUpscalePipeline"):
        create_sr_backend(f"diffusers:{sd_x4_folder},pipeline=ldm")
    with pytest.raises(SpecError, match="pipeline=sd-x4"):
        create_sr_backend(f"diffusers:{ldm_folder},pipeline=sd-x4")
    assert create_sr_backend(f"diffusers:{ldm_folder},pipeline=ldm").settings()["pipeline"] == "ldm"


def test_pipeline_that_is_not_x4_is_refused(ldm_folder: Path, tmp_path: Path) -> None:
    x2 = build_tiny_ldm(tmp_path / "ldm-x2", vq_channels=(8, 16))
    backend = _backend(x2)
    with pytest.raises(SpecError, match="upscales by 2, not 4"):
        backend.upscale(np.zeros((8, 8, 3), np.float32), scale=4, seed=0)


# ---------------------------------------------------------------------------------------------------------
# Errors found before any model is loaded (no diffusers needed)
# ---------------------------------------------------------------------------------------------------------


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(MissingWeightsError, match="does not exist") as info:
        create_sr_backend(f"diffusers:{missing}")
    assert str(missing) in str(info.value) and "save_pretrained" in str(info.value)


def test_folder_without_model_index(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    with pytest.raises(MissingWeightsError, match=r"no model_index\.json") as info:
        create_sr_backend(f"diffusers:{tmp_path}")
    assert str(tmp_path) in str(info.value) and "save_pretrained" in str(info.value)


def test_unreadable_model_index(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(MissingWeightsError, match="cannot read"):
        create_sr_backend(f"diffusers:{tmp_path}")


def test_unsupported_pipeline_class(tmp_path: Path) -> None:
    folder = _fake_folder(tmp_path / "sd", {"_class_name": "StableDiffusionPipeline"})
    with pytest.raises(SpecError, match="StableDiffusionPipeline pipeline, which is not an x4 SR pipeline"):
        create_sr_backend(f"diffusers:{folder}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("pipeline=sdxl", "pipeline='sdxl' is not one of"),
        ("steps=0", "steps must be at least 1"),
        ("steps=two", "not a valid int"),
        ("guidance=-1", "guidance must be"),
        ("noise_level=351", r"noise_level must be in \[0, 350\]"),
        ("device=tpu", "device must be cpu, cuda or cuda:N"),
        ("dtype=bfloat16", "dtype must be float32 or float16"),
        ("dtype=float16", "float16 needs device=cuda"),
        ("seed=3", "Unknown option"),
    ],
)
def test_bad_options(tmp_path: Path, options: str, message: str) -> None:
    folder = _fake_folder(
        tmp_path / "sd", {"_class_name": "StableDiffusionUpscalePipeline", "max_noise_level": 350}
    )
    with pytest.raises(SpecError, match=message):
        create_sr_backend(f"diffusers:{folder},{options}")


def test_spec_without_folder() -> None:
    with pytest.raises(SpecError, match="give the pipeline folder"):
        create_sr_backend("diffusers")


def test_missing_diffusers_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fake_folder(tmp_path / "ldm", {"_class_name": "LDMSuperResolutionPipeline"})
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'srjudge\[diffusion\]'"):
        create_sr_backend(f"diffusers:{folder}")


def test_pad_multiple_reflects_bottom_and_right() -> None:
    image = np.arange(5 * 3 * 3, dtype=np.float32).reshape(5, 3, 3)
    padded = pad_multiple(image, 4)
    assert padded.shape == (8, 4, 3)
    np.testing.assert_array_equal(padded[:5, :3], image)
    np.testing.assert_array_equal(padded[5, :3], image[3])  # reflection without repeating the edge row
    np.testing.assert_array_equal(padded[:5, 3], image[:, 1])
    aligned = image[:4, :2]
    assert pad_multiple(aligned, 2) is aligned
