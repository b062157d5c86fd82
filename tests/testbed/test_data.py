"""Glyph testbed data (issue 8): rendering, degradation severities, splits, sklearn digits, on-disk build."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from srjudge.degrade import DegradationRecord, replay
from srjudge.errors import SpecError
from srjudge.testbed import build, glyphs, items, severity
from srjudge.testbed.arrays import glyph_arrays

TINY = items.TestbedConfig(
    seed=3,
    classes="08BO",
    train_copies=1,
    val_copies=0,
    test_copies=1,
    sklearn_limit=12,
)


def test_render_is_seeded_and_redrawable() -> None:
    """Same seed gives identical bytes, another seed differs, and the drawn parameters redraw the glyph."""
    face = glyphs.FONT_FACES[0]
    a = glyphs.render_glyph("8", face, rng=np.random.default_rng(5))
    b = glyphs.render_glyph("8", face, rng=np.random.default_rng(5))
    c = glyphs.render_glyph("8", face, rng=np.random.default_rng(6))
    assert a.dtype == np.float32 and a.shape == (32, 32, 3)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert np.array_equal(a[..., 0], a[..., 2])  # gray replicated to RGB
    params = glyphs.sample_glyph_params(np.random.default_rng(5))
    again = glyphs.draw_glyph(
        "8", face.name, glyphs.GlyphParams.from_dict(json.loads(json.dumps(params.to_dict())))
    )
    assert again.tobytes() == a.tobytes()
    # dark ink on light paper: the darkest pixel is far below the median (paper)
    assert float(np.median(a)) - float(a.min()) > 0.4


def test_every_class_renders_in_every_face_inside_the_frame() -> None:
    """All 36 classes in all 12 faces have ink; even extreme jitter keeps the outer pixel ring ink-free."""
    assert len(glyphs.FONT_FACES) == 12 and len(glyphs.CLASSES) == 36
    extreme = glyphs.GlyphParams(
        rotation=9.0, shear=-0.25, height=0.9, tx=0.1, ty=-0.1, stroke=4, ink=0.0, paper=1.0,
        gradient=0.0, gradient_angle=0.0, texture=0.0, texture_seed=0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for face in glyphs.FONT_FACES:
        assert face.path.is_file(), face.path
        for char in glyphs.CLASSES:
            for params in (extreme, glyphs.sample_glyph_params(rng)):
                cov = glyphs.draw_coverage(char, face, params)
                ring = np.concatenate([cov[0], cov[-1], cov[:, 0], cov[:, -1]])
                assert ring.max() == 0.0, (face.name, char)
                assert cov.max() > 0.5 and cov.sum() > 8, (face.name, char)
    with pytest.raises(SpecError, match="Did you mean"):
        glyphs.get_face("DejaVuSans-Bolt")


def test_splits_never_share_a_face() -> None:
    """Default faces are split disjointly (train/val/test), held-out faces never appear in train arrays."""
    cfg = items.TestbedConfig()
    sets = {s: set(cfg.faces_of(s)) for s in items.SPLITS}
    assert (
        not (sets["train"] & sets["test"])
        and not (sets["train"] & sets["val"])
        and not (sets["val"] & sets["test"])
    )
    assert sets["train"] | sets["val"] | sets["test"] == set(glyphs.FACE_NAMES)
    train = glyph_arrays(cfg, "train", count=300)
    assert set(train.faces) <= sets["train"] and len(set(train.faces)) == len(sets["train"])
    with pytest.raises(SpecError, match="must not share a face"):
        items.TestbedConfig(test_faces=("DejaVuSans",))
    # the default test split: 432 font glyphs (3 held-out faces x 36 classes x 4 severities) plus 80
    # handwritten digits, at least the 500 LR inputs the experiment needs
    specs = [s for s in items.item_specs(cfg) if s.split == "test"]
    assert len(specs) >= 500 and sum(1 for s in specs if s.source == "font") == 432


def test_degrade_glyph_records_replay_exactly() -> None:
    """Each severity's record replays byte-identically via srjudge.degrade.replay after a JSON round trip."""
    hr = glyphs.render_glyph("B", "DejaVuSerif", rng=np.random.default_rng(1))
    for sev in range(4):
        lr, rec = severity.degrade_glyph(hr, sev, seed=11)
        assert lr.shape == (8, 8, 3) and lr.dtype == np.float32
        again = replay(hr, DegradationRecord.from_json(json.dumps(rec)))
        assert again.tobytes() == lr.tobytes()
        assert severity.degrade_glyph(hr, sev, seed=11)[0].tobytes() == lr.tobytes()
        assert rec["extra"]["severity_name"] == severity.SEVERITIES[sev]
        # the builder's directly made dicts have DegradationRecord's exact layout
        direct = severity.record_dict((32, 32), sev, 11, extra={"glyph": {"char": "B"}})
        assert DegradationRecord.from_dict(direct).to_dict() == direct
    assert [s["op"] for s in severity.degrade_glyph(hr, 0, 0)[1]["steps"]] == ["bicubic", "quantise"]
    assert severity.degrade_glyph(hr, 3, 12)[0].tobytes() != severity.degrade_glyph(hr, 3, 11)[0].tobytes()
    with pytest.raises(SpecError, match="severity"):
        severity.degrade_glyph(hr, 4, 0)


