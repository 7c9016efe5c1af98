"""The viewer's display grid (issue 22): every stored direction shown the same way up. Pure functions on
hand-built directions and arrays; patient positions computed with ITK's index-to-point formula."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from clinseg.interactive.viewer.orientation import MARKERS, Orientation
from clinseg.io import Geometry
from tests.interactive._viewer_helpers import restored, world

SHAPE = (3, 4, 5)
GEOM = Geometry(spacing=(0.5, 0.75, 2.0), origin=(10.0, -5.0, 3.0), shape=SHAPE)


def _rotation_z(degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


def test_the_identity_direction_is_shown_as_stored() -> None:
    o = Orientation.from_direction(GEOM.direction)
    assert o == Orientation((0, 1, 2), (False, False, False)) and o.is_identity and o.toward == "LPS"
    volume = np.arange(60).reshape(SHAPE)
    assert o.view(volume) is not volume and np.shares_memory(o.view(volume), volume)  # a view, no copy
    np.testing.assert_array_equal(o.view(volume), volume)
    assert o.display_shape(SHAPE) == SHAPE and o.display_spacing(GEOM.spacing_zyx) == (2.0, 0.75, 0.5)


def test_a_flipped_x_axis_is_mirrored_back() -> None:
    o = Orientation.from_direction((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert o == Orientation((0, 1, 2), (False, False, True)) and o.toward == "RPS" and not o.is_identity
    volume = np.arange(60).reshape(SHAPE)
    np.testing.assert_array_equal(o.view(volume), volume[:, :, ::-1])
    assert o.to_stored((1, 2, 0), SHAPE) == (1, 2, 4) and o.to_display((1, 2, 4), SHAPE) == (1, 2, 0)
    assert o.to_stored((0, 0, 1.5), SHAPE) == (0, 0, 2.5)  # fractional positions (brush) map the same way


def test_a_coronal_acquisition_is_turned_upright() -> None:
    # index x runs to L, index y to I (head to foot), index z to P: columns of the direction matrix
    direction = (1, 0, 0,
                 0, 0, 1,
                 0, -1, 0)
    o = Orientation.from_direction(direction)
    assert o.axes == (1, 0, 2) and o.flips == (True, False, False) and o.toward == "LIP"
    volume = np.arange(60).reshape(SHAPE)  # stored (P, I, L) = (3, 4, 5)
    shown = o.view(volume)
    assert shown.shape == (4, 3, 5) and o.display_shape(SHAPE) == (4, 3, 5)
    assert shown[0, 0, 0] == volume[0, 3, 0]  # the lowest display slice is the stored last row (most inferior)
    assert o.display_spacing(GEOM.spacing_zyx) == (0.75, 2.0, 0.5)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("flips", list(itertools.product((False, True), repeat=3)))
def test_every_stored_layout_of_the_same_patient_shows_the_same_grid(order: tuple[int, int, int],
                                                                     flips: tuple[bool, bool, bool]) -> None:
    volume = np.random.default_rng(1).normal(size=SHAPE)
    stored, geometry = restored(volume, GEOM, order, flips)
    o = Orientation.from_direction(geometry.direction)
    np.testing.assert_array_equal(o.view(stored), volume)  # whatever the layout: the identity's grid
    for point in [(0, 0, 0), (2, 3, 4), (1, 0, 3)]:
        inside = o.to_stored(point, stored.shape)
        assert stored[inside] == volume[point]
        assert o.to_display(inside, stored.shape) == point
        np.testing.assert_allclose(world(geometry, inside), world(GEOM, point))  # the same place in the patient


@pytest.mark.parametrize("degrees", [10.0, -30.0, 44.0])
def test_an_oblique_direction_is_shown_on_the_nearest_grid(degrees: float) -> None:
    direction = _rotation_z(degrees) @ np.diag([-1.0, 1.0, 1.0])  # x flipped, then rotated in the axial plane
    geometry = Geometry(GEOM.spacing, GEOM.origin, tuple(direction.ravel()), SHAPE)
    o = Orientation.from_direction(geometry.direction)
    assert o.axes == (0, 1, 2) and o.flips == (False, False, True)
    for axis, towards in enumerate((2, 1, 0)):  # along display S, P, L the patient coordinate z, y, x grows
        a = np.zeros(3)
        b = np.zeros(3)
        b[axis] = 1
        step = world(geometry, o.to_stored(b, SHAPE)) - world(geometry, o.to_stored(a, SHAPE))
        assert step[towards] > 0 and abs(step[towards]) == max(abs(step))


def test_a_singular_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="not an invertible"):
        Orientation.from_direction((1, 0, 0, 1, 0, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="not an invertible"):
        Orientation.from_direction((float("nan"),) * 9)


def test_markers_are_radiological() -> None:
    assert MARKERS[0] == ("A", "P", "R", "L")  # axial: anterior up, patient right on the screen's left
    assert MARKERS[1] == ("S", "I", "R", "L") and MARKERS[2] == ("S", "I", "A", "P")
