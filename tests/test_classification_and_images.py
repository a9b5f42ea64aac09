"""The shared read-outs (accuracy, softmax, class count) and image primitives against independent references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from gen_measures.errors import DataError, DegenerateInputWarning
from gen_measures.numerics import images
from gen_measures.numerics.classification import accuracy, label_class_count, softmax


def test_accuracy_against_a_loop_and_its_nan_policy():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(50, 4)), rng.integers(0, 4, 50)
    expected = sum(int(max(range(4), key=lambda k: scores[i, k]) == labels[i]) for i in range(50)) / 50
    assert accuracy(scores, labels) == expected
    assert accuracy(softmax(scores), labels) == expected  # probabilities: same arg-max
    bad = scores.copy()
    bad[3, 1] = np.inf
    with pytest.warns(DegenerateInputWarning, match="NaN or inf"):
        assert math.isnan(accuracy(bad, labels))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(accuracy(bad, labels, warn=False))
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(accuracy(np.zeros((0, 3)), np.zeros(0)))
    with pytest.raises(DataError, match="rows"):
        accuracy(scores, labels[:-1])
    with pytest.raises(DataError, match="2-D"):
        accuracy(scores[:, 0], labels)


def test_softmax_is_the_closed_form_and_stable():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(softmax(z)[0], e / e.sum(), rtol=1e-15)
    np.testing.assert_allclose(softmax(z)[1], [0.5, 0.5, 0.0], atol=1e-300)
    assert softmax(np.float32([[1, 2]])).dtype == np.float64


def test_label_class_count():
    assert label_class_count(np.array([0, 2, 1]), np.array([4])) == 5
    assert label_class_count(np.zeros(0, int)) == 0
    assert label_class_count(np.array([3]), np.zeros(0, int)) == 4


def _bilinear_loop(img, box, out_h, out_w):
    """Direct per-pixel bilinear sampling of one image (tf.image.crop_and_resize's definition)."""
    h, w, c = img.shape
    y1, x1, y2, x2 = box
    out = np.zeros((out_h, out_w, c))
    for r in range(out_h):
        y = y1 * (h - 1) + r * (y2 - y1) * (h - 1) / (out_h - 1)
        y = min(max(y, 0.0), h - 1)
        for q in range(out_w):
            x = x1 * (w - 1) + q * (x2 - x1) * (w - 1) / (out_w - 1)
            x = min(max(x, 0.0), w - 1)
            r0, c0 = math.floor(y), math.floor(x)
            r1, c1 = math.ceil(y), math.ceil(x)
            fy, fx = y - r0, x - c0
            out[r, q] = ((1 - fy) * ((1 - fx) * img[r0, c0] + fx * img[r0, c1])
                         + fy * ((1 - fx) * img[r1, c0] + fx * img[r1, c1]))
    return out


def test_crop_and_resize_against_a_loop_and_identity():
    rng = np.random.default_rng(1)
    x = rng.random((3, 7, 9, 2))
    boxes = np.array([[0.1, 0.2, 0.9, 0.7], [0.0, 0.0, 1.0, 1.0], [0.25, 0.05, 0.95, 0.85]])
    got = images.crop_and_resize(x, boxes, (5, 6))
    for i in range(3):
        np.testing.assert_allclose(got[i], _bilinear_loop(x[i], boxes[i], 5, 6), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(images.crop_and_resize(x, np.tile([0.0, 0.0, 1.0, 1.0], (3, 1))), x)
    assert images.crop_and_resize(x.astype(np.float32), boxes).dtype == np.float32
    with pytest.raises(DataError, match="boxes"):
        images.crop_and_resize(x, boxes[:2])


def test_crop_and_resize_is_bit_identical_to_tf_image():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(2)
    x = rng.random((8, 9, 11, 3)).astype(np.float32)
    s = rng.uniform(0.8, 0.98, 8)  # boxes inside the image, where TensorFlow never extrapolates
    lo = 0.01 + rng.uniform(0, 1, 8) * (0.98 - s)
    boxes = np.stack([lo, lo[::-1], lo + s, lo[::-1] + s], axis=1).astype(np.float32)
    boxes[0] = [0.0, 0.0, 1.0, 1.0]
    ref = tf.image.crop_and_resize(x, boxes, tf.range(8), (9, 11)).numpy()
    np.testing.assert_array_equal(images.crop_and_resize(x, boxes), ref)


def test_flip_brightness_contrast_against_direct_formulas():
    rng = np.random.default_rng(3)
    x = rng.random((4, 5, 6, 3)).astype(np.float32)
    mask = np.array([True, False, True, False])
    flipped = images.flip_left_right(x, mask)
    for i in range(4):
        np.testing.assert_array_equal(flipped[i], np.fliplr(x[i]) if mask[i] else x[i])
    np.testing.assert_array_equal(images.flip_left_right(x), x[:, :, ::-1])
    delta = np.array([0.1, -0.2, 0.0, 0.3])
    out = images.adjust_brightness(x, delta)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x + delta.astype(np.float32)[:, None, None, None])
    f = np.array([0.5, 1.0, 1.5, 2.0])
    per_channel = images.adjust_contrast(x, f)
    whole = images.adjust_contrast(x, f, per_channel=False)
    for i in range(4):
        m = x[i].astype(np.float64).mean(axis=(0, 1))
        np.testing.assert_allclose(per_channel[i], (x[i] - m) * f[i] + m, atol=1e-6)
        m = x[i].astype(np.float64).mean()
        np.testing.assert_allclose(whole[i], (x[i] - m) * f[i] + m, atol=1e-6)
    np.testing.assert_allclose(per_channel.mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-6)  # means kept
    with pytest.raises(DataError, match="one per image"):
        images.adjust_brightness(x, delta[:3])
