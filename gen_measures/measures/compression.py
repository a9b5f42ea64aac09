"""Layer-wise feature compression and discrimination (Wang et al.).

For features ``h_i`` of a layer with labels in K classes: ``mu_G`` global mean, ``mu_k``
class means, ``Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T`` and
``Sigma_B = (1/K) sum_k (mu_k - mu_G)(mu_k - mu_G)^T`` (unweighted over classes).

* Compression ``C = Tr(Sigma_W) / Tr(Sigma_B)``: small when each class collapses to its mean.
  Direction ``LARGER_GAP``.
* Discrimination ``D = 1 - max_{k != k'} cos(mu_k, mu_k')`` of the *uncentred* class means
  (``center=True`` in :func:`layer_curves` centres by ``mu_G``): large when class means point
  apart. Direction ``SMALLER_GAP``.

Only traces are needed, accumulated in float64 batch by batch
(:class:`gen_measures.numerics.scatter.ClassScatterAccumulator`): no d x d matrix is formed. The
registered values use the penultimate features (:data:`gen_measures.context.FEATURE_LAYER_RULE`,
the same features as the P-vector); :func:`layer_curves` gives C and D for the output of every
Dense/Conv layer except the logits (the curves the paper plots against depth).

References
----------
Wang, P., Li, X., Yaras, C., Zhu, Z., Balzano, L., Hu, W. & Qu, Q. (2023). "Understanding deep
representation learning via layerwise feature compression and discrimination",
arXiv:2311.02960; repository Heimine/PNC_DLN.
"""

from __future__ import annotations

from gen_measures.numerics.scatter import ClassScatterAccumulator
from gen_measures.registry import LARGER_GAP, SMALLER_GAP, MeasureResult, register_measure

REFERENCE = (
    "Wang et al. 2023, 'Understanding deep representation learning via layerwise feature compression "
    "and discrimination', arXiv:2311.02960 (github.com/Heimine/PNC_DLN)"
)


def _penultimate_scatter(ctx) -> ClassScatterAccumulator:
    def accumulate() -> ClassScatterAccumulator:
        feats = ctx.penultimate_features()
        return ClassScatterAccumulator(feats.shape[1], ctx.n_classes).update(feats, ctx.y)

    return ctx.memo("penultimate_scatter", accumulate)


def layer_curves(ctx, *, center: bool = False) -> dict[str, dict[str, float]]:
    """``{layer: {"compression": C, "discrimination": D}}`` for every Dense/Conv output except the
    logits, then ``"penultimate"``, in depth order."""
    curves = {}
    for st in ctx.layer_statistics():
        if st.scatter is not None:
            curves[st.name] = {"compression": st.scatter.compression(), "discrimination": st.scatter.discrimination(center=center)}
    acc = _penultimate_scatter(ctx)
    curves["penultimate"] = {"compression": acc.compression(), "discrimination": acc.discrimination(center=center)}
    return curves


def _with_curve(ctx, quantity: str) -> MeasureResult:
    """The penultimate value of ``quantity`` with the layer-wise curve as ``details["per_layer"]``."""
    curves = ctx.memo("layer_curves", lambda: layer_curves(ctx))
    return MeasureResult(curves["penultimate"][quantity], {"per_layer": {k: v[quantity] for k, v in curves.items()}})


@register_measure("compression", direction=LARGER_GAP, needs=("data",), reference=REFERENCE)
def compression(ctx) -> MeasureResult:
    """Tr(within-class scatter) / Tr(between-class scatter) of the penultimate features.

    ``details["per_layer"]``: the same ratio for every Dense/Conv output except the logits, then
    the penultimate features, in depth order (the paper's curve against depth).
    """
    return _with_curve(ctx, "compression")


@register_measure("discrimination", direction=SMALLER_GAP, needs=("data",), reference=REFERENCE)
def discrimination(ctx) -> MeasureResult:
    """1 - the largest cosine between two (uncentred) class means of the penultimate features.

    ``details["per_layer"]``: the same quantity for every Dense/Conv output except the logits,
    then the penultimate features, in depth order.
    """
    return _with_curve(ctx, "discrimination")
