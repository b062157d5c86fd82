"""The run folder of ``srjudge run``: one place that names every path and record schema.

::

    RUN/run.json                              the settings (schema srjudge.run/1)
    RUN/candidates/<name>/lr.png              generate: the LR input ...
    RUN/candidates/<name>/candidates/*.png    ... every backend's output ...
    RUN/candidates/<name>/manifest.json       ... and each candidate's backend, settings and seed
    RUN/selection/<name>/selection.json       select: ranking, choice, fusion, TWS (srjudge.selection/2)
    RUN/selection/<name>/chosen.png, fused.png
    RUN/selection/selections.csv
    RUN/audit/<name>/decision.json            audit of the chosen output (srjudge.run-audit/1)
    RUN/audit/<name>/final.png, panel.png
    RUN/report/index.html                     report: built from the records above alone

Every record is written atomically (a temporary file, then a rename), so a killed run leaves each
record complete or absent, and a re-run skips what is recorded with the same settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_SCHEMA = "srjudge.run/1"
RUN_AUDIT_SCHEMA = "srjudge.run-audit/1"


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run folder."""

    root: Path

    @property
    def settings(self) -> Path:
        return self.root / "run.json"

    @property
    def candidates(self) -> Path:
        return self.root / "candidates"

    @property
    def selection(self) -> Path:
        return self.root / "selection"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def item_names(self) -> list[str]:
        """Items with candidates, in name order."""
        if not self.candidates.is_dir():
            return []
        return sorted(p.name for p in self.candidates.iterdir() if (p / "manifest.json").is_file())

    def manifest(self, name: str) -> Path:
        return self.candidates / name / "manifest.json"

    def lr(self, name: str) -> Path:
        return self.candidates / name / "lr.png"

    def selection_record(self, name: str) -> Path:
        return self.selection / name / "selection.json"

    def audit_record(self, name: str) -> Path:
        return self.audit / name / "decision.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """A record, or None when it is absent or unreadable (then the step that writes it runs again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
