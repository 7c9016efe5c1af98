"""The viewer's slice geometry and rendering: pure functions, checked by hand."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from clinseg.interactive.viewer.display import (
    FG_RGB,
    disc_stroke,
    render_png,
    slice_view,
    to_view,
    to_volume,
    view_shape,
    window,
)

SHAPE = (4, 5, 6)


def test_window_maps_percentiles_to_0_255_and_constant_to_grey() -> None:
    values = np.linspace(0, 100, 101, dtype=np.float32).reshape(1, 1, 101)
    out = window(values)
    assert out.dtype == np.uint8 and out[0, 0, 0] == 0 and out[0, 0, -1] == 255
    assert out[0, 0, 50] == 127  # (50 - 1) / 98 * 255 = 127.5, truncated
    assert np.all(window(np.full((2, 2, 2), 7.0)) == 128)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_view_and_to_volume_agree_on_every_pixel(axis: int) -> None:
    volume = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    index = 2
    plane = slice_view(volume, axis, index)
    assert plane.shape == view_shape(SHAPE, axis)
    for row in range(plane.shape[0]):
        for col in range(plane.shape[1]):
            point = to_volume(SHAPE, axis, index, row, col)
            assert volume[point] == plane[row, col]
            assert to_view(axis, SHAPE, point) == (index, row, col)


def test_coronal_view_puts_the_last_slice_on_top() -> None:
    volume = np.zeros(SHAPE, np.uint8)
    volume[-1] = 1
    assert slice_view(volume, 1, 0)[0].all() and not slice_view(volume, 1, 0)[1:].any()


def test_disc_stroke_is_a_disc_and_a_drag_leaves_no_gap() -> None:
    disc = disc_stroke((9, 9), [(4, 4)], 2)
    assert disc.sum() == 13  # 1 + 4 (distance 1) + 4 (sqrt 2) + 4 (distance 2)
    line = disc_stroke((3, 20), [(1, 1), (1, 18)], 1)
    assert line[1, 1:19].all()


def test_render_png_draws_the_foreground_click_in_its_slice_only() -> None:
    display = np.zeros(SHAPE, np.uint8)
    mask = np.zeros(SHAPE, np.uint8)
    png = Image.open(io.BytesIO(render_png(display, mask, 0, 1, fg=[(1, 2, 3)])))
    factor = 8  # enlarged to ~512 px on the long side, at most 8x
    assert png.size == (6 * factor, 5 * factor)
    centre = ((3 + 0.5) * factor, (2 + 0.5) * factor)
    assert png.getpixel((int(centre[0]), int(centre[1])))[:3] == FG_RGB
    other = Image.open(io.BytesIO(render_png(display, mask, 0, 2, fg=[(1, 2, 3)])))
    assert other.getpixel((int(centre[0]), int(centre[1])))[:3] == (0, 0, 0)
