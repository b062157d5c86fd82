"""Resumable per-key JSONL stores and collision-free file names, shared by the bench and the testbed."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from srjudge.errors import SrjudgeError
from srjudge.jsonl import open_for_append, read_jsonl


def slug(text: str, length: int = 60) -> str:
    """A file-name-safe form of a spec or item id (its first ``length`` safe characters), unique through
    a short hash of the whole text."""
    safe = re.sub(r"[^A-Za-z0-9.+=-]+", "_", text)[:length]
    return safe + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]


class JsonlStore:
    """Append-only JSONL keyed by ``key``; lines of another configuration are ignored.

    Every row is written and flushed as it is made, so an interrupted run resumes where it stopped.
    Only an unterminated last line (a write cut by an interruption) is tolerated: it is dropped from
    the file and its entry is computed again. Any other unreadable line raises :class:`SrjudgeError`.
    """

    def __init__(self, path: Path, config_hash: str) -> None:
        self.path = path
        self.config_hash = config_hash
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for number, row in read_jsonl(path):
                if not isinstance(row, dict) or "key" not in row:
                    raise SrjudgeError(
                        f"{path} line {number} is not a JSON object with a 'key': fix or delete that line "
                        "(or delete the file to compute its entries again)."
                    )
                if row.get("config_hash") == config_hash:
                    self.rows[str(row["key"])] = row
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open_for_append(path)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def put(self, key: str, row: Mapping[str, Any]) -> dict[str, Any]:
        full = {"key": key, "config_hash": self.config_hash, **row}
        self.rows[key] = full
        self._handle.write(json.dumps(full) + "\n")
        self._handle.flush()
        return full

    def close(self) -> None:
        self._handle.close()
