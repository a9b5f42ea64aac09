"""The measure catalogue of Jiang et al. (2019), "Fantastic generalization measures and where to
find them" (appendix C), as re-implemented by Dziugaite et al. (2020) (repository
nitarshan/robust-generalization-measures, ``data/generation/measures.py``).

Importing this package registers its measures with ``family="catalogue"`` and ``default=False``
(``gen-measures run --measures catalogue`` or ``all`` computes them). Modules:

* ``prepare``       shared preparation: BatchNorm folding and the folded twin model, the kernels
                    as matrices, the margin, the dataset-size adjustment (no measures)
* ``norms``         params, inverse_margin, spectral / Frobenius norm products and sums (with and
                    without margin), fro_over_spec, log_spec_{init,orig}_main, distances to
                    initialization, param_norm, l2, l2_dist, path_norm, path_norm_over_margin
* ``spectral_fft``  the ``*_fft`` variants of the spectral measures, with exact convolution
                    spectral norms (Sedghi, Gupta & Long 2019)
* ``flatness``      pacbayes_{init,orig,flatness} and pacbayes_mag_{init,orig,flatness} (the sigma
                    searches are shared with the core pacbayes_sharpness)
* ``curvature``     hessian_top_eigenvalue, hessian_trace
* ``weightwatcher`` ww_alpha_weighted, ww_log_norm, ww_log_spectral_norm, ww_stable_rank, ww_log_alpha_norm

Other catalogue modules register themselves by one import line each, appended below.

References
----------
Jiang, Y., Neyshabur, B., Mobahi, H., Krishnan, D. & Bengio, S. (2020). ICLR; arXiv:1912.02178.
Dziugaite, G. K. et al. (2020). "In search of robust measures of generalization." NeurIPS;
arXiv:2010.11924.
"""

from baselines.catalogue import prepare  # noqa: F401  (shared preparation)
from baselines.catalogue import norms  # noqa: F401  (registers)
from baselines.catalogue import spectral_fft  # noqa: F401  (registers)
from baselines.catalogue import flatness  # noqa: F401  (registers)
from baselines.catalogue import curvature, weightwatcher  # noqa: F401
