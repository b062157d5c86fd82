"""Degradation pipelines: sampled parameters stay in the published ranges over many seeds."""

from __future__ import annotations

import math
from collections import Counter

from srjudge.degrade import sample_record
from srjudge.degrade.pipelines import GAUSSIAN_KERNELS

N_RECORDS = 200


def _plausible(count: int, n: int, p: float) -> bool:
    """``count`` of ``n`` Bernoulli(p) draws lies within 4.5 standard deviations of its mean."""
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


def _check_gaussian_family(step: dict, sigma: tuple[float, float]) -> None:
    kind = step["kernel"]
    assert kind in GAUSSIAN_KERNELS
    assert sigma[0] <= step["sigma_x"] <= sigma[1]
    assert sigma[0] <= step["sigma_y"] <= sigma[1]
    if kind.endswith("aniso"):
        assert -math.pi <= step["theta"] <= math.pi
    else:
        assert step["sigma_x"] == step["sigma_y"] and step["theta"] == 0.0
    if kind.startswith("generalized"):
        assert 0.5 <= step["beta"] <= 4.0
    elif kind.startswith("plateau"):
        assert 1.0 <= step["beta"] <= 2.0
    else:
        assert "beta" not in step


def _check_blur(step: dict, sigma: tuple[float, float]) -> None:
    assert step["size"] in range(7, 22, 2)
    if step["kernel"] == "sinc":
        low = math.pi / 3 if step["size"] < 13 else math.pi / 5
        assert low <= step["omega_c"] <= math.pi
    else:
        _check_gaussian_family(step, sigma)


def _check_resize(step: dict, probs_range: tuple[float, float], reference: tuple[int, int]) -> None:
    assert step["mode"] in ("area", "bilinear", "bicubic")
    factor = step["factor"]
    if step["direction"] == "up":
        assert 1.0 <= factor <= probs_range[1]
    elif step["direction"] == "down":
        assert probs_range[0] <= factor <= 1.0
    else:
        assert step["direction"] == "keep" and factor == 1.0
    assert step["size"] == [max(1, int(reference[0] * factor)), max(1, int(reference[1] * factor))]


def _check_noise(step: dict, sigma: tuple[float, float], scale: tuple[float, float]) -> None:
    if step["type"] == "gaussian":
        assert sigma[0] <= step["sigma"] <= sigma[1]
    else:
        assert step["type"] == "poisson" and scale[0] <= step["scale"] <= scale[1]
    assert isinstance(step["gray"], bool)
    assert isinstance(step["noise_seed"], int) and step["noise_seed"] >= 0


def test_realesrgan_parameters_in_published_ranges() -> None:
    hr_size, lr_size = (256, 320), (64, 80)
    records = [sample_record(hr_size, "realesrgan", 4, seed) for seed in range(N_RECORDS)]
    counts: Counter[str] = Counter()
    kernel_types: Counter[str] = Counter()
    for rec in records:
        s = {step["name"]: step for step in rec.steps}
        _check_blur(s["blur1"], (0.2, 3.0))
        _check_resize(s["resize1"], (0.15, 1.5), hr_size)
        _check_noise(s["noise1"], (1.0, 30.0), (0.05, 3.0))
        _check_resize(s["resize2"], (0.3, 1.2), lr_size)
        _check_noise(s["noise2"], (1.0, 25.0), (0.05, 2.5))
        for name in ("jpeg1", "jpeg2", "jpeg_final"):
            assert isinstance(s[name]["quality"], int) and 30 <= s[name]["quality"] <= 95
            assert s[name]["encoder"].startswith("opencv-")
        if s["blur2"]["kernel"] == "none":
            counts["blur2_skipped"] += 1
        else:
            _check_blur(s["blur2"], (0.2, 1.5))
        assert s["resize_final"]["size"] == list(lr_size)
        assert s["resize_final"]["mode"] in ("area", "bilinear", "bicubic")
        final = s["sinc_final"]
        if final["kernel"] == "sinc":
            counts["final_sinc"] += 1
            assert final["size"] in range(7, 22, 2) and math.pi / 3 <= final["omega_c"] <= math.pi
        else:
            assert final["kernel"] == "pulse"
        order = s["final_order"]["order"]
        names = [step["name"] for step in rec.steps]
        if order == "resize_sinc_jpeg":
            counts["resize_first"] += 1
            assert names[-4:] == ["resize_final", "sinc_final", "jpeg_final", "quantise"]
        else:
            assert order == "jpeg_resize_sinc"
            assert names[-4:] == ["jpeg_final", "resize_final", "sinc_final", "quantise"]
        for name in ("blur1", "blur2"):
            kernel_types[s[name]["kernel"]] += 1
        counts[f"resize1_{s['resize1']['direction']}"] += 1
        counts[f"resize2_{s['resize2']['direction']}"] += 1
        for name in ("noise1", "noise2"):
            counts["gaussian"] += s[name]["type"] == "gaussian"
            counts["gray"] += s[name]["gray"]

    n = N_RECORDS
    assert _plausible(counts["blur2_skipped"], n, 0.2)
    assert _plausible(counts["final_sinc"], n, 0.8)
    assert _plausible(counts["resize_first"], n, 0.5)
    assert _plausible(counts["gaussian"], 2 * n, 0.5)
    assert _plausible(counts["gray"], 2 * n, 0.4)
    for direction, p1, p2 in (("up", 0.2, 0.3), ("down", 0.7, 0.4), ("keep", 0.1, 0.3)):
        assert _plausible(counts[f"resize1_{direction}"], n, p1)
        assert _plausible(counts[f"resize2_{direction}"], n, p2)
    blurs = 2 * n - counts["blur2_skipped"]
    assert _plausible(kernel_types["sinc"], blurs, 0.1)
    probs = dict(zip(GAUSSIAN_KERNELS, (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), strict=True))
    gaussian_blurs = blurs - kernel_types["sinc"]
    for kind, p in probs.items():
        assert _plausible(kernel_types[kind], gaussian_blurs, p), (kind, kernel_types)
    # The two most likely types come out on top.
    assert [k for k, _ in kernel_types.most_common(2)] == ["iso", "aniso"]


def test_face_parameters_in_ranges() -> None:
    hr_size = (128, 96)
    for seed in range(N_RECORDS):
        rec = sample_record(hr_size, "face", 2, seed)
        s = {step["name"]: step for step in rec.steps}
        for name in ("blur1", "blur2"):
            assert s[name]["kernel"] == "aniso" and s[name]["size"] in (7, 9, 11)
            _check_gaussian_family(s[name], (0.2, 3.0))
        _check_resize(s["resize1"], (0.5, 2.0), hr_size)
        assert s["resize_target"]["size"] == [64, 48]
        _check_noise(s["noise1"], (0.0, 15.0), (0.05, 2.0))
        assert 30 <= s["jpeg1"]["quality"] <= 90
        assert rec.output_size == (64, 48)


def test_bicubic_draws_nothing() -> None:
    assert sample_record((64, 64), "bicubic", 4, 1).steps == sample_record((64, 64), "bicubic", 4, 2).steps
