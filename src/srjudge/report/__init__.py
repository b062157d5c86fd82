"""Reports of a run: side-by-side panels, a static HTML page, and a headless-browser check of it."""

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