def test_severities_are_ordered() -> None:
    """Mean LR difference from the bicubic-only LR of the same glyph grows with severity."""
    arrays = glyph_arrays(items.TestbedConfig(), "test", count=36 * 4 * 2)
    lr = arrays.lr.reshape(-1, 4, 8, 8, 3)
    assert list(arrays.severities[:4]) == [0, 1, 2, 3]
    errors = [float(np.abs(lr[:, k] - lr[:, 0]).mean()) for k in range(4)]
    assert errors[0] == 0.0 and errors[1] > 0.005
    assert errors[1] < errors[2] < errors[3], errors
    # HR is shared by a glyph's four severities
    assert np.array_equal(arrays.hr[0], arrays.hr[3])


def test_sklearn_digits_converted() -> None:
    """sklearn's 8x8 digits become dark-ink LR (1 - v/16, 8-bit levels) with their labels, split by index."""
    from sklearn.datasets import load_digits

    data = load_digits()
    every = items.TestbedConfig(sklearn_limit=None)
    val, test = items.digits_lr("val", every), items.digits_lr("test", every)
    assert len(val.labels) + len(test.labels) == len(data.target) == 1797
    assert set(val.indices.tolist()) == set(range(0, 1797, 3))
    default = items.digits_lr("test")  # the default testbed keeps the first 120 digits
    assert len(default.labels) == 80 and default.indices.max() < 120
    i = int(test.indices[0])
    assert test.lr.shape[1:] == (8, 8, 3) and test.labels[0] == str(data.target[i])
    expected = np.round((1 - data.images[i] / 16.0) * 255) / 255
    assert np.allclose(test.lr[0, :, :, 1], expected, atol=1e-6)
    ink = data.images[i] == 16
    assert ink.any() and (test.lr[0][ink] == 0).all()  # full ink is black, paper is white
    assert (test.lr[0][data.images[i] == 0] == 1).all()


def test_build_load_idempotent_and_resume(tmp_path: Path) -> None:
    """A tiny build reads back, matches the in-memory arrays, is idempotent, refuses another config,
    detects tampering, and resumes after files and rows are deleted."""
    out = tmp_path / "tb"
    calls: list[tuple[int, int]] = []
    man = build.build_testbed(TINY, out, progress=lambda d, t: calls.append((d, t)))
    n_font_test = 4 * 3 * 4
    assert man.counts["by_split_source_severity"]["test"]["font"] == {s: 12 for s in severity.SEVERITIES}
    assert man.counts["by_split"] == {"train": 4 * 8 * 4, "val": 4, "test": n_font_test + 8}
    assert calls[-1] == (man.counts["total"], man.counts["total"])
    loaded = build.load_manifest(out)
    assert loaded.digest == man.digest and loaded.items == man.items
    test_font = loaded.select(split="test", source="font")
    arrays = glyph_arrays(TINY, "test")
    assert [it.id for it in test_font] == list(arrays.ids)
    for k in (0, 7, len(test_font) - 1):
        item = test_font[k]
        hr = loaded.hr(item)
        assert (
            hr is not None
            and np.array_equal(hr, arrays.hr[k])
            and np.array_equal(loaded.lr(item), arrays.lr[k])
        )
        assert replay(hr, DegradationRecord.from_dict(item.record)).tobytes() == loaded.lr(item).tobytes()
    digit = loaded.select(source="sklearn-digits")[0]
    assert digit.hr_path is None and loaded.hr(digit) is None and digit.split == "val"
    # idempotent: same manifest bytes
    before = (out / "manifest.json").read_bytes()
    assert build.build_testbed(TINY, out).digest == man.digest
    assert (out / "manifest.json").read_bytes() == before
    with pytest.raises(build.TestbedError, match="different config"):
        build.build_testbed(replace(TINY, seed=4), out)
    # tampering is detected with the file named
    victim = out / "lr" / f"{test_font[2].id}.png"
    saved = victim.read_bytes()
    victim.write_bytes(saved[:-10])
    with pytest.raises(build.TestbedError, match=test_font[2].id):
        build.load_manifest(out)
    # resume: drop the manifest, some files and the tail of items.jsonl (with a torn last line)
    (out / "manifest.json").unlink()
    (out / "hr" / f"{test_font[5].id}.png").unlink()
    lines = (out / "items.jsonl").read_text().splitlines(keepends=True)
    (out / "items.jsonl").write_text("".join(lines[:100]) + lines[100][:20])
    shutil.rmtree(out / "lr")
    with pytest.raises(build.TestbedError, match="interrupted build"):
        build.load_manifest(out)
    resumed = build.build_testbed(TINY, out)
    assert resumed.digest == man.digest
    assert build.load_manifest(out).items == man.items
    with pytest.raises(build.TestbedError, match="not empty"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "x.txt").write_text("x")
        build.build_testbed(TINY, tmp_path / "other")
