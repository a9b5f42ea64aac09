"""Package-wide tests of gen_measures.numerics: import hygiene and silence on regular input."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np

from gen_measures.numerics.scatter import ClassScatterAccumulator
from gen_measures.numerics.singular_vectors import pvector, top_left_singular_vectors
from gen_measures.numerics.spectra import eigenvalues_desc, saturation


def test_importing_numerics_does_not_import_tensorflow():
    code = (
        "import importlib, pkgutil, sys, gen_measures.numerics as p, baselines.power_law; "
        "[importlib.import_module(f'{p.__name__}.{m.name}') for m in pkgutil.iter_modules(p.__path__)]; "
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"gen_measures.numerics imported {proc.stdout.strip()} {proc.stderr[-500:]}"


def test_no_unexpected_warnings_on_regular_input():
    rng = np.random.default_rng(22)
    means = np.array([[0, 3, 1], [3, 0, 1]], dtype=np.float64)
    y = rng.permutation(np.repeat([0, 1], 20))
    h = means[y] + 0.4 * rng.standard_normal((40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pvector(h)
        top_left_singular_vectors(h, 2, method="randomized")
        acc = ClassScatterAccumulator(3, 2).update(h, y)
        acc.compression()
        acc.discrimination(center=True)
        saturation(eigenvalues_desc(np.cov(h, rowvar=False, bias=True)), 3)
