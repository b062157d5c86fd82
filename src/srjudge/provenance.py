"""Provenance recorded with every result: who produced it, with which configuration, in which version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable configuration (keys sorted)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Provenance:
    producer: str
    config_hash: str
    version: str

    @classmethod
    def of(cls, producer: str, config: Mapping[str, Any]) -> Provenance:
        from srjudge import __version__

        return cls(producer=producer, config_hash=config_hash(config), version=__version__)

    def to_dict(self) -> dict[str, str]:
        return {"producer": self.producer, "config_hash": self.config_hash, "version": self.version}
