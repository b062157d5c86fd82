"""The esrgan backend: ESRGAN-family checkpoints (layouts, EMA, tiling), scales, options and errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch  # the [local] extra: missing, these tests fail rather than skip

from srjudge.errors import ImageError, MissingWeightsError, SpecError
from srjudge.models.rrdbnet import detect_layout
from srjudge.sr.base import create_sr_backend
from srjudge.sr.esrgan import resolve_tile, run_tiled
from tests.sr.helpers import _lr, _save, _tiny_state


def _to_old_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Real-ESRGAN keys -> original ESRGAN ``model.N`` keys (the inverse of the backend's renaming)."""
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("body.")}
    ups = sorted(int(m.group(1)) for k in state if (m := re.match(r"conv_up(\d+)\.weight$", k)))
    n = len(ups)
    top = {"conv_first": 0, "conv_hr": 3 * n + 2, "conv_last": 3 * n + 4}
    top.update({f"conv_up{i}": 3 * i for i in ups})
    out = {}
    for key, value in state.items():
        name, _, param = key.rpartition(".")
        if m := re.match(r"body\.(\d+)\.rdb(\d)\.conv(\d)$", name):
            out[f"model.1.sub.{m.group(1)}.RDB{m.group(2)}.conv{m.group(3)}.0.{param}"] = value
        elif name == "conv_body":
            out[f"model.1.sub.{len(blocks)}.{param}"] = value
        else:
            out[f"model.{top[name]}.{param}"] = value
    return out


def _to_trunk_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Real-ESRGAN keys -> the ESRGAN repository's ``RRDB_trunk`` keys."""
    names = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
    out = {}
    for key, value in state.items():
        name, _, param = key.rpartition(".")
        if m := re.match(r"body\.(\d+)\.rdb(\d)\.(conv\d)$", name):
            out[f"RRDB_trunk.{m.group(1)}.RDB{m.group(2)}.{m.group(3)}.{param}"] = value
        else:
            out[f"{names.get(name, name)}.{param}"] = value
    return out


