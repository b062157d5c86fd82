"""Append-only JSONL files that survive interruption: only a cut last line is tolerated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srjudge.errors import SrjudgeError


def read_jsonl(path: Path) -> list[tuple[int, Any]]:
    """(1-based line number, parsed value) of each non-blank line of ``path``.

    Only an unterminated last line (a write cut by an interruption) may fail to parse and is left
    out; any other line that is not JSON raises :class:`SrjudgeError` naming the file and line.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows: list[tuple[int, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            if n == len(lines):  # no newline after it: the last write was cut
                continue
            raise SrjudgeError(
                f"{path}:{n}: not valid JSON ({exc.msg}); the file is corrupt. Fix or delete that line "
                "(or the file, to redo what it holds)."
            ) from None
    return rows


def open_for_append(path: Path) -> Any:
    """``path`` opened to append rows, after dropping an unterminated last line (a cut write)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size:
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            with path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
    return path.open("a", encoding="utf-8")
