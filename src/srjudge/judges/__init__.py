"""Judges: ``create_judge(spec)`` for any registered judge (``trust``, ``tws``) or any metric."""

from __future__ import annotations

from srjudge.judges import fitted as _fitted  # noqa: F401  (registers)
from srjudge.judges import readout as _readout  # noqa: F401  (registers)
from srjudge.judges import reward as _reward  # noqa: F401  (registers)
from srjudge.judges import trust as _trust  # noqa: F401  (registers)
from srjudge.judges import tws as _tws  # noqa: F401  (registers)
from srjudge.judges import vlm as _vlm  # noqa: F401  (registers)
from srjudge.judges.base import Comparison, Judge, RankedItem, Ranking, Verdict
from srjudge.judges.registry import JUDGES, create_judge, list_judges, register_judge

__all__ = [
    "JUDGES",
    "Comparison",
    "Judge",
    "RankedItem",
    "Ranking",
    "Verdict",
    "create_judge",
    "list_judges",
    "register_judge",
]