@pytest.mark.parametrize(("num_upsample", "unshuffle", "scale"), [(2, 1, 4), (2, 2, 2), (2, 4, 1), (1, 1, 2)])
def test_esrgan_loads_pth_and_safetensors(
    tmp_path: Path, num_upsample: int, unshuffle: int, scale: int
) -> None:
    state = _tiny_state(1, num_upsample=num_upsample, unshuffle=unshuffle)
    pth = _save(tmp_path / "model.pth", state, wrap="params_ema")
    st = _save(tmp_path / "model.safetensors", state)
    lr = _lr(19, 26)  # odd sizes: the unshuffle models pad by reflection and crop
    backend = create_sr_backend(f"esrgan:{pth}")
    out = backend.upscale(lr, scale=scale)
    assert out.shape == (19 * scale, 26 * scale, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(out, backend.upscale(lr, scale=scale)), "must be deterministic"
    assert np.array_equal(out, create_sr_backend(f"esrgan:{st}").upscale(lr, scale=scale))
    assert backend.scales == (scale,) and backend.family == "general" and not backend.stochastic
    settings = backend.settings()
    assert (settings["num_feat"], settings["num_block"], settings["num_grow_ch"]) == (8, 1, 4)
    assert (settings["unshuffle"], settings["scale"], settings["layout"]) == (unshuffle, scale, "new")


def test_esrgan_layouts_give_identical_outputs(tmp_path: Path) -> None:
    lr = _lr(21, 17)
    for num_upsample in (2, 1):
        state = _tiny_state(2, num_upsample=num_upsample)
        scale = 2**num_upsample
        new = create_sr_backend(f"esrgan:{_save(tmp_path / 'new.pth', state)}")
        old_state = _to_old_layout(state)
        assert detect_layout(set(old_state)) == "old"
        old = create_sr_backend(f"esrgan:{_save(tmp_path / 'old.pth', old_state)}")
        reference = new.upscale(lr, scale=scale)
        assert old.settings()["layout"] == "old" and old.scales == (scale,)
        assert np.array_equal(old.upscale(lr, scale=scale), reference)
        if num_upsample == 2:
            trunk = create_sr_backend(f"esrgan:{_save(tmp_path / 'trunk.pth', _to_trunk_layout(state))}")
            assert trunk.settings()["layout"] == "trunk"
            assert np.array_equal(trunk.upscale(lr, scale=scale), reference)


def test_esrgan_prefers_params_ema(tmp_path: Path) -> None:
    ema, plain = _tiny_state(3), _tiny_state(4)
    both = tmp_path / "net_g.pth"
    torch.save({"params": plain, "params_ema": ema}, str(both))
    lr = _lr(12, 12)
    expected = create_sr_backend(f"esrgan:{_save(tmp_path / 'ema.pth', ema)}").upscale(lr, scale=4)
    assert np.array_equal(create_sr_backend(f"esrgan:{both}").upscale(lr, scale=4), expected)
    params_only = _save(tmp_path / "params.pth", plain, wrap="params")
    assert not np.array_equal(create_sr_backend(f"esrgan:{params_only}").upscale(lr, scale=4), expected)


@pytest.mark.parametrize(("unshuffle", "scale"), [(1, 4), (2, 2)])
def test_esrgan_tiled_matches_untiled(tmp_path: Path, unshuffle: int, scale: int) -> None:
    path = _save(tmp_path / "m.pth", _tiny_state(5, unshuffle=unshuffle))
    lr = _lr(90, 77, seed=1)
    whole = create_sr_backend(f"esrgan:{path}").upscale(lr, scale=scale)
    tiled = create_sr_backend(f"esrgan:{path},tile=24").upscale(lr, scale=scale)
    assert tiled.shape == whole.shape == (90 * scale, 77 * scale, 3)
    assert np.abs(tiled - whole).max() < 1e-4
    # Without overlap the tiles lack context and the seams show: tiling really happened.
    seams = create_sr_backend(f"esrgan:{path},tile=24,overlap=0").upscale(lr, scale=scale)
    assert np.abs(seams - whole).max() > 1e-3


def test_run_tiled_refuses_an_empty_input() -> None:
    with pytest.raises(ImageError, match="empty 0x40"):
        run_tiled(lambda t: t, torch.zeros(1, 3, 40, 0), scale=1, tile=16, overlap=0)


def test_esrgan_auto_tile_rule() -> None:
    assert resolve_tile(0, 256, 200) == 0
    assert resolve_tile(0, 300, 40) == 256
    assert resolve_tile(-1, 4000, 4000) == 0
    assert resolve_tile(64, 10, 10) == 64


def test_esrgan_unsupported_scale_and_options(tmp_path: Path) -> None:
    path = _save(tmp_path / "m.pth", _tiny_state(6))
    backend = create_sr_backend(f"esrgan:{path},family=blind")
    assert backend.family == "blind"
    with pytest.raises(SpecError, match=r"does not support scale 2: supported scale\(s\): 4"):
        backend.upscale(_lr(8, 8), scale=2)
    with pytest.raises(SpecError, match="family"):
        create_sr_backend(f"esrgan:{path},family=diffusion")
    with pytest.raises(SpecError, match="checkpoint path"):
        create_sr_backend("esrgan")
    with pytest.raises(SpecError, match="tile"):
        create_sr_backend(f"esrgan:{path},tile=-5")


def test_esrgan_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "RealESRGAN_x4plus.pth"
    with pytest.raises(MissingWeightsError, match=re.escape(str(missing))):
        create_sr_backend(f"esrgan:{missing}")


def test_esrgan_rejects_other_architectures(tmp_path: Path) -> None:
    foreign = {"layers.0.attn.qkv.weight": torch.zeros(3, 3), "patch_embed.proj.weight": torch.zeros(2, 2)}
    path = _save(tmp_path / "swinir.pth", foreign)
    with pytest.raises(MissingWeightsError) as info:
        create_sr_backend(f"esrgan:{path}")
    text = str(info.value)
    assert str(path) in text and "layers.0.attn.qkv.weight" in text and "spandrel:" in text


def test_esrgan_reports_missing_and_misshapen_keys(tmp_path: Path) -> None:
    state = _tiny_state(7)
    del state["body.0.rdb2.conv3.weight"]
    with pytest.raises(MissingWeightsError, match=r"missing key\(s\): body\.0\.rdb2\.conv3\.weight"):
        create_sr_backend(f"esrgan:{_save(tmp_path / 'a.pth', state)}")
    state = _tiny_state(7)
    state["conv_first.weight"] = torch.zeros(8, 5, 3, 3)
    with pytest.raises(MissingWeightsError, match="5 input channels"):
        create_sr_backend(f"esrgan:{_save(tmp_path / 'b.pth', state)}")
