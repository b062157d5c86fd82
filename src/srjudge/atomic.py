"""Writing files so that an interruption leaves the old file or the complete new one, never a cut one.

Every record srjudge writes (images, JSON, CSV rewrites, JSONL rewrites) goes through here: the data
goes to a hidden temporary file beside the target (``.<name>.tmp``: no image or record suffix, so no
folder scan picks it up), is flushed to disk (``fsync``), and is renamed over the target, which is
atomic on one file system. A resumed run can therefore trust any record it finds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating parent folders); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], payload: Any, *, indent: int | None = 2) -> Path:
    """Write ``payload`` as JSON (non-JSON values as strings) to ``path`` atomically."""
    return write_text(path, json.dumps(payload, indent=indent, default=str) + "\n")
