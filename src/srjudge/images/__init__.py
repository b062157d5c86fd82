"""Images: loading and saving (``io``), colour conversions, resizing and alignment checks.

Canonical in-memory form everywhere in srjudge: float32 RGB in [0, 1], shape H x W x 3.
"""
