"""Pseudo-validation accuracy: accuracy on randomly augmented training samples.

A model that generalizes keeps its training accuracy under mild, label-preserving
perturbations of its training inputs; the drop is a test-set-free stand-in for the gap.
The augmentations are drawn once per task (seeded) and shared by every model of the task,
so all models are judged on the same perturbed inputs.

Augmentations, chosen from the input shape (:func:`augment`):

* images ``(H, W, C)`` (C = 1 or 3): brightness shift (+-10 % of the sample's value range),
  contrast scaling (0.7-1.3 around each image's mean), random crop of 80-100 % of each side
  resized back bilinearly; for RGB also horizontal flip (p = 0.5), saturation (0.6-1.4) and a
  hue rotation (+-0.05 turn, in YIQ space). Values are clipped to the sample's range.
  Flip, brightness, contrast and crop-and-resize are the shared primitives of
  :mod:`gen_measures.numerics.images` (in float64); hue and saturation stay here: the
  baselines' are ``tf.image``'s HSV operations, a different transform (``baselines.tf_ops``).
* vectors ``(D,)`` and anything else: Gaussian jitter (0.1 x each feature's standard deviation)
  and feature dropout (p = 0.1).

References
----------
Seed paper ("Empirical studies on the convergence of feature spaces"): pseudo-validation
accuracy fused with the P-vector angle. Augmentation list after Natekar & Sharma (2020),
"Representation based complexity measures for predicting generalization in deep learning",
arXiv:2012.02775.
"""

from __future__ import annotations

import numpy as np

from gen_measures.numerics.classification import accuracy
from gen_measures.numerics.images import adjust_brightness, adjust_contrast, crop_and_resize, flip_left_right
from gen_measures.registry import LARGER_GAP, register_measure

_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INV = np.linalg.inv(_YIQ)


def _random_crop_resize(images: np.ndarray, rng: np.random.Generator, min_scale: float = 0.8) -> np.ndarray:
    """Crop a random window of ``min_scale``-1 of each side per image and resize it back (bilinear).

    The window of relative side ``s ~ U(min_scale, 1)`` starts at ``u (1 - s)``, ``u ~ U(0, 1)``
    (rows, then columns); resampled by :func:`gen_measures.numerics.images.crop_and_resize`.
    """
    n = images.shape[0]
    scale = rng.uniform(min_scale, 1.0, size=n)
    top = rng.uniform(0, 1, size=n) * (1 - scale)
    left = rng.uniform(0, 1, size=n) * (1 - scale)
    return crop_and_resize(images, np.stack([top, left, top + scale, left + scale], axis=1))


def augment_images(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomly augmented copies of images ``x`` (N, H, W, C); see the module docstring."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo if hi > lo else 1.0
    out = x
    if x.shape[-1] == 3:
        out = flip_left_right(out, rng.random(n) < 0.5)
        yiq = out @ _YIQ.T
        angle = rng.uniform(-0.05, 0.05, size=n) * 2 * np.pi
        sat = rng.uniform(0.6, 1.4, size=n)
        cos, sin = (np.cos(angle) * sat)[:, None, None], (np.sin(angle) * sat)[:, None, None]
        i, q = yiq[..., 1].copy(), yiq[..., 2].copy()
        yiq[..., 1], yiq[..., 2] = i * cos - q * sin, i * sin + q * cos
        out = yiq @ _YIQ_INV.T
    out = adjust_brightness(out, rng.uniform(-0.1, 0.1, size=n) * span)
    out = adjust_contrast(out, rng.uniform(0.7, 1.3, size=n), per_channel=False)
    out = _random_crop_resize(out, rng)
    return np.clip(out, lo, hi).astype(np.float32)


def augment_vectors(x: np.ndarray, rng: np.random.Generator, jitter: float = 0.1, dropout: float = 0.1) -> np.ndarray:
    """Gaussian jitter (``jitter`` x per-feature std) and feature dropout (probability ``dropout``)."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1)
    std = flat.std(axis=0, keepdims=True)
    noisy = flat + rng.normal(size=flat.shape) * jitter * std
    noisy[rng.random(flat.shape) < dropout] = 0.0
    return noisy.reshape(x.shape).astype(np.float32)


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Augment by input shape: images (N, H, W, 1|3) with :func:`augment_images`, others with :func:`augment_vectors`."""
    if x.ndim == 4 and x.shape[-1] in (1, 3) and min(x.shape[1:3]) >= 4:
        return augment_images(x, rng)
    return augment_vectors(x, rng)


def _augmented_accuracy(ctx) -> tuple[float, float]:
    """(clean accuracy, augmented accuracy) on the task sample; augmentations shared per task."""
    from gen_measures.context import require_samples

    require_samples(ctx, "pseudo-validation")
    x_aug = ctx.task_memo(("pseudo_validation_inputs", ctx.seed, ctx.x.shape), lambda: augment(ctx.x, ctx.rng("pseudo_validation")))
    return accuracy(ctx.logits(), ctx.y), accuracy(ctx.predict(x_aug), ctx.y)


@register_measure(
    "pseudo_validation_gap",
    direction=LARGER_GAP,
    needs=("data",),
    reference="Seed paper: 'Empirical studies on the convergence of feature spaces' (pseudo-validation accuracy); augmentations after Natekar & Sharma 2020, arXiv:2012.02775",
)
def pseudo_validation_gap(ctx) -> float:
    """Training-sample accuracy minus accuracy on augmented copies of the same samples."""
    clean, augmented = _augmented_accuracy(ctx)
    return clean - augmented


@register_measure(
    "pseudo_validation_error",
    direction=LARGER_GAP,
    needs=("data",),
    reference="Seed paper: 'Empirical studies on the convergence of feature spaces' (pseudo-validation accuracy); augmentations after Natekar & Sharma 2020, arXiv:2012.02775",
)
def pseudo_validation_error(ctx) -> float:
    """One minus the accuracy on augmented copies of the training sample."""
    return 1.0 - _augmented_accuracy(ctx)[1]
