"""Low-resolution copies keep their place in patient space (seed 003's localisation grid)."""

from __future__ import annotations

import numpy as np

from clinseg.data.resize import (
    lowres_shape,
    resize_image,
    resize_masks,
    resized_geometry,
)
from clinseg.io import Geometry


def _world(geometry: Geometry, index_zyx: np.ndarray) -> np.ndarray:
    """Patient coordinates (x, y, z) of continuous voxel indices (Z, Y, X)."""
    d = np.asarray(geometry.direction).reshape(3, 3)
    return np.asarray(geometry.origin) + d @ (np.asarray(geometry.spacing) * index_zyx[::-1])


def test_lowres_shape_is_a_third_of_the_depth_and_half_the_plane() -> None:
    assert lowres_shape((96, 128, 128)) == (32, 64, 64)
    assert lowres_shape((4, 3, 3)) == (1, 2, 2)


def test_resized_grid_covers_the_same_physical_box() -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    geometry = Geometry((0.8, 0.9, 2.5), (10.0, -20.0, 5.0), (c, -s, 0, s, c, 0, 0, 0, 1), (30, 40, 50))
    low = resized_geometry(geometry, (10, 20, 25))
    assert np.allclose(low.spacing, (1.6, 1.8, 7.5))
    assert low.direction == geometry.direction and low.shape == (10, 20, 25)
    # the outer corner of the first voxel (index -0.5) is the same physical point on both grids
    assert np.allclose(_world(low, np.array([-0.5] * 3)), _world(geometry, np.array([-0.5] * 3)))
    far = np.array(geometry.shape) - 0.5
    assert np.allclose(_world(low, np.array(low.shape) - 0.5), _world(geometry, far))


def test_mask_resizing_is_area_consistent() -> None:
    masks = np.zeros((1, 6, 8, 8), np.uint8)
    masks[0, :3, :4, :4] = 1  # covers exactly 1 x 2 x 2 low-res voxels of 3 x 2 x 2 full-res voxels each
    low = resize_masks(masks, (2, 4, 4))
    assert low.dtype == np.uint8 and low.shape == (1, 2, 4, 4)
    assert low[0, 0, :2, :2].all() and low.sum() == 4
    assert resize_masks(masks, (6, 8, 8)).tolist() == masks.tolist()


def test_image_resizing_is_anti_aliased() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(1, 30, 40, 40)).astype(np.float32)
    low = resize_image(noise, (10, 20, 20))
    plain = resize_image(noise, (10, 20, 20), anti_aliasing=False)
    assert low.shape == (1, 10, 20, 20) and low.dtype == np.float32
    assert low.std() < 0.6 * plain.std()  # high frequencies filtered before subsampling
    ramp = np.broadcast_to(np.arange(40, dtype=np.float32), (1, 30, 40, 40))
    assert np.allclose(resize_image(ramp, (10, 20, 20))[0, 5, 5], np.arange(20) * 2 + 0.5, atol=0.6)
