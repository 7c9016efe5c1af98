"""The viewer's screen (issue 22): one image stored three ways — as is, with x flipped, as a coronal
acquisition — is drawn pixel for pixel the same, and a pixel maps back to the same place in the patient.
Hand-built arrays, no network."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.errors import ClinsegError
from clinseg.interactive.viewer.display import CT_PRESETS, Window, disc_stroke
from clinseg.interactive.viewer.screen import Screen, compact
from clinseg.io import Geometry
from tests.interactive._viewer_helpers import CORONAL, FLIP_X, restored, world

SHAPE = (3, 4, 5)
GEOM = Geometry(spacing=(0.5, 0.75, 2.0), origin=(10.0, -5.0, 3.0), shape=SHAPE)
LAYOUTS = {"identity": ((0, 1, 2), (False, False, False)), "flip_x": FLIP_X, "coronal": CORONAL}


def _screens() -> dict[str, tuple[Screen, np.ndarray, Geometry]]:
    image = np.arange(60, dtype=np.float32).reshape(SHAPE)
    out = {}
    for name, (order, flips) in LAYOUTS.items():
        array, geometry = restored(image, GEOM, order, flips)
        out[name] = (Screen(array, geometry, ["A", "B"]), array, geometry)
    return out


def test_the_same_patient_stored_three_ways_is_drawn_the_same() -> None:
    screens = _screens()
    reference = screens["identity"][0]
    assert reference.grey(0, 1).shape == (4, 5) and reference.grey(1, 2).shape == (3, 5)
    for name, (screen, array, _) in screens.items():
        assert screen.shape == SHAPE and screen.spacing == (2.0, 0.75, 0.5), name
        for axis in range(3):
            for index in range(SHAPE[axis]):
                np.testing.assert_array_equal(screen.grey(axis, index), reference.grey(axis, index), err_msg=name)
    assert screens["flip_x"][1].shape == SHAPE and screens["coronal"][1].shape == (4, 3, 5)
    assert [s.orientation.toward for s, _, _ in screens.values()] == ["LPS", "RPS", "LIP"]


def test_a_pixel_maps_to_the_same_place_in_the_patient_whatever_the_layout() -> None:
    screens = _screens()
    for axis, index, row, col in [(0, 1, 0, 0), (0, 2, 3, 4), (1, 2, 0, 1), (2, 4, 2, 3)]:
        places = []
        for name, (screen, array, geometry) in screens.items():
            voxel = screen.voxel(axis, index, row, col)
            places.append(world(geometry, voxel))
            assert screen.pixel(axis, index, voxel) == (row, col)
            assert screen.pixel(axis, (index + 1) % SHAPE[axis], voxel) is None  # another slice
            assert array[voxel] == screens["identity"][1][screens["identity"][0].voxel(axis, index, row, col)]
        np.testing.assert_allclose(places[1], places[0])
        np.testing.assert_allclose(places[2], places[0])
    # The axial view's top-left pixel: the most anterior row, the patient's rightmost column (radiological).
    screen, _, geometry = screens["flip_x"]
    assert screens["identity"][0].voxel(0, 0, 0, 0) == (0, 0, 0)  # x runs to the patient's left: 0 is rightmost
    assert screen.voxel(0, 0, 0, 0) == (0, 0, 4)  # x flipped: the stored last column is the patient's right
    assert world(geometry, (0, 0, 4))[0] == pytest.approx(10.0)  # LPS x = the identity's column 0
    with pytest.raises(ClinsegError, match="outside the axial slice of 4 x 5"):
        screen.voxel(0, 0, 4, 0)
    with pytest.raises(ClinsegError, match="sagittal slice 5 is outside 0..4"):
        screen.voxel(2, 5, 0, 0)


def test_a_stroke_paints_the_same_voxels_whatever_the_layout() -> None:
    screens = _screens()
    painted = {}
    for name, (screen, array, _) in screens.items():
        axis, index, points = screen.stroke(1, 2, [(0.0, 1.0), (1.0, 3.0)])  # coronal view, slice 2
        plane_shape = tuple(n for a, n in enumerate(array.shape) if a != axis)
        mask = np.zeros(array.shape, np.uint8)
        mask[tuple(index if a == axis else slice(None) for a in range(3))] = disc_stroke(plane_shape, points, 1.0)
        painted[name] = mask
        np.testing.assert_array_equal(screen.plane(mask, 1, 2), screens["identity"][0].plane(painted["identity"], 1, 2))
    assert painted["identity"].sum() == painted["flip_x"].sum() == painted["coronal"].sum() > 0
    np.testing.assert_array_equal(painted["flip_x"], painted["identity"][:, :, ::-1])
    with pytest.raises(ClinsegError, match="at least one point"):
        screens["identity"][0].stroke(0, 0, [])


def test_pngs_of_the_same_patient_are_identical() -> None:
    screens = _screens()
    mask = np.zeros(SHAPE, np.uint8)
    mask[1, 1:3, 0:2] = 1
    pngs = []
    for name, (screen, _, _) in screens.items():
        order, flips = LAYOUTS[name]
        stored_mask, _ = restored(mask, GEOM, order, flips)
        click = screen.voxel(0, 1, 2, 0)
        plane = screen.plane(stored_mask, 0, 1)
        pngs.append(screen.png(0, 1, {"A": plane}, "A", fg=[click], window=Window(30, 20), opacity=0.5))
    assert pngs[0] == pngs[1] == pngs[2]


def test_describe_gives_the_page_markers_window_and_colours() -> None:
    screen = _screens()["identity"][0]
    described = screen.describe()
    assert described["shape"] == [3, 4, 5] and described["stored_toward"] == "LPS"
    assert described["markers"] == [["A", "P", "R", "L"], ["S", "I", "R", "L"], ["S", "I", "A", "P"]]
    assert described["colours"] == {"A": "#00a0ff", "B": "#ff9600"}
    assert not described["ct_like"] and described["presets"] == {}
    # the 1st and 99th percentiles of 0..59: 0.59 and 58.41
    assert described["window"] == {"width": pytest.approx(59 * 0.98), "level": pytest.approx(29.5)}
    ct = np.full(SHAPE, -1000.0, np.float32)
    ct[:, 1:3, 1:4] = 50.0
    ct_screen = Screen(ct, GEOM, ["A"])
    assert ct_screen.ct_like and ct_screen.window == CT_PRESETS["soft tissue"]
    assert ct_screen.describe()["presets"]["lung"] == [1500, -600]
    assert ct_screen.grey(0, 0)[0, 0] == 0 and ct_screen.grey(0, 0)[1, 1] == 133  # (50 + 160) / 400 * 255
    assert ct_screen.grey(0, 0, CT_PRESETS["lung"])[1, 1] == 238  # (50 + 1350) / 1500 * 255


def test_compact_keeps_hounsfield_units_in_int16() -> None:
    hu = np.array([-1024.0, 0.0, 3071.0], np.float32)
    assert compact(hu).dtype == np.int16 and compact(hu).tolist() == [-1024, 0, 3071]
    assert compact(np.array([0.5, 1.0], np.float32)).dtype == np.float32
    assert compact(np.array([40000.0], np.float32)).dtype == np.float32
    assert compact(np.array([np.nan, 1.0], np.float32)).dtype == np.float32
