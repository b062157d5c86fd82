"""CLIP image embeddings from a local folder, checked on a tiny seeded random CLIP saved with save_pretrained.

These tests need the clip extra (torch, transformers) and never skip: without it they fail, saying
what to install.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from srjudge.errors import ImageError, MissingDependencyError, MissingWeightsError
from srjudge.models.clip import clear_clip_cache, clip_image_embeddings, load_clip

try:
    import torch
    import transformers
except ImportError:  # the tests below then fail with an install hint instead of skipping
    torch = None  # type: ignore[assignment]
    transformers = None  # type: ignore[assignment]

INSTALL_HINT = (
    "torch/transformers are not installed: pip install 'srjudge[clip]' "
    '(torch==2.13.0 "transformers>=4.45" safetensors) to run these tests.'
)
DIM = 16


def need_clip() -> Any:
    if torch is None or transformers is None:
        pytest.fail(INSTALL_HINT)
    return transformers


def image_processor() -> Any:
    tf = need_clip()
    cls = getattr(tf.models.clip, "CLIPImageProcessorPil", None) or tf.CLIPImageProcessor
    return cls(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


@pytest.fixture(scope="session")
def clip_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random CLIPModel folder, and a CLIPVisionModelWithProjection one with its vision weights."""
    tf = need_clip()
    torch.manual_seed(0)
    text = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
            "vocab_size": 99, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1,
            "pad_token_id": 1}  # fmt: skip
    vision = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}  # fmt: skip
    full = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=DIM)).eval()
    root = tmp_path_factory.mktemp("clip")
    full_dir, vision_dir = root / "clip-tiny", root / "clip-vision-tiny"
    full.save_pretrained(full_dir)
    image_processor().save_pretrained(full_dir)
    vision_model = tf.CLIPVisionModelWithProjection(tf.CLIPVisionConfig(**vision, projection_dim=DIM))
    own = vision_model.state_dict()
    vision_model.load_state_dict({k: v for k, v in full.state_dict().items() if k in own}, strict=True)
    vision_model.save_pretrained(vision_dir)
    image_processor().save_pretrained(vision_dir)
    return {"full": full_dir, "vision": vision_dir}


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [(32, 32), (40, 56), (57, 33), (64, 48), (35, 35)]
    return [rng.random((*sizes[i % len(sizes)], 3), dtype=np.float32) for i in range(n)]


def test_shape_dtype_and_unit_norm(clip_dirs: dict[str, Path]) -> None:
    emb = clip_image_embeddings(images(5), clip_dirs["full"])
    assert emb.shape == (5, DIM) and emb.dtype == np.float32
    assert np.all(np.isfinite(emb))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_deterministic(clip_dirs: dict[str, Path]) -> None:
    batch = images(3, seed=1)
    first = clip_image_embeddings(batch, clip_dirs["full"])
    clear_clip_cache()
    second = clip_image_embeddings(batch, str(clip_dirs["full"]))
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_batch_equals_single(clip_dirs: dict[str, Path]) -> None:
    batch = images(4, seed=2)
    together = clip_image_embeddings(batch, clip_dirs["full"])
    alone = np.concatenate([clip_image_embeddings([x], clip_dirs["full"]) for x in batch])
    chunked = clip_image_embeddings(batch, clip_dirs["full"], batch_size=3)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together, chunked, atol=1e-5)


def test_distinct_images_differ_and_uint8_input_agrees(clip_dirs: dict[str, Path]) -> None:
    a, b = images(2, seed=3)
    emb = clip_image_embeddings([a, b], clip_dirs["full"])
    assert not np.allclose(emb[0], emb[1], atol=1e-4)
    as_uint8 = np.rint(a * 255).astype(np.uint8)
    np.testing.assert_allclose(clip_image_embeddings([as_uint8], clip_dirs["full"])[0], emb[0], atol=1e-6)


def test_vision_only_folder_gives_the_same_embeddings(clip_dirs: dict[str, Path]) -> None:
    batch = images(3, seed=4)
    full = clip_image_embeddings(batch, clip_dirs["full"])
    vision = clip_image_embeddings(batch, clip_dirs["vision"])
    np.testing.assert_allclose(full, vision, atol=1e-5)


def test_model_loads_once_per_path(clip_dirs: dict[str, Path]) -> None:
    clear_clip_cache()
    first = load_clip(clip_dirs["full"])
    assert load_clip(str(clip_dirs["full"]) + "/") is first
    assert load_clip(clip_dirs["full"].parent / ".." / clip_dirs["full"].parent.name / "clip-tiny") is first
    assert load_clip(clip_dirs["vision"]) is not first


def test_never_touches_the_network(monkeypatch: pytest.MonkeyPatch, clip_dirs: dict[str, Path]) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("CLIP loading tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    clear_clip_cache()
    assert clip_image_embeddings(images(1), clip_dirs["full"]).shape == (1, DIM)


def test_empty_list_and_bad_images(clip_dirs: dict[str, Path]) -> None:
    assert clip_image_embeddings([], clip_dirs["full"]).shape == (0, DIM)
    with pytest.raises(ImageError, match="Image 1"):
        clip_image_embeddings([images(1)[0], np.zeros((8, 8), np.float32)], clip_dirs["full"])


def test_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-clip"
    with pytest.raises(MissingWeightsError) as err:
        clip_image_embeddings(images(1), missing)
    assert str(missing) in str(err.value) and "does not exist" in str(err.value)


def test_folder_without_config_or_not_clip(tmp_path: Path) -> None:
    need_clip()
    with pytest.raises(MissingWeightsError, match=r"config\.json"):
        load_clip(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(MissingWeightsError, match="not CLIP"):
        load_clip(tmp_path)


def test_folder_without_weights(tmp_path: Path, clip_dirs: dict[str, Path]) -> None:
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((clip_dirs["full"] / name).read_bytes())
    with pytest.raises(MissingWeightsError) as err:
        load_clip(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_transformers_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(MissingDependencyError, match=r"srjudge\[clip\]"):
        clip_image_embeddings(images(1), tmp_path)


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, srjudge.models.clip, srjudge.models; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
