"""Reading a JSON file with errors that name the file (shared by every JSON reader here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scoring.errors import GenMeasuresError, MissingFileError


#: Deepest nesting of arrays/objects accepted in any JSON file of the format (the PGDL files
#: nest at most 4 levels; a deeper value is a hostile or broken file, not data).
MAX_JSON_DEPTH = 32


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (iterative; stops counting past ``limit``)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def read_json(path: str | Path, error: type[GenMeasuresError], what: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parsed contents of ``path``.

    Raises :class:`MissingFileError` (``"<path>: <what> not found"``) when absent or not a
    file, and ``error`` naming the file when the text is not valid UTF-8 JSON (with line and
    column), when one object holds the same key twice (JSON parsers would silently keep the
    last one), or when values nest deeper than ``max_depth``.
    """
    path = Path(path)
    if path.is_dir():
        raise MissingFileError(f"{path}: is a folder, not the {what} file")
    if not path.is_file():
        raise MissingFileError(f"{path}: {what} not found")
    try:
        value = json.loads(path.read_text(), object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise error(f"{path}: key {exc.args[0]!r} appears twice in one object (which one is meant?)") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
    except RecursionError:
        raise error(f"{path}: values nest deeper than {max_depth} levels") from None
    depth = json_depth(value, max_depth)
    if depth > max_depth:
        raise error(f"{path}: values nest deeper than {max_depth} levels")
    return value
