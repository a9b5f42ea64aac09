"""Published measures for side-by-side comparison: the PGDL starting kit's baselines and the
competition winners' measures. Importing this package registers them with ``family="baseline"``
(and ``default=False``: ``gen-measures run`` computes them with ``--measures baselines`` or ``all``).

* ``kit``       vc_dimension, jacobian_norm, distance_from_init, kit_sharpness (starting kit)
* ``natekar``   dbi_mixup, mixup_margin, augment_margin (1st place, Natekar & Sharma 2020)
* ``aithal``    augmentation_robustness (2nd place, Aithal, Kashyap & Subramanyam 2021)
* ``lassance``  vpm, vpm_median (3rd place, Lassance et al. 2020)
* ``spectral``  spectral_alpha (data-free, weightwatcher-style; Martin & Mahoney 2021)
* ``catalogue`` the Jiang et al. 2019 measure catalogue as re-implemented by Dziugaite et al. 2020
  (registered with ``family="catalogue"``; see :mod:`baselines.catalogue`)

The modules never import TensorFlow at import time; their adapters call
:mod:`baselines.tf_ops` for gradients, intermediate layers and ``tf.image`` operations.
"""

from baselines import aithal, catalogue, kit, lassance, natekar, spectral  # noqa: F401  (registers)
