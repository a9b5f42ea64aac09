"""Measures as plug-ins: an installed package (entry point) and a single file (--plugin)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from gen_measures.registry import ENTRY_POINT_GROUP

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """A third-party measure: the number of trainable kernel entries, in thousands."""
    from gen_measures import LARGER_GAP, register_measure

    @register_measure("{name}", direction=LARGER_GAP, needs=(), reference="Plug-in test, 2026")
    def {name}(ctx):
        """Kernel entries / 1000."""
        return float(sum(k.size for k in ctx.kernels()) / 1000.0)
    '''
)


def _fake_distribution(root, module: str, name: str, entry_points: dict[str, str]) -> None:
    """A package plus ``.dist-info`` metadata on ``root``: what ``pip install`` would leave."""
    (root / f"{module}.py").write_text(PLUGIN_SOURCE.format(name=name))
    info = root / f"{module.replace('_', '-')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def _cli(args, env_path, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(env_path), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "gen_measures", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


def test_installed_plugin_and_plugin_file_are_listed_and_computed(tiny_zoo, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _fake_distribution(site, "my_gen_plugin", "kilo_kernels", {"mine": "my_gen_plugin", "broken": "no_such_module_xyz"})
    single = tmp_path / "single_measure.py"
    single.write_text(PLUGIN_SOURCE.format(name="kilo_kernels_file"))

    listed = _cli(["list", "--plugin", str(single)], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "plugin" in rows["kilo_kernels"] and "plugin" in rows["kilo_kernels_file"]
    assert "no" in rows["kilo_kernels"].split()[2]  # plug-ins are not in the default group
    # the broken entry point is one warning line naming it, not a crash
    assert "broken" in listed.stderr and "no_such_module_xyz" in listed.stderr
    assert "Traceback" not in listed.stderr

    out = tmp_path / "out"
    ran = _cli(["run", str(tiny_zoo / "digits_vgg_tiny"), "--measures", "kilo_kernels,kilo_kernels_file",
                "--plugin", str(single), "--output", str(out), "--fuse", ""], site, tmp_path)
    assert ran.returncode == 0, ran.stderr
    results = pd.read_csv(out / "results.csv")
    assert set(results.status) == {"ok"} and len(results) == 2 * 4
    by = results.pivot(index="model", columns="measure", values="value")
    assert (by["kilo_kernels"] == by["kilo_kernels_file"]).all() and (by["kilo_kernels"] > 0).all()


def test_plugin_file_that_fails_to_import_is_a_warning(tmp_path, caplog):
    from gen_measures.registry import load_plugin_file, plugin_failures

    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise RuntimeError('oops at import')\n")
    assert load_plugin_file(bad) is None
    assert any(str(bad) in name and "oops at import" in why for name, why in plugin_failures())
    assert any("bad_plugin.py" in r.getMessage() and "oops" in r.getMessage() for r in caplog.records)


def test_plugin_path_that_is_not_a_file_names_it(tmp_path):
    from gen_measures.errors import MissingFileError
    from gen_measures.registry import load_plugin_file

    with pytest.raises(MissingFileError, match="a folder"):
        load_plugin_file(tmp_path)
    with pytest.raises(MissingFileError, match="not found"):
        load_plugin_file(tmp_path / "nope.py")
