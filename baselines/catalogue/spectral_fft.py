"""Exact convolution spectral norms (Sedghi, Gupta & Long 2019) and the ``*_fft`` catalogue measures.

The singular values of a 2-D *circular* convolution with kernel ``K`` (``kh x kw``, ``cin -> cout``)
on an ``n1 x n2`` input are the singular values of the ``n1 n2`` matrices ``F[p, q]`` (``cin x cout``)
of the 2-D discrete Fourier transform of ``K`` over its spatial axes at the input size
(Sedghi et al. 2019, Theorem 6); its spectral norm is the largest of them. Computed here in
float64 with numpy (``rfft2``: a real kernel's transform at ``(p, q)`` and ``(-p, -q)`` are
conjugate, so half of the frequencies suffice), full SVD of every frequency's matrix.

Choices:

* **Input size**: each convolution's own input size, read from the model (the sample zoo's
  3x3 convolutions act on 8x8, 4x4, 16x16 and 8x8 maps). The reference uses the image size
  for every layer (``input_shape = dataset_type.D[1:]``), which is the operator of the first
  layer only.
* **Kernels larger than the input** (a 3x3 kernel on a 2x2 or 1x1 map in a deep network): the
  taps are wrapped modulo the input size before the transform, which is what a circular
  convolution does; numpy's ``fft2(K, s)`` with ``s`` smaller than the kernel would crop it
  instead. The reference never meets the case (image-sized transforms). Dilated kernels place
  their taps ``dilation`` apart.
* **Strides and zero padding** are not modelled (the theorem is for stride-1 circular
  convolutions), as in the reference, whose NiN uses stride-2 convolutions. A stride-``s``
  convolution is the stride-1 one followed by subsampling, so its norm is at most the value used.
* **Dense layers** use the plain spectral norm of their matrix.

The measures are those of :mod:`baselines.catalogue.norms` with ``||W_l||_2`` replaced by this
norm (the reference's ``*_FFT`` complexity types; Frobenius norms, the margin and the size
adjustment unchanged): ``log_prod_of_spec_fft``, ``log_prod_of_spec_over_margin_fft``,
``log_sum_of_spec_fft``, ``log_sum_of_spec_over_margin_fft``, ``fro_over_spec_fft``,
``log_spec_orig_main_fft``, ``log_spec_init_main_fft``, ``dist_spec_init_fft``.

References
----------
Sedghi, H., Gupta, V. & Long, P. M. (2019). "The singular values of convolutional layers."
ICLR; arXiv:1805.10408 (https://github.com/brain-research/conv-sv).
Dziugaite, G. K. et al. (2020). "In search of robust measures of generalization." NeurIPS;
arXiv:2010.11924; https://github.com/nitarshan/robust-generalization-measures
(``data/generation/measures.py``, ``_spectral_norm_fft``).
Jiang, Y. et al. (2020). "Fantastic generalization measures and where to find them." ICLR;
arXiv:1912.02178.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from baselines.catalogue.norms import (
    DATA,
    INIT,
    SPEC,
    LayerNorms,
    layer_norms,
    product_measure,
    spec_ratio_measure,
    spectral_norm,
    sum_measure,
)
from baselines.catalogue.prepare import folded_network
from gen_measures.registry import MeasureResult, register_measure

FFT = {**SPEC, "reference": SPEC["reference"] + "; Sedghi, Gupta & Long 2019, 'The singular values of "
                                               "convolutional layers', ICLR, arXiv:1805.10408"}


def wrapped_kernel(kernel: np.ndarray, input_hw: Sequence[int], dilation: Sequence[int] = (1, 1)) -> np.ndarray:
    """The kernel's taps placed on the ``n1 x n2`` torus (offsets ``dilation`` apart, modulo the size), float64."""
    k = np.asarray(kernel, dtype=np.float64)
    n1, n2 = (int(v) for v in input_hw)
    out = np.zeros((n1, n2) + k.shape[2:])
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            out[(a * int(dilation[0])) % n1, (b * int(dilation[1])) % n2] += k[a, b]
    return out


def conv_singular_values(kernel: np.ndarray, input_hw: Sequence[int], dilation: Sequence[int] = (1, 1)) -> np.ndarray:
    """Singular values of the circular convolution of ``kernel`` (``(kh, kw, cin, cout)``) on ``input_hw``.

    Shape ``(n1, n2 // 2 + 1, min(cin, cout))``: per frequency of the half-spectrum (the other
    half repeats them), descending.
    """
    transform = np.fft.rfft2(wrapped_kernel(kernel, input_hw, dilation), axes=(0, 1))
    return np.linalg.svd(transform, compute_uv=False)


def conv_spectral_norm(kernel: np.ndarray, input_hw: Sequence[int], dilation: Sequence[int] = (1, 1)) -> float:
    """Spectral norm of the circular convolution of ``kernel`` on an input of spatial size ``input_hw``."""
    return float(conv_singular_values(kernel, input_hw, dilation).max())


