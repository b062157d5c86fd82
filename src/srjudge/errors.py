"""Error classes: every user-facing failure names the file or value and says how to fix it."""

from __future__ import annotations


class SrjudgeError(Exception):
    """Base of every error srjudge raises on purpose; the CLI prints its message without a traceback."""


class ImageError(SrjudgeError):
    """An image could not be read, or is not usable as given."""


class SizeMismatchError(ImageError):
    """Two images that must align have incompatible sizes."""


class UnknownNameError(SrjudgeError, KeyError):
    """A registry was asked for a name it does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SpecError(SrjudgeError, ValueError):
    """A judge, metric or backend spec string, or one of its options, is malformed."""


class MissingWeightsError(SrjudgeError):
    """A model-backed component was asked for without usable local weights."""


class MissingDependencyError(SrjudgeError):
    """An optional dependency (an extra) is not installed."""
