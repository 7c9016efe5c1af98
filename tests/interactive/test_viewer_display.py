"""The viewer's slice geometry, windows and rendering: pure functions, checked by hand."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from clinseg.interactive.viewer.display import (
    BG_RGB,
    CT_PRESETS,
    FG_RGB,
    Layer,
    Window,
    auto_window,
    colour_of,
    disc_stroke,
    hex_colour,
    initial_window,
    is_ct_like,
    render_png,
    slice_view,
    to_view,
    to_volume,
    view_shape,
)

SHAPE = (4, 5, 6)


def test_auto_window_maps_percentiles_to_0_255_and_constant_to_grey() -> None:
    values = np.linspace(0, 100, 101, dtype=np.float32).reshape(1, 1, 101)
    auto = auto_window(values)
    assert auto == Window(98.0, 50.0)  # 1st percentile 1, 99th 99
    out = auto.apply(values)
    assert out.dtype == np.uint8 and out[0, 0, 0] == 0 and out[0, 0, 1] == 0 and out[0, 0, -1] == 255
    assert out[0, 0, 50] == 127  # (50 - 1) / 98 * 255 = 127.5, truncated
    assert out[0, 0, 25] == 62  # (25 - 1) / 98 * 255 = 62.4
    constant = np.full((2, 2, 2), 7.0)
    assert auto_window(constant) == Window(1.0, 7.0) and np.all(auto_window(constant).apply(constant) == 127)
    assert values[0, 0, 50] == 50  # the input is not modified


def test_ct_windows_in_hounsfield_units() -> None:
    assert [(n, w.width, w.level) for n, w in CT_PRESETS.items()] == [
        ("soft tissue", 400, 40), ("bone", 1800, 400), ("lung", 1500, -600), ("brain", 80, 40)]
    hu = np.array([-1000, -160, -120, 40, 240, 1000], np.float32)
    assert CT_PRESETS["soft tissue"].apply(hu).tolist() == [0, 0, 25, 127, 255, 255]  # 40 / 400 * 255 = 25.5
    assert CT_PRESETS["lung"].apply(np.array([-1350, -600, 150], np.float32)).tolist() == [0, 127, 255]
    assert CT_PRESETS["bone"].low == -500 and CT_PRESETS["brain"].low == 0
    with pytest.raises(ValueError, match="width > 0"):
        Window(0, 40)
    with pytest.raises(ValueError, match="width > 0"):
        Window(float("nan"), 40)


def test_ct_like_images_open_with_the_soft_tissue_window_others_with_percentiles() -> None:
    ct = np.full((4, 10, 10), -1000.0, np.float32)  # air around a body of soft tissue and bone
    ct[:, 2:8, 2:8] = 40.0
    ct[:, 4:6, 4:6] = 1200.0
    assert is_ct_like(ct) and initial_window(ct) == (CT_PRESETS["soft tissue"], True)
    mr = np.linspace(0, 1500, 400, dtype=np.float32).reshape(4, 10, 10)
    assert not is_ct_like(mr)
    window, ct_like = initial_window(mr)
    lo, hi = np.percentile(mr, [1, 99])
    assert not ct_like and window.width == pytest.approx(hi - lo) and window.level == pytest.approx((hi + lo) / 2)
    assert not is_ct_like(ct / 1000.0)  # normalised: no air at -500 or below
    assert not is_ct_like(ct * 10.0)  # far above bone: not Hounsfield units
    assert not is_ct_like(np.full((2, 2, 2), np.nan, np.float32))


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


def test_render_png_draws_the_clicks_at_their_pixels() -> None:
    grey = np.zeros((5, 6), np.uint8)
    png = Image.open(io.BytesIO(render_png(grey, fg=[(2, 3)], bg=[(4, 0)])))
    factor = 8  # enlarged to ~512 px on the long side, at most 8x
    assert png.size == (6 * factor, 5 * factor)
    assert png.getpixel((int(3.5 * factor), int(2.5 * factor)))[:3] == FG_RGB
    assert png.getpixel((int(0.5 * factor), int(4.5 * factor)))[:3] == BG_RGB
    assert png.getpixel((int(5.5 * factor), int(0.5 * factor)))[:3] == (0, 0, 0)


def _pixel(png: bytes, row: int, col: int, factor: int = 8) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(png)).getpixel((col * factor + 3, row * factor + 3))[:3]


def test_render_png_draws_every_structure_in_its_colour_the_active_one_on_top() -> None:
    grey = np.full((8, 8), 100, np.uint8)
    a = np.zeros((8, 8), bool)
    a[1:6, 1:6] = True  # 5 x 5: its contour is the outer ring, rows and columns 2..4 inside
    b = np.zeros((8, 8), bool)
    b[3:8, 3:8] = True  # contour rows and columns 3 and 7, inside 4..6
    blue, orange = colour_of(0), colour_of(1)
    assert (blue, orange) == ((0, 160, 255), (255, 150, 0)) and hex_colour(blue) == "#00a0ff"
    assert colour_of(10) == blue  # ten colours, cycled
    png = render_png(grey, [Layer(a, blue, active=True), Layer(b, orange)], opacity=0.4)
    assert _pixel(png, 1, 1) == blue and _pixel(png, 7, 7) == orange  # contours: opaque
    assert _pixel(png, 2, 2) == (60, 124, 162)  # inside A (active): 0.6 * 100 + 0.4 * (0, 160, 255)
    assert _pixel(png, 6, 6) == (131, 110, 80)  # inside B (inactive, half the opacity): 0.8 * 100 + 0.2 * orange
    assert _pixel(png, 4, 4) == (79, 130, 150)  # inside both: B first, then A over it: 0.6 * (131, 110, 80) + ...
    assert _pixel(png, 3, 3) == (153, 154, 102)  # B's contour under A's fill: 0.6 * orange + 0.4 * blue
    assert _pixel(png, 5, 5) == blue  # A's contour over B's inside: the active structure is drawn last
    outlines = render_png(grey, [Layer(a, blue, active=True)], opacity=0.0)
    assert _pixel(outlines, 2, 2) == (100, 100, 100) and _pixel(outlines, 1, 1) == blue  # opacity 0: outline only
    with pytest.raises(ValueError, match="opacity"):
        render_png(grey, opacity=1.5)
