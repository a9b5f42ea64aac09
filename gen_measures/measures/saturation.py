"""Layer saturation: the share of a layer's width its outputs actually use.

For every Dense and Conv layer (the classifier included) the covariance of the layer's output
over the whole sample is accumulated in float64 batch by batch (conv outputs channelwise:
every spatial position is one sample of C channels, delve's default; ``conv="gap"`` uses the
globally average-pooled output instead). ``k`` = eigen-directions needed for 99 % of the
variance (:func:`gen_measures.numerics.spectra.saturation_k`, ``rule="paper"``; ``rule="delve"``
reproduces the released delve's effective rule); saturation = ``k / width``. The model value
is the mean over layers; per-layer values are in the result's details.

Direction: declared ``LARGER_GAP`` (a network whose layers spread their outputs over more of
their width is taken to fit idiosyncrasies of the training set).

References
----------
Shenk, J., Richter, M. L., Arpteg, A. & Huss, M. (2021). "Feature space saturation during
training", arXiv:2006.08679; "Spectral analysis of latent representations"; delve package.
"""

from __future__ import annotations

import math

import numpy as np

from gen_measures.numerics.spectra import eigenvalues_desc, saturation as saturation_of_spectrum
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

REFERENCE = "Shenk et al. 2021, 'Feature space saturation during training', arXiv:2006.08679 (delve)"


def covariance_saturation(cov: np.ndarray, width: int, threshold: float = 0.99, rule: str = "paper") -> float:
    """Saturation of one layer from its output covariance (NaN when the covariance is not finite)."""
    cov = np.asarray(cov, dtype=np.float64)
    if not np.all(np.isfinite(cov)):
        return saturation_of_spectrum(np.full(width, np.nan), width, threshold, rule)
    return saturation_of_spectrum(eigenvalues_desc(cov), width, threshold, rule)


def layer_saturations(ctx, *, threshold: float = 0.99, rule: str = "paper", conv: str = "channelwise") -> dict[str, float]:
    """Per-layer saturation of every Dense/Conv layer, in model order."""
    if conv not in ("channelwise", "gap"):
        raise ValueError(f"conv must be 'channelwise' or 'gap', got {conv!r}")
    out = {}
    for st in ctx.layer_statistics():
        acc = st.covariance if conv == "channelwise" else st.covariance_gap
        out[st.name] = covariance_saturation(acc.covariance(), st.width, threshold, rule)
    return out


@register_measure("saturation", direction=LARGER_GAP, needs=("data",), reference=REFERENCE)
def saturation(ctx) -> MeasureResult:
    """Mean over Dense/Conv layers of k/width, k = eigen-directions for 99 % of the output variance."""
    per_layer = layer_saturations(ctx)
    values = list(per_layer.values())
    value = float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else float("nan")
    return MeasureResult(value, {"per_layer": per_layer})
