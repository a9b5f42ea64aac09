"""P-vector angles: where the top singular direction of a model's features points.

The P-vector of an ``n x d`` matrix (n samples) is its top left singular vector: a unit vector
over the *samples*. The model P-vector comes from the penultimate features (rule:
:data:`gen_measures.context.FEATURE_LAYER_RULE`), the data P-vector from the raw inputs
(flattened), both uncentred by default as in the seed paper. Because both live in sample
space, they can be compared across models and with the data: the angle between them is
``arccos(min(1, |p_X . p_F|))``, sign-safe, in degrees.

Direction: declared ``LARGER_GAP`` (a model whose dominant feature direction departs further
from the data's is taken to generalize worse); CMI is sign-blind, Kendall tau is not: check
the sign on your zoo with ``gen-measures run`` before relying on tau.

References
----------
Seed paper: "Empirical studies on the convergence of feature spaces" (P-vectors; no public
code). Halko, Martinsson & Tropp (2011), "Finding structure with randomness", SIAM Review 53(2).
"""

from __future__ import annotations

import numpy as np

from gen_measures.numerics.singular_vectors import angle_between, pvector, subspace_angles_deg, top_left_singular_vectors
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

REFERENCE = (
    "Seed paper 'Empirical studies on the convergence of feature spaces' (P-vector); "
    "Halko, Martinsson & Tropp 2011, SIAM Review 53(2) (randomized SVD)"
)


def pvector_angle_deg(inputs: np.ndarray, features: np.ndarray, *, center: bool = False, method: str = "auto", seed: int = 0) -> float:
    """Angle (degrees) between the data P-vector of ``inputs`` and the model P-vector of ``features``.

    Both matrices have one row per sample (same samples, same order); inputs are flattened.
    """
    px = pvector(np.asarray(inputs).reshape(len(inputs), -1), center=center, method=method, seed=seed)
    pf = pvector(np.asarray(features).reshape(len(features), -1), center=center, method=method, seed=seed)
    return angle_between(px, pf)


def model_model_angle_deg(features_a: np.ndarray, features_b: np.ndarray, *, k: int = 1, center: bool = False,
                          method: str = "auto", seed: int = 0) -> float:
    """Angle between two models' P-vectors on the same samples (k > 1: largest principal angle of the top-k subspaces)."""
    ua = top_left_singular_vectors(np.asarray(features_a).reshape(len(features_a), -1), k, center=center, method=method, seed=seed)
    ub = top_left_singular_vectors(np.asarray(features_b).reshape(len(features_b), -1), k, center=center, method=method, seed=seed)
    if k == 1:
        return angle_between(ua[:, 0], ub[:, 0])
    return float(np.max(subspace_angles_deg(ua, ub)))


#: Solver of the registered measure: exact (the sample is at most a few thousand rows, so the
#: Gram solve is cheap, and the value must not depend on the adaptive solver's tolerance: it is
#: compared across Keras versions and with the organizers' ingestion of exported submissions).
MEASURE_METHOD = "exact"


def data_pvector(ctx, *, center: bool = False, method: str = MEASURE_METHOD) -> np.ndarray:
    """The task's data P-vector, computed once per task (cached in ``ctx.task_cache``)."""
    from gen_measures.context import require_samples

    require_samples(ctx, "the data P-vector")
    return ctx.task_memo(
        ("data_pvector", center, method, ctx.seed, ctx.x.shape),
        lambda: pvector(ctx.x.reshape(ctx.n_samples, -1), center=center, method=method, seed=ctx.seed),
    )


#: Subspace sizes of the ``topk_angles`` detail of :func:`pvector_angle`.
TOPK = 5


def topk_angles_deg(ctx, k_max: int = TOPK) -> list[float]:
    """For ``k = 1..k_max``: the largest principal angle (degrees) between the top-``k`` left
    singular subspaces of the penultimate features and of the data (exact solver; the data's
    vectors are computed once per task). Stops early at the smaller rank bound ``min(n, d)``."""
    feats = ctx.penultimate_features().reshape(ctx.n_samples, -1)
    x = ctx.x.reshape(ctx.n_samples, -1)
    k_max = min(k_max, *x.shape, *feats.shape)
    ux = ctx.task_memo(("data_topk", k_max, ctx.seed, ctx.x.shape),
                       lambda: top_left_singular_vectors(x, k_max, method="exact"))
    uf = top_left_singular_vectors(feats, k_max, method="exact")
    return [float(np.max(subspace_angles_deg(ux[:, :k], uf[:, :k]))) for k in range(1, k_max + 1)]


@register_measure("pvector_angle", direction=LARGER_GAP, needs=("data",), reference=REFERENCE)
def pvector_angle(ctx) -> MeasureResult:
    """Angle (degrees) between the model P-vector (penultimate features) and the data P-vector.

    ``details["topk_angles"]``: :func:`topk_angles_deg`, the same comparison for the top-``k``
    singular subspaces, ``k = 1..5`` (its first entry is this angle). Both use the exact solver
    (:data:`MEASURE_METHOD`).
    """
    pf = pvector(ctx.penultimate_features(), method=MEASURE_METHOD, seed=ctx.seed)
    return MeasureResult(angle_between(data_pvector(ctx), pf), {"topk_angles": topk_angles_deg(ctx)})
