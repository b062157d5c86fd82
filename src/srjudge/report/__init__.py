"""Reports of a run: side-by-side panels and a static HTML page (the tests check it in a browser)."""

from __future__ import annotations

from srjudge.report.html import (
    AuditRow,
    AuditSection,
    CandidateEntry,
    FusedEntry,
    ReportData,
    ReportItem,
    candidates_from_ranking,
    write_report,
)
from srjudge.report.panels import side_by_side

__all__ = [
    "AuditRow",
    "AuditSection",
    "CandidateEntry",
    "FusedEntry",
    "ReportData",
    "ReportItem",
    "candidates_from_ranking",
    "side_by_side",
    "write_report",
]
