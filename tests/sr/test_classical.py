"""Classical upscalers as the demo's decoys."""

from __future__ import annotations

import numpy as np
import pytest


def test_classical_backends_make_the_demo_decoys() -> None:
    from srjudge.errors import SpecError
    from srjudge.sr import classical
    from srjudge.sr.base import create_sr_backend

    lr = (np.round(np.random.default_rng(0).random((8, 8, 3)) * 255) / 255).astype(np.float32)  # 8-bit
    backend = create_sr_backend("classical:nearest")
    assert backend.spec == "classical:nearest" and create_sr_backend(backend.spec).spec == backend.spec
    assert np.array_equal(backend.upscale(lr, scale=4), classical.nearest(lr, 4))
    with pytest.raises(SpecError, match=r"Unknown classical variant 'sharp'.*bicubic\+sharpen"):
        create_sr_backend("classical:sharp")
    with pytest.raises(SpecError, match="needs a variant"):
        create_sr_backend("classical")
