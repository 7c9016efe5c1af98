"""Guidance clicks (seed 002 §2.3): click maps and click simulation on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.interactive import (
    Click,
    click_maps,
    initial_click,
    next_click,
)


def _square_case(fp_edge: int) -> tuple[np.ndarray, np.ndarray]:
    """Target: 9x9 square (rows/cols 2..10). Prediction: misses the 9x3 strip at cols 2..4 (27 voxels,
    innermost point (6, 3)) and adds an ``fp_edge`` square false positive centred at (15, 15)."""
    target = np.zeros((20, 20), np.uint8)
    target[2:11, 2:11] = 1
    pred = target.copy()
    pred[2:11, 2:5] = 0
    half = fp_edge // 2
    pred[15 - half:15 + half + 1, 15 - half:15 + half + 1] = 1
    return target, pred


def test_rectangle_is_clicked_at_its_centre_2d_and_3d() -> None:
    target = np.zeros((12, 15), bool)
    target[2:9, 3:14] = True  # 7 x 11: the distance maximum is a ridge along row 5, centred at column 8
    assert initial_click(target) == (5, 8)
    box = np.zeros((7, 10, 12), np.uint8)
    box[1:6, 2:9, 0:9] = 1  # touches the array border at x = 0: the border counts as the object's edge
    assert initial_click(box) == (3, 5, 4)
    assert initial_click(np.zeros((4, 4))) is None


def test_l_shape_innermost_point_by_hand() -> None:
    # A 7x7 square (rows/cols 1..7) with a 3-row arm (rows 5..7) running right to column 14.
    # By hand: (4, 4) is 4 voxels from the background up (row 0), left (col 0), down (row 8) and right
    # (row 4, col 8 is outside the arm); every other voxel is closer to some background voxel. The bounding
    # box centre (4, 7.5) and the centroid (~(4.6, 6.4)) are elsewhere.
    target = np.zeros((10, 16), np.uint8)
    target[1:8, 1:8] = 1
    target[5:8, 8:15] = 1
    assert initial_click(target) == (4, 4)


def test_spacing_changes_the_innermost_component() -> None:
    target = np.zeros((12, 12), np.uint8)
    target[1:6, 1:6] = 1  # 5x5 square: 3 voxels deep; with 0.5 mm columns only 1.5 mm deep
    target[8:11, 1:10] = 1  # 3x9 bar: 2 voxels deep; with 0.5 mm columns 2 mm deep
    assert initial_click(target) == (3, 3)
    assert initial_click(target, spacing=(1.0, 0.5)) == (9, 5)
    with pytest.raises(ValueError, match="spacing"):
        initial_click(target, spacing=(1.0,))


def test_next_click_targets_the_largest_error_region_with_the_right_type() -> None:
    target, pred = _square_case(fp_edge=7)  # false positive 49 voxels > false negative 27
    assert next_click(target, pred) == Click((15, 15), foreground=False)
    target, pred = _square_case(fp_edge=5)  # false positive 25 voxels < false negative 27
    assert next_click(target, pred) == Click((6, 3), foreground=True)
    assert next_click(target, pred, min_size=30) is None
    assert next_click(target, target) is None
    with pytest.raises(ValueError, match="shape"):
        next_click(target, pred[:10])


def test_next_click_3d() -> None:
    target = np.zeros((9, 9, 9), np.uint8)
    target[1:4, 1:4, 1:4] = 1
    pred = np.zeros_like(target)
    pred[4:9, 4:9, 4:9] = 1  # 125 false-positive voxels outweigh the 27 missed ones
    assert next_click(target, pred) == Click((6, 6, 6), False)


def test_click_maps_channels_are_normalised_with_peak_at_the_click() -> None:
    maps = click_maps((15, 17), [(7, 8)], [], sigma=2.0)
    assert maps.shape == (2, 15, 17) and maps.dtype == np.float32
    assert maps[0, 7, 8] == 1.0 and np.unravel_index(maps[0].argmax(), (15, 17)) == (7, 8)
    assert maps[0].min() >= 0.0 and maps[0, 7, 7] == pytest.approx(maps[0, 7, 9])
    assert maps[0, 7, 7] == pytest.approx(np.exp(-1 / 8), rel=1e-3)  # Gaussian of sigma 2 at 1 voxel
    assert not maps[1].any()
    two = click_maps((15, 17), [], [(2, 2), (12, 14)], sigma=1.5)
    assert two[1, 2, 2] == pytest.approx(1.0) and two[1, 12, 14] == pytest.approx(1.0) and two[1].max() == 1.0
    vol = click_maps((9, 10, 11), [(0, 0, 0)], [(4, 5, 5)], sigma=(1.0, 2.0, 2.0))
    assert vol.shape == (2, 9, 10, 11) and vol[0, 0, 0, 0] == 1.0 and vol[1, 4, 5, 5] == 1.0
    with pytest.raises(ValueError, match="outside"):
        click_maps((5, 5), [(5, 0)], [], sigma=1.0)


def test_symmetric_ties_are_broken_by_the_generator() -> None:
    target = np.zeros((10, 10), np.uint8)
    target[2:8, 2:8] = 1  # 6x6: four equally central voxels
    centres = {(4, 4), (4, 5), (5, 4), (5, 5)}
    assert initial_click(target) == (4, 4)  # first in C order without a generator
    picks = [initial_click(target, np.random.default_rng(s)) for s in range(20)]
    assert set(picks) <= centres and len(set(picks)) > 1
    assert picks == [initial_click(target, np.random.default_rng(s)) for s in range(20)]
