"""Images: loading and saving (``io``), colour conversions, resizing, alignment checks, sample photos.

Canonical in-memory form everywhere in srjudge: float32 RGB in [0, 1], shape H x W x 3.
"""
