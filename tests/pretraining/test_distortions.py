"""Models-Genesis-style distortions (seed 002 §2.2): hand-checked properties of each distortion."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from clinseg.errors import ConfigError
from clinseg.pretraining import (
    DistortionConfig,
    distort,
    distort_batch,
    in_paint,
    local_pixel_shuffle,
    nonlinear_transform,
    out_paint,
    random_boxes,
    shuffle_windows,
)

IDENTITY = DistortionConfig(nonlinear_rate=0.0, shuffle_rate=0.0, paint_rate=0.0)
ALL = DistortionConfig(nonlinear_rate=1.0, shuffle_rate=1.0, paint_rate=1.0)


@pytest.mark.parametrize("seed", range(8))
def test_bezier_map_is_monotone_onto_unit_interval(seed: int) -> None:
    ramp = np.linspace(0.0, 1.0, 1001)
    up = nonlinear_transform(ramp, np.random.default_rng(seed), flip_rate=0.0)
    down = nonlinear_transform(ramp, np.random.default_rng(seed), flip_rate=1.0)
    assert np.all(np.diff(up) >= 0) and np.all(np.diff(down) <= 0)
    for out in (up, down):
        assert out.min() >= 0.0 and out.max() <= 1.0
    assert up[0] == pytest.approx(0.0, abs=1e-6) and up[-1] == pytest.approx(1.0, abs=1e-6)
    assert down[0] == pytest.approx(1.0, abs=1e-6) and down[-1] == pytest.approx(0.0, abs=1e-6)
    # Values outside [0, 1] are clamped, never mapped outside it.
    wild = nonlinear_transform(np.array([-3.0, 4.0], dtype=np.float32), np.random.default_rng(seed))
    assert wild.dtype == np.float32 and np.all((wild >= 0) & (wild <= 1))


def test_shuffle_keeps_each_windows_values_and_changes_order() -> None:
    rng = np.random.default_rng(0)
    patch = rng.random((13, 17))
    window, offset = (3, 4), (1, 2)
    out = shuffle_windows(patch, window, np.random.default_rng(1), offset=offset)
    # Full tiles: rows 1..12 (4 tiles of 3), columns 2..17 (3 full tiles of 4 up to column 14).
    changed = 0
    for r, c in itertools.product(range(1, 13, 3), range(2, 14, 4)):
        tile_in, tile_out = patch[r:r + 3, c:c + 4], out[r:r + 3, c:c + 4]
        np.testing.assert_array_equal(np.sort(tile_in, axis=None), np.sort(tile_out, axis=None))
        changed += not np.array_equal(tile_in, tile_out)
    assert changed >= 10  # 12 tiles of 12 distinct values: the identity permutation is a 1/12! event
    outside = np.ones(patch.shape, bool)
    outside[1:13, 2:14] = False
    np.testing.assert_array_equal(out[outside], patch[outside])  # partial tiles at the borders are kept


def test_shuffle_tile_rate_zero_and_constant_input_are_identity() -> None:
    patch = np.random.default_rng(0).random((8, 8, 8))
    np.testing.assert_array_equal(shuffle_windows(patch, (2, 2, 2), np.random.default_rng(0), tile_rate=0.0), patch)
    flat = np.full((8, 8, 8), 0.3)
    np.testing.assert_array_equal(local_pixel_shuffle(flat, np.random.default_rng(0), 0.5, 1.0), flat)


def test_shuffle_shares_the_permutation_across_channels_and_keeps_3d_multiset() -> None:
    image = np.random.default_rng(0).random((20, 20, 20)).astype(np.float32)
    stacked = np.stack([image, 2 * image])  # (C=2, Z, Y, X)
    out = shuffle_windows(stacked, (2, 3, 2), np.random.default_rng(5), offset=(1, 0, 1), tile_rate=0.8)
    np.testing.assert_array_equal(out[1], 2 * out[0])
    assert not np.array_equal(out[0], image)
    shuffled = local_pixel_shuffle(image, np.random.default_rng(3), window_fraction=0.3, tile_rate=1.0)
    np.testing.assert_array_equal(np.sort(shuffled, axis=None), np.sort(image, axis=None))
    assert shuffled.dtype == np.float32 and not np.array_equal(shuffled, image)


def test_in_painting_changes_only_voxels_inside_boxes() -> None:
    patch = np.full((10, 12, 14), 5.0, dtype=np.float32)  # outside the noise range [0, 1)
    boxes = [(slice(1, 4), slice(2, 6), slice(3, 5)), (slice(5, 9), slice(0, 3), slice(10, 14))]
    out = in_paint(patch, boxes, np.random.default_rng(0))
    inside = np.zeros(patch.shape, bool)
    for box in boxes:
        inside[box] = True
    assert np.all(out[inside] < 1.0) and np.all(out[inside] >= 0.0)
    np.testing.assert_array_equal(out[~inside], patch[~inside])
    assert out.dtype == np.float32 and np.all(patch == 5.0)  # input untouched


def test_out_painting_keeps_boxes_exactly_and_replaces_outside() -> None:
    patch = np.random.default_rng(1).random((16, 16)) + 2.0  # values in [2, 3): noise can never equal them
    boxes = [(slice(3, 9), slice(4, 10)), (slice(8, 13), slice(1, 6))]
    out = out_paint(patch, boxes, np.random.default_rng(0))
    inside = np.zeros(patch.shape, bool)
    for box in boxes:
        inside[box] = True
        np.testing.assert_array_equal(out[box], patch[box])
    assert np.all(out[~inside] < 1.0) and np.all(out[~inside] >= 0.0)


def test_random_boxes_follow_models_genesis_sizes_and_margins() -> None:
    rng = np.random.default_rng(0)
    shape = (64, 64, 32)
    for _ in range(50):
        boxes = random_boxes(shape, rng, min_fraction=1 / 6, max_fraction=1 / 3, max_boxes=5)
        assert len(boxes) <= 5
        for box in boxes:
            for s, edge in zip(box, shape):
                assert edge // 6 <= s.stop - s.start <= edge // 3  # MG randint(edge//6, edge//3)
                assert s.start >= 3 and s.stop <= edge - 3
        kept = random_boxes(shape, rng, min_fraction=3 / 7, max_fraction=4 / 7, max_boxes=5, at_least_one=True)
        assert 1 <= len(kept) <= 5
    # A patch smaller than the margins still gets boxes inside it.
    for box in random_boxes((4, 5), rng, min_fraction=0.5, max_fraction=1.0, max_boxes=3, continue_rate=1.0):
        assert all(0 <= s.start < s.stop <= e for s, e in zip(box, (4, 5)))


@pytest.mark.parametrize("shape", [(24, 20), (16, 18, 20)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_distort_identity_shapes_dtypes_and_reproducibility(shape: tuple[int, ...], dtype: type) -> None:
    patch = np.random.default_rng(0).random(shape).astype(dtype)
    before = patch.copy()
    same = distort(patch, np.random.default_rng(1), IDENTITY)
    np.testing.assert_array_equal(same, patch)
    assert same is not patch
    a = distort(patch, np.random.default_rng(7), ALL)
    b = distort(patch, np.random.default_rng(7), ALL)
    c = distort(patch, np.random.default_rng(8), ALL)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, patch)
    assert a.shape == shape and a.dtype == dtype
    np.testing.assert_array_equal(patch, before)


def test_distort_batch_shapes_and_independent_samples() -> None:
    batch = np.tile(np.random.default_rng(0).random((1, 1, 12, 16, 16), dtype=np.float32), (3, 2, 1, 1, 1))
    out = distort_batch(batch, np.random.default_rng(0), ALL)
    assert out.shape == batch.shape and out.dtype == np.float32
    assert not np.array_equal(out[0], out[1])  # each sample its own distortion
    # The two (identical) channels of a sample get the same shuffle and the same curve; only the painting
    # noise is drawn per channel.
    no_paint = distort_batch(batch, np.random.default_rng(0), DistortionConfig(1.0, 0.5, 1.0, paint_rate=0.0))
    np.testing.assert_array_equal(no_paint[:, 0], no_paint[:, 1])
    assert not np.array_equal(no_paint, batch)
    np.testing.assert_array_equal(distort_batch(batch, np.random.default_rng(0), IDENTITY), batch)
    assert distort_batch(batch[:, :, 0], np.random.default_rng(0)).shape == (3, 2, 16, 16)


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ConfigError, match="paint_rate"):
        DistortionConfig(paint_rate=1.5)
    with pytest.raises(ConfigError, match="inpaint"):
        DistortionConfig(inpaint_min_fraction=0.5, inpaint_max_fraction=0.2)
    with pytest.raises(TypeError, match="floating"):
        distort(np.zeros((8, 8), dtype=np.int16), np.random.default_rng(0))
    with pytest.raises(ValueError, match="patch must be"):
        distort(np.zeros((2, 8, 8, 8)), np.random.default_rng(0))
