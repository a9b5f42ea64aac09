"""Image augmentation primitives on numpy batches ``(N, H, W, C)``: the one implementation.

Used by the core ``pseudo_validation`` measure (float64, its own random recipe) and by the
baselines' augmentations (float32, :mod:`baselines.tf_ops`). Every function is deterministic
(the caller draws the random parameters), keeps the dtype of its input and follows the
``tf.image`` operation of the same name, so the baselines reproduce the originals' values:

* :func:`flip_left_right` -- horizontal flip, of every image or of the images selected by a
  mask (exact, as ``tf.image.flip_left_right``);
* :func:`adjust_brightness` -- ``x + delta`` per image (exact, as ``tf.image.adjust_brightness``
  on float images);
* :func:`adjust_contrast` -- ``(x - m) * factor + m`` per image, ``m`` the mean per channel (as
  ``tf.image.adjust_contrast``) or over all channels;
* :func:`crop_and_resize` -- bilinear resampling of one box per image back to a given size
  (``tf.image.crop_and_resize``'s sampling grid and interpolation).

Operations whose two users differ in meaning are not shared: the core measure rotates hue and
scales saturation in YIQ space (numpy, in the measure), the baselines use the HSV operations of
``tf.image`` (``adjust_hue`` / ``adjust_saturation``), Sobel edges and
``central_crop`` + ``resize_with_pad``, as their originals did (:mod:`baselines.tf_ops`).
"""

from __future__ import annotations

import numpy as np

from gen_measures.errors import DataError

__all__ = ["adjust_brightness", "adjust_contrast", "crop_and_resize", "flip_left_right"]


def _images(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise DataError(f"{what} needs a batch of images (N, H, W, C), got shape {x.shape}")
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return x


def _per_image(value, x: np.ndarray, what: str) -> np.ndarray:
    """A scalar or one value per image, shaped ``(N, 1, 1, 1)`` (or ``()``) in ``x``'s dtype."""
    v = np.asarray(value, dtype=x.dtype)
    if v.ndim == 0:
        return v
    v = v.reshape(-1)
    if v.shape[0] != x.shape[0]:
        raise DataError(f"{what}: {v.shape[0]} values for {x.shape[0]} images; give one per image or a scalar")
    return v.reshape(-1, 1, 1, 1)


def flip_left_right(x: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Images mirrored horizontally (the width axis reversed): all of them, or those where the mask ``where`` is true."""
    x = _images(x, "flip_left_right")
    if where is None:
        return x[:, :, ::-1, :].copy()
    mask = np.asarray(where, dtype=bool).reshape(-1)
    if mask.shape[0] != x.shape[0]:
        raise DataError(f"flip_left_right: mask of {mask.shape[0]} entries for {x.shape[0]} images")
    out = x.copy()
    out[mask] = x[mask, :, ::-1, :]
    return out


def adjust_brightness(x: np.ndarray, delta) -> np.ndarray:
    """``x + delta``, ``delta`` a scalar or one value per image (cast to ``x``'s dtype first)."""
    x = _images(x, "adjust_brightness")
    return x + _per_image(delta, x, "adjust_brightness")


def adjust_contrast(x: np.ndarray, factor, *, per_channel: bool = True) -> np.ndarray:
    """``(x - m) * factor + m`` per image, ``factor`` a scalar or one value per image.

    ``m`` is the image's mean per channel (``per_channel=True``, ``tf.image.adjust_contrast``)
    or over all its pixels and channels (``per_channel=False``).
    """
    x = _images(x, "adjust_contrast")
    mean = x.mean(axis=(1, 2) if per_channel else (1, 2, 3), keepdims=True)
    return (x - mean) * _per_image(factor, x, "adjust_contrast") + mean


def crop_and_resize(x: np.ndarray, boxes: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Bilinear crop-and-resize of box ``boxes[i] = (y1, x1, y2, x2)`` of image ``i`` to ``size`` (default: ``(H, W)``).

    Box corners are relative, ``0`` the first and ``1`` the last pixel centre, as in
    ``tf.image.crop_and_resize``: output row ``r`` of ``h`` samples input row
    ``y1 (H - 1) + r (y2 - y1)(H - 1) / (h - 1)`` (columns alike) and the value is interpolated
    as ``top = tl + (tr - tl) dx``, ``bottom = bl + (br - bl) dx``, ``top + (bottom - top) dy``,
    in ``x``'s dtype. Sample positions outside the image are clamped to its border (TensorFlow
    writes ``extrapolation_value`` there instead); boxes inside ``[0, 1]`` never need it. The
    box ``(0, 0, 1, 1)`` returns the image unchanged.
    """
    x = _images(x, "crop_and_resize")
    n, height, width, _ = x.shape
    b = np.asarray(boxes, dtype=x.dtype)
    if b.shape != (n, 4):
        raise DataError(f"crop_and_resize: boxes must have shape ({n}, 4), got {b.shape}")
    out_h, out_w = (height, width) if size is None else (int(size[0]), int(size[1]))

    def grid(lo, hi, n_in, n_out):
        """Sample positions ``(n, n_out)`` along one axis and their floor/ceil indices and weights."""
        lo, hi = lo[:, None], hi[:, None]
        if n_out > 1:
            step = (hi - lo) * x.dtype.type(n_in - 1) / x.dtype.type(n_out - 1)
            pos = lo * x.dtype.type(n_in - 1) + np.arange(n_out, dtype=x.dtype)[None, :] * step
        else:
            pos = x.dtype.type(0.5) * (lo + hi) * x.dtype.type(n_in - 1)
        pos = np.clip(pos, 0, n_in - 1).astype(x.dtype, copy=False)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.ceil(pos).astype(np.int64)
        return i0, i1, (pos - i0).astype(x.dtype, copy=False)

    r0, r1, dy = grid(b[:, 0], b[:, 2], height, out_h)
    c0, c1, dx = grid(b[:, 1], b[:, 3], width, out_w)
    idx = np.arange(n)[:, None, None]

    def at(r, c):
        return x[idx, r[:, :, None], c[:, None, :]]

    dx, dy = dx[:, None, :, None], dy[:, :, None, None]
    top_left, top_right = at(r0, c0), at(r0, c1)
    bottom_left, bottom_right = at(r1, c0), at(r1, c1)
    top = top_left + (top_right - top_left) * dx
    bottom = bottom_left + (bottom_right - bottom_left) * dx
    return top + (bottom - top) * dy
