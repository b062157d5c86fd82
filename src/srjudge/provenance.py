"""Provenance recorded with every result: who produced it, with which configuration, in which version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
