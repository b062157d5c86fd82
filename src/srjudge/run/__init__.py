"""``srjudge run`` and ``srjudge report``: the main job as one resumable run folder."""

from __future__ import annotations

from srjudge.run.job import RunConfig, RunSummary, build_report, load_run_config, run_job
from srjudge.run.layout import RunLayout

__all__ = ["RunConfig", "RunLayout", "RunSummary", "build_report", "load_run_config", "run_job"]
