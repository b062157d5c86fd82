"""The settings of a VLM judge (what defines its answers), apart from the judge so protocols can read them.

The protocol name is checked against the protocol registry when the judge is built
(:class:`~srjudge.judges.vlm.judge.VLMJudge`), which gives the did-you-mean hint.
"""

from __future__ import annotations

from srjudge.vlm.settings import VLMSettings

VLMJudgeConfig = VLMSettings
"""A VLM judge's settings: the record every VLM consumer uses (:class:`srjudge.vlm.settings.VLMSettings`)."""
