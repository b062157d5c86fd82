"""VLM protocols, one module each, found through :data:`PROTOCOLS` (see :mod:`.base` to add one)."""

from __future__ import annotations

from srjudge.judges.vlm.protocols.base import (
    PROTOCOLS,
    Outcome,
    PointwiseProtocol,
    ProtocolContext,
    ProtocolEntry,
    VLMProtocol,
    protocol_entry,
    register_protocol,
)

__all__ = [
    "PROTOCOLS",
    "Outcome",
    "PointwiseProtocol",
    "ProtocolContext",
    "ProtocolEntry",
    "VLMProtocol",
    "protocol_entry",
    "register_protocol",
]
