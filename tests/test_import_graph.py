"""The three packages depend on each other one way only: scoring <- gen_measures <- baselines.

Checked on the source with the standard library's ``ast``: every ``import`` / ``from ... import``
anywhere in a module (inside functions too), every dotted string literal that names a package
module (``"baselines.kit"``) and every string passed to an import function
(``importlib.import_module("baselines")``, ``__import__``, ``find_spec``) counts. ``scoring`` may import only the
standard library, numpy, scipy, pandas and itself (no TensorFlow, Keras or h5py).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("scoring", "gen_measures", "baselines")
#: What each package may import among the three.
ALLOWED = {
    "scoring": {"scoring"},
    "gen_measures": {"scoring", "gen_measures"},
    "baselines": {"scoring", "gen_measures", "baselines"},
}
SCORING_THIRD_PARTY = {"numpy", "scipy", "pandas"}
MODULE_STRING = re.compile(r"^(scoring|gen_measures|baselines)(\.[A-Za-z_]\w*)*$")
IMPORT_CALLS = {"import_module", "__import__", "find_spec", "reload"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import and module-naming string literal in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.lineno, node.module))
            elif node.level > 0:  # relative import: resolve against the file's package
                base = path.relative_to(REPO).with_suffix("").parts[: -node.level]
                found.append((node.lineno, ".".join(base + ((node.module,) if node.module else ()))))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
            if MODULE_STRING.match(node.value):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            for arg in node.args[:1]:
                if name in IMPORT_CALLS and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if MODULE_STRING.match(arg.value):
                        found.append((node.lineno, arg.value))
    return found


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_upward_import(package):
    bad = []
    for path in _modules(package):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[package]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_scoring_imports_only_numpy_scipy_pandas():
    bad = []
    for path in _modules("scoring"):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in SCORING_THIRD_PARTY or top == "scoring" or top == "__future__":
                continue
            bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not bad, "scoring must need only numpy/scipy/pandas:\n" + "\n".join(bad)


def test_the_check_finds_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a planted lazy import and a module string are both found."""
    pkg = tmp_path / "scoring"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        "import importlib\n\ndef f():\n    from gen_measures import registry\n\n"
        "X = 'baselines.kit'\nimportlib.import_module('baselines')\nGROUP = 'baselines'\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    found = sorted(m for _, m in _imports(pkg / "bad.py"))
    assert found == ["baselines", "baselines.kit", "gen_measures", "importlib"]
