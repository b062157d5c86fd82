"""Degradation synthesis."""
