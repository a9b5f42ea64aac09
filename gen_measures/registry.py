"""The measure registry: every measure is declared once, with its direction and its needs.

A measure is a function ``f(ctx) -> float | MeasureResult`` of a model context (see
:mod:`gen_measures.context`). It is registered with :func:`register_measure`, which records
a :class:`MeasureSpec`. Values are stored raw; the *direction* is applied only when models
are ranked (``scoring``), in the spirit of scikit-learn's ``make_scorer(greater_is_better=...)``.

**Plug-ins.** Measures are found through the ``gen_measures.measures`` entry-point group: each
entry names a module whose import registers its measures with :func:`register_measure`. The
core measures (``gen_measures.measures``) and the ``baselines`` package declare themselves in
``pyproject.toml`` exactly as a third-party package would; :func:`load_plugin_file` does the
same for one ``.py`` file (``gen-measures run --plugin FILE``). A plug-in that fails to import
is logged as one warning line naming it, and the others are still loaded.

This module is pure Python: importing it never imports TensorFlow; the measure modules are
imported lazily by :func:`load_plugins` (called by every lookup).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gen_measures.errors import MissingFileError, UnknownMeasureError, close_matches_hint
from scoring.ranking import LARGER_GAP, SMALLER_GAP

log = logging.getLogger(__name__)


#: What a measure may need besides the trained model.
#: ``dataset`` = the whole training split as a ``tf.data.Dataset`` (competition submissions).
KNOWN_NEEDS = frozenset({"data", "dataset", "init_weights", "gradients"})
#: Families: ``core`` measures are this project's, ``baseline`` the published ones it ships,
#: ``plugin`` those registered by other packages or files (the default outside this package).
KNOWN_FAMILIES = frozenset({"core", "baseline", "catalogue", "plugin", "submission"})

#: Entry-point group through which packages register measures (value: a module to import).
ENTRY_POINT_GROUP = "gen_measures.measures"
#: The module of the core measures; imported directly when no distribution metadata declares it
#: (a source checkout that was not installed), so the core measures are always there.
CORE_MODULE = "gen_measures.measures"


@dataclass(frozen=True)
class MeasureResult:
    """A measure value with optional details (per-layer values and the like).

    ``details`` must be JSON-serialisable (floats, strings, lists, dicts).
    """

    value: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasureSpec:
    """Metadata and implementation of one registered measure."""

    name: str
    func: Callable[..., Any]
    direction: int
    needs: frozenset[str]
    family: str
    reference: str
    summary: str
    default: bool = True
    version: str = ""

    @property
    def code_version(self) -> str:
        """What identifies the measure's code: its declared ``version``, else a hash of its source."""
        return self.version or source_hash(self.func)

    @property
    def direction_text(self) -> str:
        return "higher = larger gap" if self.direction == LARGER_GAP else "higher = smaller gap"


_REGISTRY: dict[str, MeasureSpec] = {}


def register_measure(
    name: str,
    *,
    direction: int,
    needs: Iterable[str] = (),
    family: str | None = None,
    reference: str,
    default: bool = True,
    version: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``func(ctx)`` as the measure ``name``.

    Parameters
    ----------
    name : unique measure name (lower-case, ``[a-z0-9_]``).
    direction : :data:`LARGER_GAP` or :data:`SMALLER_GAP`.
    needs : subset of :data:`KNOWN_NEEDS`.
    family : one of :data:`KNOWN_FAMILIES`; default ``"core"`` for this package's own
        measures and ``"plugin"`` for measures registered by any other module.
    reference : literature reference (authors, year, title; repository where one exists).
    default : whether ``gen-measures run`` computes it when no ``--measures`` is given (only
        ``core`` measures are in the ``default`` group).
    version : a version string of the measure's code; stored results are reused only while it
        is unchanged. Empty (the default): a hash of the function's source is used.
    """
    if direction not in (LARGER_GAP, SMALLER_GAP):
        raise ValueError(f"register_measure({name!r}): direction must be LARGER_GAP (1) or SMALLER_GAP (-1), got {direction!r}")
    needs_set = frozenset(needs)
    unknown = needs_set - KNOWN_NEEDS
    if unknown:
        raise ValueError(f"register_measure({name!r}): unknown needs {sorted(unknown)}; known: {sorted(KNOWN_NEEDS)}")
    if family is not None and family not in KNOWN_FAMILIES:
        raise ValueError(f"register_measure({name!r}): family must be one of {sorted(KNOWN_FAMILIES)}, got {family!r}")
    if not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"register_measure: name must be lower-case letters, digits and '_', got {name!r}")
    if not reference.strip():
        raise ValueError(f"register_measure({name!r}): a literature reference is required")

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.func is not func:
            if (existing.func.__module__, existing.func.__qualname__) != (func.__module__, func.__qualname__):
                raise ValueError(f"register_measure: {name!r} is already registered by {existing.func.__module__}")
        doc = (func.__doc__ or "").strip().splitlines()
        own = func.__module__.split(".")[0] == "gen_measures"
        _REGISTRY[name] = MeasureSpec(
            name=name,
            func=func,
            direction=direction,
            needs=needs_set,
            family=family if family is not None else ("core" if own else "plugin"),
            reference=reference.strip(),
            summary=doc[0] if doc else "",
            default=default,
            version=str(version),
        )
        return func

    return decorator


def source_hash(func: Callable[..., Any]) -> str:
    """First 16 hex digits of the SHA-256 of ``func``'s source (its qualified name when unavailable)."""
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError):
        text = f"{func.__module__}.{func.__qualname__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_plugins_loaded = False
