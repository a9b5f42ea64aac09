"""The toolkit's error and warning base classes, and the scoring-specific ones.

They live in the lowest package of the three (``scoring`` <- ``gen_measures`` <- ``baselines``)
so that every package can raise them without importing upward; :mod:`gen_measures.errors`
re-exports them beside the errors of model loading and measuring.

Every error raised on purpose by the toolkit derives from :class:`GenMeasuresError`, and the
specific classes also derive from the matching builtin (``ValueError``, ``FileNotFoundError``),
so ``except ValueError`` keeps working for callers who do not know this package. Messages name
the file or argument, what is wrong, and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "DegenerateInputWarning",
    "GenMeasuresError",
    "GenMeasuresWarning",
    "GridError",
    "MissingFileError",
    "ScoringError",
    "TaskFormatError",
    "close_matches_hint",
]


class GenMeasuresError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class TaskFormatError(GenMeasuresError, ValueError):
    """A task folder or one of its files does not follow the PGDL format."""


class MissingFileError(GenMeasuresError, FileNotFoundError):
    """A file or folder the format requires is absent."""


class ScoringError(GenMeasuresError, ValueError):
    """Predictions or reference data cannot be scored as requested."""


class GridError(ScoringError):
    """The hyperparameter grid does not allow the requested score.

    Raised by the official-compatible CMI when the grid is incomplete, has duplicated cells,
    holds values outside ``possible_values`` or has fewer than two hyperparameters. The message
    lists the offending cells. Derives from :class:`ScoringError` (and so from :class:`ValueError`).
    """


class GenMeasuresWarning(UserWarning):
    """Base class of the toolkit's warnings."""


class DegenerateInputWarning(GenMeasuresWarning):
    """Input is degenerate but the result is defined (usually NaN); the message says why."""


def close_matches_hint(name: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean 'x' or 'y'?"`` for close matches of ``name``, else ``""``."""
    matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"
