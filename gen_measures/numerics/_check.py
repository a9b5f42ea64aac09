"""Argument checks and the degenerate-input warning shared by the numerics modules.

Malformed arguments raise :class:`~gen_measures.errors.DataError` (arrays) or
:class:`~gen_measures.errors.MeasureError` (options), naming the argument; degenerate-but-defined
input is reported by :func:`warn_degenerate` (a :class:`~gen_measures.errors.DegenerateInputWarning`)
and the caller returns NaN.
"""

from __future__ import annotations

import warnings

import numpy as np

from gen_measures.errors import DataError, DegenerateInputWarning, MeasureError, close_matches_hint


def warn_degenerate(message: str, stacklevel: int = 3) -> None:
    """Issue a :class:`DegenerateInputWarning` attributed to the caller's caller (by default)."""
    warnings.warn(message, DegenerateInputWarning, stacklevel=stacklevel)


def check_choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a :class:`MeasureError` listing close matches."""
    if not isinstance(value, str) or value not in choices:
        hint = close_matches_hint(value, choices) if isinstance(value, str) else ""
        raise MeasureError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}.{hint}")
    return value


def check_int(value, name: str, minimum: int) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) ``>= minimum``, else a :class:`MeasureError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MeasureError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def as_float_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` as a real floating array (float32 kept, other types promoted to float64)."""
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise DataError(f"{name} is complex ({arr.dtype}); pass a real array")
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float64 if arr.dtype.kind != "f" else np.float32)
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr
