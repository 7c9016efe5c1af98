"""Boxes, padded crops and pasting back (seed 003's organ crops)."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data.crop import (
    bounding_box,
    clip_box,
    crop,
    pad_box,
    paste,
    random_margin,
    scale_box,
)


def test_bounding_box_by_hand() -> None:
    mask = np.zeros((6, 7, 8), np.uint8)
    mask[1, 2, 3] = 1
    mask[4, 5, 3] = 1
    assert bounding_box(mask) == ((1, 5), (2, 6), (3, 4))
    assert bounding_box(np.zeros((2, 2, 2))) is None


def test_padded_crop_fills_outside_with_zeros_like_the_seed() -> None:
    x = np.arange(4 * 5 * 6, dtype=np.float32).reshape(1, 4, 5, 6) + 1
    box = pad_box(((0, 2), (1, 3), (4, 6)), 2)
    assert box == ((-2, 4), (-1, 5), (2, 8))
    patch = crop(x, box)
    assert patch.shape == (1, 6, 6, 6)
    assert np.all(patch[:, :2] == 0) and np.all(patch[:, :, :1] == 0) and np.all(patch[..., 4:] == 0)
    assert np.array_equal(patch[0, 2:6, 1:6, 0:4], x[0, 0:4, 0:5, 2:6])


def test_paste_is_the_exact_inverse_of_crop() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 10, 11)).astype(np.float32)
    for box in (((2, 5), (3, 9), (0, 4)), ((-3, 4), (6, 14), (-1, 12))):
        back = paste(crop(x, box), box, x.shape[1:])
        inside = tuple(slice(lo, hi) for lo, hi in clip_box(box, x.shape[1:]))
        assert np.array_equal(back[(..., *inside)], x[(..., *inside)])
        outside = np.ones(x.shape[1:], bool)
        outside[inside] = False
        assert np.all(back[:, outside] == 0)
    c = rng.normal(size=(1, 3, 6, 4)).astype(np.float32)
    box = ((2, 5), (3, 9), (0, 4))
    assert np.array_equal(crop(paste(c, box, (9, 10, 11)), box), c)
    with pytest.raises(ValueError, match="does not fit"):
        paste(c, ((0, 1), (0, 1), (0, 1)), (9, 10, 11))


def test_scale_box_maps_low_to_full_resolution_outward() -> None:
    assert scale_box(((1, 3), (2, 4), (0, 5)), (10, 20, 20), (30, 40, 40)) == ((3, 9), (4, 8), (0, 10))
    assert scale_box(((1, 2), (0, 1), (0, 1)), (3, 3, 3), (10, 10, 10)) == ((3, 7), (0, 4), (0, 4))


def test_random_margin_stays_in_range_and_is_seeded() -> None:
    a = random_margin(np.random.default_rng(1), 5, 25)
    assert a == random_margin(np.random.default_rng(1), 5, 25)
    assert all(5 <= v <= 25 for side in a for v in side)
    assert pad_box(((10, 20), (10, 20), (10, 20)), a)[0] == (10 - a[0][0], 20 + a[0][1])
