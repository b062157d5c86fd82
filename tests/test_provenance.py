"""Provenance: configuration digests and file digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from srjudge.provenance import Provenance, config_hash, file_sha256


def test_config_hash_is_order_independent() -> None:
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1}) != config_hash({"a": 1, "b": 3})


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path: Path) -> None:
    small = tmp_path / "abc"
    small.write_bytes(b"abc")
    assert file_sha256(small) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big"  # more than one 1 MiB chunk
    data = bytes(range(256)) * 5000
    big.write_bytes(data)
    assert file_sha256(big) == hashlib.sha256(data).hexdigest()


def test_provenance_of_a_configuration() -> None:
    from srjudge import __version__

    provenance = Provenance.of("trust", {"w_grid": 0.5})
    assert provenance.to_dict() == {
        "producer": "trust",
        "config_hash": config_hash({"w_grid": 0.5}),
        "version": __version__,
    }
    assert len(provenance.config_hash) == 16
