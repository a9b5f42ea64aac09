"""Tests of baselines.power_law (the power-law fit of baselines.spectral).

References used: planted Pareto samples (with and without a non-power-law bulk) and the
closed-form maximum-likelihood exponent for a fixed ``xmin``.
"""

from __future__ import annotations

import numpy as np
import pytest

from baselines.power_law import power_law_fit
from gen_measures.errors import DegenerateInputWarning, MeasureError


@pytest.mark.parametrize("alpha", [2.5, 4.0])
def test_power_law_fit_recovers_planted_pareto(alpha):
    rng = np.random.default_rng(20)
    x = 0.7 * rng.uniform(size=2000) ** (-1.0 / (alpha - 1.0))  # density ~ x^-alpha on [0.7, inf)
    fit = power_law_fit(x)
    assert fit.alpha == pytest.approx(alpha, abs=0.15)
    assert fit.xmin >= 0.7 and fit.n_tail >= 5 and 0 <= fit.ks_distance < 0.1


def test_power_law_fit_with_a_bulk_below_the_tail():
    rng = np.random.default_rng(21)
    tail = 2.0 * rng.uniform(size=2000) ** (-1.0 / 2.0)  # alpha 3 above xmin = 2
    bulk = rng.uniform(0.01, 1.5, size=1500)  # Marchenko-Pastur-like bulk, not a power law
    fit = power_law_fit(np.concatenate([bulk, tail, -np.ones(3), np.zeros(4)]))
    assert fit.alpha == pytest.approx(3.0, abs=0.15)
    assert 1.4 <= fit.xmin <= 3.0


def test_power_law_fixed_xmin_is_the_closed_form_mle():
    x = np.array([1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0])
    expected = 1 + 6 / np.sum(np.log(x[1:] / 1.2))
    assert power_law_fit(x, xmin=1.2).alpha == pytest.approx(expected, rel=1e-14)


def test_power_law_degenerate_and_bad_input():
    with pytest.warns(DegenerateInputWarning, match="min_tail"):
        assert np.isnan(power_law_fit([1.0, 2.0, 0.0, -1.0]).alpha)
    with pytest.warns(DegenerateInputWarning, match="min_tail"):
        assert np.isnan(power_law_fit(np.arange(1.0, 11.0), xmin=9.5).alpha)
    with pytest.warns(DegenerateInputWarning, match="identical"):
        assert np.isnan(power_law_fit(np.ones(10)).alpha)
    with pytest.raises(MeasureError, match="xmin"):
        power_law_fit(np.arange(1.0, 11.0), xmin="best")
    with pytest.raises(MeasureError, match="xmin"):
        power_law_fit(np.arange(1.0, 11.0), xmin=-1.0)