def fft_spectra(ctx, *, distance: bool = False) -> np.ndarray:
    """Per folded kernel (or kernel minus initial kernel), the squared exact spectral norm; once per context."""
    def compute() -> np.ndarray:
        layers = folded_network(ctx).kernel_layers
        kernels = [f.kernel for f in layers]
        if distance:
            kernels = [k - f0.kernel for k, f0 in zip(kernels, folded_network(ctx, initial=True).kernel_layers)]
        return np.array([conv_spectral_norm(k, f.input_shape[:2], f.dilation) ** 2 if f.kind == "conv"
                         else spectral_norm(k) ** 2 for k, f in zip(kernels, layers)])

    return ctx.memo(("catalogue", "fft_spectra", distance), compute)


def _norms(ctx) -> tuple[LayerNorms, np.ndarray]:
    return layer_norms(ctx), fft_spectra(ctx)


@register_measure("log_prod_of_spec_fft", needs=DATA, **FFT)
def log_prod_of_spec_fft(ctx) -> MeasureResult:
    """sum_l log ||W_l||_2^2 with exact convolution spectral norms (eq. 32), reported 0.5 (v - log m)."""
    n, spec2 = _norms(ctx)
    return product_measure(ctx, n, spec2, over_margin=False, balanced=False, what="log_prod_of_spec_fft")


@register_measure("log_prod_of_spec_over_margin_fft", needs=DATA, **FFT)
def log_prod_of_spec_over_margin_fft(ctx) -> MeasureResult:
    """sum_l log ||W_l||_2^2 - 2 log gamma, exact convolution spectral norms (eq. 31), reported 0.5 (v - log m)."""
    n, spec2 = _norms(ctx)
    return product_measure(ctx, n, spec2, over_margin=True, balanced=False, what="log_prod_of_spec_over_margin_fft")


@register_measure("log_sum_of_spec_fft", needs=DATA, **FFT)
def log_sum_of_spec_fft(ctx) -> MeasureResult:
    """log d + (1/d) sum_l log ||W_l||_2^2, exact convolution spectral norms (eq. 35), reported 0.5 (v - log m)."""
    n, spec2 = _norms(ctx)
    return product_measure(ctx, n, spec2, over_margin=False, balanced=True, what="log_sum_of_spec_fft")


@register_measure("log_sum_of_spec_over_margin_fft", needs=DATA, **FFT)
def log_sum_of_spec_over_margin_fft(ctx) -> MeasureResult:
    """log d + (1/d) (sum_l log ||W_l||_2^2 - 2 log gamma), exact conv spectral norms (eq. 34), 0.5 (v - log m)."""
    n, spec2 = _norms(ctx)
    return product_measure(ctx, n, spec2, over_margin=True, balanced=True, what="log_sum_of_spec_over_margin_fft")


@register_measure("fro_over_spec_fft", needs=DATA, **FFT)
def fro_over_spec_fft(ctx) -> MeasureResult:
    """sum_l ||W_l||_F^2 / ||W_l||_2^2, exact convolution spectral norms (eq. 33), reported sqrt(v / m)."""
    n, spec2 = _norms(ctx)
    return spec_ratio_measure(ctx, n, spec2, n.fro2, main=False, what="fro_over_spec_fft")


@register_measure("log_spec_orig_main_fft", needs=DATA, **FFT)
def log_spec_orig_main_fft(ctx) -> MeasureResult:
    """log(prod ||W_l||_2^2 / gamma^2 * sum ||W_l||_F^2 / ||W_l||_2^2), exact conv norms (eq. 30), 0.5 (v - log m)."""
    n, spec2 = _norms(ctx)
    return spec_ratio_measure(ctx, n, spec2, n.fro2, main=True, what="log_spec_orig_main_fft")


@register_measure("log_spec_init_main_fft", needs=INIT, **FFT)
def log_spec_init_main_fft(ctx) -> MeasureResult:
    """log(prod ||W_l||_2^2 / gamma^2 * sum ||W_l - W0_l||_F^2 / ||W_l||_2^2), exact conv norms (eq. 29), 0.5 (v - log m)."""
    n, spec2 = _norms(ctx)
    return spec_ratio_measure(ctx, n, spec2, layer_norms(ctx, distance=True).fro2, main=True, what="log_spec_init_main_fft")


@register_measure("dist_spec_init_fft", needs=INIT, **FFT)
def dist_spec_init_fft(ctx) -> MeasureResult:
    """sum_l ||W_l - W0_l||_2^2, exact convolution spectral norms of the differences (eq. 41), reported sqrt(v / m)."""
    return sum_measure(ctx, layer_norms(ctx, distance=True), fft_spectra(ctx, distance=True), what="dist_spec_init_fft")
