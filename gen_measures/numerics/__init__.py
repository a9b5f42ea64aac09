"""Numerical core of the representation measures: pure numpy/scipy, never imports TensorFlow.

Every function takes arrays and returns plain floats or float64 arrays; the registered measures
are thin adapters over them. Modules, in data-flow order:

* :mod:`~gen_measures.numerics.singular_vectors` -- top left singular vectors, the P-vector,
  angles between vectors and between subspaces.
* :mod:`~gen_measures.numerics.spectra` -- streaming covariance of layer outputs, its
  eigenvalues, saturation ``k`` and saturation.
* :mod:`~gen_measures.numerics.scatter` -- class-scatter accumulator: within/between-class
  traces, compression and discrimination (Wang et al.).
* :mod:`~gen_measures.numerics.classification` -- accuracy and softmax.
* :mod:`~gen_measures.numerics.images` -- image augmentation primitives on numpy batches.
* :mod:`~gen_measures.numerics.moments` -- the shifted streaming moments (and their exact
  ``merge``) the accumulators share.

Conventions: degenerate-but-defined input returns NaN with a
:class:`~gen_measures.errors.DegenerateInputWarning`; malformed arguments raise
:class:`~gen_measures.errors.DataError` (arrays) or :class:`~gen_measures.errors.MeasureError`
(options), naming the argument (checks in the private ``_check`` module).
"""
