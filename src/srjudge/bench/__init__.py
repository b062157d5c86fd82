"""Bench: how well judges agree with people, how stable they are, and what they cost."""
