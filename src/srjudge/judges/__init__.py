"""Judges: ``create_judge(spec)`` for any registered judge (``trust``, ``tws``) or any metric."""

from __future__ import annotations

from srjudge.judges.base import Comparison, Judge, RankedItem, Ranking, Verdict
from srjudge.judges.registry import JUDGES, JudgeEntry, create_judge, list_judges, register_judge

__all__ = [
    "JUDGES",
    "Comparison",
    "Judge",
    "JudgeEntry",
    "RankedItem",
    "Ranking",
    "Verdict",
    "create_judge",
    "list_judges",
    "register_judge",
]
