"""Training the glyph classifier: deterministic, and a resume equals an uninterrupted run."""

from __future__ import annotations

import dataclasses

import numpy as np

from srjudge.readers import CLASSES
from srjudge.readers.classifier import glyph_input
from srjudge.testbed.glyphs import FONT_FACES, render_glyph


def test_training_is_deterministic_and_resumes_exactly() -> None:
    """Two runs of the recipe give identical weights; one epoch plus a resume equals two epochs."""
    import torch

    from srjudge.train.glyph_classifier import GlyphTrainConfig, TrainingData, train_network

    rng = np.random.default_rng(0)
    images = [render_glyph(c, FONT_FACES[i % 2], rng=rng) for i, c in enumerate("0123456789" * 4)]
    x = glyph_input(images)
    y = np.asarray([CLASSES.index(c) for c in "0123456789" * 4])
    data = TrainingData(x=x, y=y, kind=np.zeros(len(y), np.int8), digest="test", testbed={})
    config = GlyphTrainConfig(width=4, epochs=2, batch_size=16, hr_repeat=1, warmup_steps=1, threads=1)
    states: list[dict[str, torch.Tensor]] = []
    first = train_network(data, config).state_dict()
    second = train_network(data, config).state_dict()
    train_network(data, dataclasses.replace(config, seed=0), on_epoch=lambda e, s: states.append(s))
    assert [s["epoch"] for s in states] == [1, 2]
    resumed = train_network(data, config, state=states[0]).state_dict()
    for key in first:
        assert torch.equal(first[key], second[key]), key
        assert torch.equal(first[key], resumed[key]), key
