"""Post-processing on hand-built arrays: thresholds, largest component, label maps."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.inference import (
    keep_largest_components,
    largest_component,
    threshold,
    to_label_map,
)


def test_threshold_scalar_and_per_class() -> None:
    probs = np.array([0.2, 0.5, 0.7, 0.3, 0.4, 0.9], np.float32).reshape(2, 1, 1, 3)
    np.testing.assert_array_equal(threshold(probs, 0.5).ravel(), [0, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(threshold(probs, [0.6, 0.3]).ravel(), [0, 0, 1, 1, 1, 1])
    assert threshold(probs, 0.5).dtype == np.uint8
    quantised = np.array([[[[127, 128]]]], np.uint8)  # 127/255 < 0.5 <= 128/255
    np.testing.assert_array_equal(threshold(quantised, 0.5).ravel(), [0, 1])
    with pytest.raises(ValueError, match="3 thresholds given for 2 classes"):
        threshold(probs, [0.5, 0.5, 0.5])


def test_largest_component_keeps_bigger_blob() -> None:
    mask = np.zeros((6, 6, 6), bool)
    mask[0:2, 0:2, 0:2] = True  # 8 voxels
    mask[3:6, 3:6, 3:6] = True  # 27 voxels
    out = largest_component(mask)
    assert out.dtype == bool and out.sum() == 27 and out[4, 4, 4] and not out[0, 0, 0]
    assert not largest_component(np.zeros((3, 3, 3), bool)).any()


def test_largest_component_connectivity() -> None:
    mask = np.zeros((5, 5, 5), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = mask[2, 2, 2] = True  # corner-touching diagonal
    mask[4, 4, 0] = mask[4, 4, 1] = True  # a face-connected pair, away from the diagonal
    assert largest_component(mask, connectivity=26).sum() == 3
    assert largest_component(mask, connectivity=6).sum() == 2


def test_keep_largest_components_per_class() -> None:
    masks = np.zeros((2, 1, 1, 7), np.uint8)
    masks[:, 0, 0] = [1, 0, 1, 1, 0, 1, 0]
    out = keep_largest_components(masks, [True, False])
    np.testing.assert_array_equal(out[0, 0, 0], [0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(out[1], masks[1])
    assert out.dtype == np.uint8 and masks[0, 0, 0, 0] == 1  # input untouched


def test_to_label_map() -> None:
    probs = np.array([[0.7, 0.1, 0.2], [0.2, 0.6, 0.3], [0.1, 0.3, 0.5]], np.float32).reshape(3, 1, 1, 3)
    np.testing.assert_array_equal(to_label_map(probs, "softmax").ravel(), [0, 1, 2])
    # sigmoid: implicit background; classes 0..2 become labels 1..3 when their best probability >= 0.5
    np.testing.assert_array_equal(to_label_map(probs, "sigmoid").ravel(), [1, 2, 3])
    np.testing.assert_array_equal(to_label_map(probs, "sigmoid", threshold=0.55).ravel(), [1, 2, 0])
    assert to_label_map(probs, "softmax").dtype == np.uint8