#: Plug-ins that failed to import: ``(name, one-line reason)``.
_plugin_failures: list[tuple[str, str]] = []
#: Plug-in files loaded with :func:`load_plugin_file` (worker processes load them again).
_plugin_files: list[str] = []


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.value != CORE_MODULE, ep.name))


def load_plugins() -> None:
    """Import every module of the ``gen_measures.measures`` entry-point group once.

    The core module is imported first (directly when no installed metadata declares it). A
    module that fails to import is logged as a one-line warning naming the entry point and
    recorded in :func:`plugin_failures`; the other plug-ins still load.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    eps = _entry_points()
    if not any(ep.value == CORE_MODULE for ep in eps):
        importlib.import_module(CORE_MODULE)
    for ep in eps:
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - any failure of third-party code becomes a warning
            reason = _one_line(exc)
            _plugin_failures.append((f"{ep.name} ({ep.value})", reason))
            log.warning("measure plug-in %r (%s) failed to import and is skipped: %s", ep.name, ep.value, reason)


def load_plugin_file(path: str | Any) -> str | None:
    """Import the measure plug-in file ``path`` (a ``.py`` file that calls :func:`register_measure`).

    Returns the module name, or ``None`` when the file failed to import (logged as one warning
    line naming the file and recorded in :func:`plugin_failures`). Raises
    :class:`~gen_measures.errors.MissingFileError` when ``path`` is not a file.
    """
    from pathlib import Path

    load_plugins()
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        what = "a folder" if file.is_dir() else "not found"
        raise MissingFileError(f"--plugin {path}: {what}; expected a .py file that registers measures")
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:8]
    module_name = f"gen_measures_plugin_{file.stem}_{digest}"
    if module_name in sys.modules:
        return module_name
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise MissingFileError(f"--plugin {path}: cannot be imported as a Python module (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file; its failure is reported, not raised
        del sys.modules[module_name]
        reason = _one_line(exc)
        _plugin_failures.append((str(file), reason))
        log.warning("measure plug-in file %s failed to import and is skipped: %s", file, reason)
        return None
    if str(file) not in _plugin_files:
        _plugin_files.append(str(file))
    return module_name


def plugin_files() -> list[str]:
    """The plug-in files loaded so far (absolute paths), for worker processes to load again."""
    return list(_plugin_files)


def plugin_failures() -> list[tuple[str, str]]:
    """Plug-ins that failed to import, as ``(name, one-line reason)``."""
    load_plugins()
    return list(_plugin_failures)


def list_measures(family: str | None = None) -> list[MeasureSpec]:
    """All registered measures (built-ins and plug-ins), sorted by family then name."""
    load_plugins()
    specs = [s for s in _REGISTRY.values() if family is None or s.family == family]
    order = {"core": 0, "baseline": 1, "catalogue": 2, "plugin": 3, "submission": 4}
    return sorted(specs, key=lambda s: (order.get(s.family, 9), s.name))


def get_measure(name: str) -> MeasureSpec:
    """The spec of measure ``name``; an unknown name raises :class:`UnknownMeasureError` with close matches."""
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = close_matches_hint(name, list(_REGISTRY) + list(GROUPS))
        raise UnknownMeasureError(
            f"unknown measure {name!r}.{hint} Run `gen-measures list` for the registered names."
        ) from None


#: Group names accepted wherever measure names are.
GROUPS = {
    "default": lambda s: s.default and s.family == "core",
    "core": lambda s: s.family == "core",
    "baselines": lambda s: s.family == "baseline",
    "catalogue": lambda s: s.family == "catalogue",
    "plugins": lambda s: s.family == "plugin",
    # submissions run only through `gen-measures ingest`, never as part of a group
    "all": lambda s: s.family != "submission",
}


def resolve_measures(names: str | Iterable[str] | None) -> list[MeasureSpec]:
    """Expand a comma-separated string or list of measure/group names into specs (order kept, no repeats).

    ``None`` means the ``default`` group; an empty selection (``""``, ``[]``) is an error.
    """
    load_plugins()
    if names is None:
        items = ["default"]
    elif isinstance(names, str):
        items = [n.strip() for n in names.split(",") if n.strip()]
    else:
        items = [n.strip() for n in names if n.strip()]
    if not items:
        raise UnknownMeasureError(
            f"--measures {names!r}: no measure named; give measure or group names (e.g. 'default', 'all'; "
            "see `gen-measures list`)")
    out: dict[str, MeasureSpec] = {}
    for item in items:
        if item in GROUPS:
            for spec in list_measures():
                if GROUPS[item](spec):
                    out.setdefault(spec.name, spec)
        else:
            spec = get_measure(item)
            out.setdefault(spec.name, spec)
    return list(out.values())
