"""Classification read-outs of model outputs: accuracy, softmax and the number of label classes.

The one definition of each, used by the model context, the core measures, the baselines and
the zoo generator. Pure numpy/scipy.

* :func:`accuracy` -- top-1 accuracy of logits or probabilities against integer labels; NaN
  (with a :class:`~gen_measures.errors.DegenerateInputWarning`) when an output is NaN or
  infinite or there is no example.
* :func:`softmax` -- numerically stable softmax (``scipy.special.softmax``, float64).
* :func:`label_class_count` -- how many classes integer labels span (``max label + 1``). This
  is a property of a *dataset*; the number of classes a *model* predicts is its output width
  (:attr:`gen_measures.context.ModelContext.n_classes`). The two agree on a well-formed task
  but are not the same quantity: a sample may lack the last classes, and a model may have more
  outputs than the data have labels.
"""

from __future__ import annotations

import numpy as np

from gen_measures.errors import DataError
from gen_measures.numerics._check import warn_degenerate

__all__ = ["accuracy", "label_class_count", "softmax"]


def accuracy(scores: np.ndarray, labels: np.ndarray, *, warn: bool = True) -> float:
    """Top-1 accuracy: the fraction of rows of ``scores`` whose arg-max is the row's label.

    Parameters
    ----------
    scores : ``(n, K)`` logits or class probabilities (any monotone map of the logits gives the
        same value; ties go to the lowest class index, as ``numpy.argmax``).
    labels : ``(n,)`` integer labels.
    warn : issue a :class:`~gen_measures.errors.DegenerateInputWarning` with the NaN (default).
        Searches that probe diverging weights on purpose, where a non-finite output is an
        expected outcome, pass ``False``.

    Returns
    -------
    float
        In ``[0, 1]``; NaN when any score is NaN or infinite (an arg-max of such outputs is
        meaningless) or when ``n == 0``.

    Raises
    ------
    DataError
        ``scores`` is not 2-D or ``labels`` does not have one entry per row.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels).reshape(-1)
    if scores.ndim != 2:
        raise DataError(f"accuracy: scores must be 2-D (examples x classes), got shape {scores.shape}")
    if labels.shape[0] != scores.shape[0]:
        raise DataError(f"accuracy: scores have {scores.shape[0]} rows but labels has {labels.shape[0]} entries")
    if scores.shape[0] == 0:
        if warn:
            warn_degenerate("accuracy of no example is NaN")
        return float("nan")
    if not np.all(np.isfinite(scores)):
        if warn:
            warn_degenerate("the model outputs NaN or inf; accuracy is NaN")
        return float("nan")
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax of ``logits`` along ``axis`` in float64, shifted by the maximum (``scipy.special.softmax``)."""
    from scipy.special import softmax as _softmax

    return _softmax(np.asarray(logits, dtype=np.float64), axis=axis)


def label_class_count(*labels: np.ndarray) -> int:
    """Number of classes integer labels span: ``max label + 1`` over all arrays given (0 when all are empty).

    A dataset's class count (e.g. the output width the zoo generator gives its models). For
    the classes a model predicts use its output width,
    :attr:`gen_measures.context.ModelContext.n_classes`.
    """
    present = [np.asarray(y).reshape(-1) for y in labels]
    present = [y for y in present if y.size]
    return int(max(int(y.max()) for y in present)) + 1 if present else 0
