"""The gatekeeper: accept, retry with one bounded knob, or reject SR outputs, and record why."""

from srjudge.audit.gate import AuditDecision, AuditPolicy, audit_image

__all__ = ["AuditDecision", "AuditPolicy", "audit_image"]
