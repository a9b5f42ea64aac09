"""gen_measures: predict the generalization of trained deep networks (PGDL format).

The public API is imported lazily so that ``import gen_measures`` never pulls in TensorFlow.
"""

from __future__ import annotations

from gen_measures.registry import (
    LARGER_GAP,
    SMALLER_GAP,
    MeasureResult,
    MeasureSpec,
    get_measure,
    list_measures,
    register_measure,
    resolve_measures,
)

__version__ = "0.1.0"

__all__ = [
    "LARGER_GAP",
    "SMALLER_GAP",
    "MeasureResult",
    "MeasureSpec",
    "compute",
    "get_measure",
    "read_results",
    "list_measures",
    "register_measure",
    "resolve_measures",
]


def __getattr__(name: str):
    if name in ("compute", "read_results"):
        from gen_measures import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'gen_measures' has no attribute {name!r}")
