"""Triplanar hole filling of the brain (seed 001 §4.2.2.1)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from clinseg.inference.anatomy import fill_holes_triplanar


def test_a_tunnel_open_in_3d_is_filled_in_its_axial_planes() -> None:
    brain = np.zeros((10, 12, 12), dtype=bool)
    brain[:, 2:10, 2:10] = True
    brain[:, 5:7, 5:7] = False  # a tunnel through every axial slice, first and last included
    assert not ndi.binary_fill_holes(brain)[0, 5, 5]  # 3D filling leaves it: it reaches the volume's border
    filled = fill_holes_triplanar(brain)
    expected = np.zeros_like(brain)
    expected[:, 2:10, 2:10] = True
    np.testing.assert_array_equal(filled, expected)


def test_background_reaching_the_border_of_every_plane_stays() -> None:
    brain = np.zeros((10, 10, 10), dtype=bool)
    brain[1:9, 1:9, 1:9] = True
    brain[1:9, 1, 4] = False  # a groove on the surface: open in every orientation
    brain[4, 4, 4] = False  # an enclosed hole
    out = fill_holes_triplanar(brain)
    assert out[4, 4, 4]
    assert not out[1:9, 1, 4].any()
    assert out.sum() == brain.sum() + 1


def test_hole_enclosed_in_one_orientation_only() -> None:
    brain = np.ones((7, 7, 7), dtype=bool)
    brain[3, 3, 0:4] = False  # a dead end from the x border: enclosed only in its sagittal planes
    out = fill_holes_triplanar(brain)
    assert out.all()
    assert out is not brain and not brain[3, 3, 0]  # input untouched


def test_the_three_orientations_are_filled_on_the_original_mask_and_united() -> None:
    # A: (z 0..4, y 4, x 4) enclosed in its axial planes only; B: (5, 4, 4) open in every orientation of the
    # original mask (through A in the coronal plane, through T in the others); T: (5, 5..8, 4) enclosed in its
    # coronal planes. An axial-then-coronal sequence would fill B once A is filled; the union keeps it.
    brain = np.ones((9, 9, 9), dtype=bool)
    brain[0:5, 4, 4] = False
    brain[5, 4, 4] = False
    brain[5, 5:9, 4] = False
    out = fill_holes_triplanar(brain)
    expected = np.ones_like(brain)
    expected[5, 4, 4] = False
    np.testing.assert_array_equal(out, expected)
