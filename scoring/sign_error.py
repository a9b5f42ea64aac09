"""Robust sign-error of a measure over single-hyperparameter interventions.

Dziugaite et al. (2020) evaluate a measure on *coupled* experiments: two training setups that
differ in exactly one hyperparameter (an *environment*). For a pair of models ``(w, w')`` the
sign-error is ``(1 - sign(g(w) - g(w')) sign(mu(w) - mu(w'))) / 2`` (0 = right order,
1 = wrong order, 1/2 = the measure ties). Here an environment is a pair of grid cells differing
in exactly one hyperparameter; its sign-error is the mean over the model pairs across the two
cells (one pair on a grid with one model per cell; replicate seeds average). Pairs whose gaps
differ by at most ``gap_tolerance`` are excluded (the paper drops comparisons within the
Monte-Carlo noise; the default 0 drops exact ties only). The *robust* sign-error is the maximum
over environments; the mean and 90th percentile are reported too, per hyperparameter and overall.

References
----------
* G. K. Dziugaite, A. Drouin, B. Neal, N. Rajkumar, E. Caballero, L. Wang, I. Mitliagkas,
  D. M. Roy, "In search of robust measures of generalization", NeurIPS 2020 (arXiv:2010.11924).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import DegenerateInputWarning, ScoringError
from scoring._validate import align, encode, joint_codes, pairs_within

__all__ = ["SignError", "sign_error"]

OVERALL = "overall"


@dataclass
class SignError:
    """Sign-error summary and environments.

    Attributes
    ----------
    summary : index = hyperparameters then ``"overall"``; columns ``n_environments``, ``mean``,
        ``p90``, ``max`` (NaN where there is no environment).
    environments : one row per environment: ``hparam``, ``cell_a``, ``cell_b`` (joint cell
        codes), ``n_pairs``, ``sign_error``.
    """

    summary: pd.DataFrame
    environments: pd.DataFrame

    @property
    def mean(self) -> float:
        return float(self.summary.loc[OVERALL, "mean"])

    @property
    def p90(self) -> float:
        return float(self.summary.loc[OVERALL, "p90"])

    @property
    def max(self) -> float:
        return float(self.summary.loc[OVERALL, "max"])


def _summarise(errors: np.ndarray) -> dict[str, float]:
    if errors.size == 0:
        return {"n_environments": 0, "mean": math.nan, "p90": math.nan, "max": math.nan}
    return {
        "n_environments": int(errors.size),
        "mean": float(errors.mean()),
        "p90": float(np.percentile(errors, 90)),
        "max": float(errors.max()),
    }


def sign_error(values: Any, gaps: Any, hparams: Any, *, gap_tolerance: float = 0.0) -> SignError:
    """Robust sign-error per hyperparameter (mean, 90th percentile, max over environments).

    Parameters
    ----------
    values : per-model measure values (higher = larger predicted gap).
    gaps : per-model generalization gaps.
    hparams : model x hyperparameter DataFrame.
    gap_tolerance : pairs with ``|gap_i - gap_j| <= gap_tolerance`` are excluded (>= 0).

    Returns
    -------
    SignError
    """
    if not (isinstance(gap_tolerance, (int, float)) and math.isfinite(gap_tolerance) and gap_tolerance >= 0):
        raise ScoringError(f"gap_tolerance: expected a finite number >= 0, got {gap_tolerance!r}")
    v, g, frame = align(values, gaps, hparams)
    n = len(v)
    names = list(frame.columns)
    codes = {h: encode(list(frame[h]))[0] for h in names}
    cell, _ = joint_codes([codes[h] for h in names], dense_limit=0)
    n_cells = int(cell.max()) + 1
    rows, summary = [], {}
    for h in names:
        others = [codes[o] for o in names if o != h]
        group = joint_codes(others, dense_limit=0)[0] if others else np.zeros(n, dtype=np.int64)
        i, j = pairs_within(group)
        keep = (codes[h][i] != codes[h][j]) & (np.abs(g[i] - g[j]) > gap_tolerance)
        i, j = i[keep], j[keep]
        err = 0.5 * (1.0 - np.sign(g[i] - g[j]) * np.sign(v[i] - v[j]))
        a, b = np.minimum(cell[i], cell[j]), np.maximum(cell[i], cell[j])
        env, inverse = np.unique(a * n_cells + b, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(env))
        means = np.bincount(inverse, weights=err, minlength=len(env)) / np.maximum(counts, 1)
        summary[h] = _summarise(means)
        rows.append(pd.DataFrame({"hparam": h, "cell_a": env // n_cells, "cell_b": env % n_cells, "n_pairs": counts, "sign_error": means}))
    environments = pd.concat(rows, ignore_index=True)
    summary[OVERALL] = _summarise(environments["sign_error"].to_numpy())
    if summary[OVERALL]["n_environments"] == 0:
        warnings.warn(
            "sign_error: no pair of models differs in exactly one hyperparameter with distinct gaps; "
            "the sign-error is undefined (NaN)",
            DegenerateInputWarning,
            stacklevel=2,
        )
    table = pd.DataFrame.from_dict(summary, orient="index")
    table["n_environments"] = table["n_environments"].astype(int)
    return SignError(summary=table, environments=environments)
