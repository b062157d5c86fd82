"""The spandrel backend: its missing dependency explained, the success path with a stand-in torchvision."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch  # the [local] extra: missing, these tests fail rather than skip

from srjudge.errors import MissingDependencyError, MissingWeightsError, SpecError
from srjudge.models.rrdbnet import RRDBConfig, RRDBNet
from srjudge.sr.base import create_sr_backend
from tests.sr.helpers import _lr, _save


def _spandrel_importable() -> bool:
    try:
        importlib.import_module("spandrel")
    except Exception:
        return False
    return True


@pytest.mark.skipif(_spandrel_importable(), reason="spandrel imports here; the error path needs it broken")
def test_spandrel_missing_dependency_explains(tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyError) as info:
        create_sr_backend(f"spandrel:{tmp_path / 'swinir.pth'}")
    text = str(info.value)
    if importlib.util.find_spec("spandrel") is not None:
        assert "torchvision" in text
    else:
        assert "pip install spandrel" in text
    assert "esrgan:PATH" in text


def test_spandrel_needs_a_path() -> None:
    with pytest.raises(SpecError, match="model path"):
        create_sr_backend("spandrel")


@pytest.fixture
def stub_torchvision(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let spandrel import without torchvision: it uses torchvision only in LaMa and RestoreFormer.

    All spandrel modules are forgotten afterwards, so no later test sees the stand-in.
    """
    if importlib.util.find_spec("spandrel") is None:
        pytest.fail(
            "spandrel is not installed: scripts/test installs it (pip install --no-deps spandrel einops)"
        )
    if not _spandrel_importable():
        vision = types.ModuleType("torchvision")
        transforms = types.ModuleType("torchvision.transforms")
        functional = types.ModuleType("torchvision.transforms.functional")

        def unavailable(*args: object, **kwargs: object) -> None:
            raise RuntimeError("stand-in torchvision")

        functional.InterpolationMode = type("InterpolationMode", (), {"NEAREST": "nearest"})  # type: ignore[attr-defined]
        functional.rotate = functional.normalize = unavailable  # type: ignore[attr-defined]
        vision.transforms = transforms  # type: ignore[attr-defined]
        transforms.functional = functional  # type: ignore[attr-defined]
        for module in (vision, transforms, functional):
            monkeypatch.setitem(sys.modules, module.__name__, module)
    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "spandrel"]:
        del sys.modules[name]


def test_spandrel_success_path_with_stand_in_torchvision(stub_torchvision: None, tmp_path: Path) -> None:
    torch.manual_seed(8)
    net = RRDBNet(RRDBConfig(num_feat=8, num_block=1, num_grow_ch=32))  # spandrel assumes growth 32
    assert net.conv_last.bias is not None
    with torch.no_grad():
        net.conv_last.bias.fill_(0.5)
    path = _save(tmp_path / "esrgan.pth", dict(net.state_dict()))
    backend = create_sr_backend(f"spandrel:{path}")
    assert backend.settings()["architecture"] == "ESRGAN" and backend.scales == (4,)
    assert backend.family == "general" and not backend.stochastic
    lr = _lr(48, 40)
    out = backend.upscale(lr, scale=4)
    assert out.shape == (192, 160, 3) and out.dtype == np.float32
    assert np.abs(out - create_sr_backend(f"esrgan:{path}").upscale(lr, scale=4)).max() < 1e-5
    tiled = create_sr_backend(f"spandrel:{path},tile=16,overlap=20").upscale(lr, scale=4)
    assert np.abs(tiled - out).max() < 1e-4
    with pytest.raises(SpecError, match=r"supported scale\(s\): 4"):
        backend.upscale(lr, scale=2)
    x1 = RRDBNet(RRDBConfig(num_feat=8, num_block=1, num_grow_ch=32, unshuffle=4))
    with pytest.raises(SpecError, match="Restoration"):
        create_sr_backend(f"spandrel:{_save(tmp_path / 'x1.pth', dict(x1.state_dict()))}")
    with pytest.raises(MissingWeightsError, match="does not exist"):
        create_sr_backend(f"spandrel:{tmp_path / 'absent.pth'}")
