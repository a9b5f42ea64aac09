"""The exception and warning hierarchy of the toolkit.

The base classes (:class:`GenMeasuresError`, :class:`DegenerateInputWarning`, ...) and the
errors ``scoring`` raises are defined in :mod:`scoring.errors`, the lowest package, and
re-exported here; this module adds the errors of loading models and data and of measuring.
Every specific class also derives from the matching builtin (``ValueError``, ``KeyError``,
``OSError``), so ``except ValueError`` keeps working for callers who do not know this package.
"""

from __future__ import annotations

from scoring.errors import (
    DegenerateInputWarning,
    GenMeasuresError,
    GenMeasuresWarning,
    GridError,
    MissingFileError,
    ScoringError,
    TaskFormatError,
    close_matches_hint,
)

__all__ = [
    "DataError",
    "DegenerateInputWarning",
    "GenMeasuresError",
    "GenMeasuresWarning",
    "GridError",
    "MeasureError",
    "MissingFileError",
    "ModelLoadError",
    "NotApplicableError",
    "ScoringError",
    "TaskFormatError",
    "UnknownMeasureError",
    "close_matches_hint",
]


class ModelLoadError(GenMeasuresError, ValueError):
    """A model cannot be built from its ``config.json`` or its weights cannot be loaded."""


class DataError(GenMeasuresError, ValueError):
    """Training/test data cannot be read or cannot serve the requested computation."""


class MeasureError(GenMeasuresError, ValueError):
    """A measure cannot be computed on the given model context (not a NaN case: a real error)."""


class NotApplicableError(MeasureError):
    """The measure does not apply to this model or data (e.g. an image-only measure on vectors).

    The runner records such a result as ``not_applicable`` with the message as its reason: not
    a failure, and it does not make the exit status non-zero.
    """


class UnknownMeasureError(GenMeasuresError, KeyError):
    """A measure or group name is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""
