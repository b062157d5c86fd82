"""generate_folder: candidates and their manifest, read back by the selection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from srjudge.images.io import load_image, save_png
from srjudge.select.folder import items_from_folder
from srjudge.sr.base import create_sr_backend


def test_generate_then_select(tmp_path: Path, astronaut_lr: np.ndarray) -> None:
    from srjudge.sr.generate import generate_folder

    save_png(tmp_path / "lr" / "astro.png", astronaut_lr)
    backends = [create_sr_backend("bicubic"), create_sr_backend("lanczos")]
    manifests = generate_folder([tmp_path / "lr" / "astro.png"], backends, tmp_path / "gen", scale=4)
    assert [e["backend"] for e in manifests["astro"]] == ["bicubic", "lanczos"]
    manifest = json.loads((tmp_path / "gen" / "astro" / "manifest.json").read_text())
    assert manifest["schema"] == "srjudge.candidates/1" and manifest["candidates"][0]["seed"] is None
    items = items_from_folder(tmp_path / "gen")
    assert len(items[0].candidates) == 2
    assert load_image(items[0].candidates[0]).shape == (256, 256, 3)


def test_two_settings_of_one_backend_get_their_own_files() -> None:
    from srjudge.sr.generate import _slug

    assert _slug("realcugan") != _slug("realcugan:noise=3")
    assert _slug("span:scale=4") != _slug("span:scale=4,channels=52")
    assert _slug("realesrgan:model=x4plus") == "realesrgan-model-x4plus"
    assert _slug("diffusers:/models/sd-x4,steps=50") == "sd-x4-steps-50"
