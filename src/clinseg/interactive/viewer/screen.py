"""How a session's image is put on the screen: display grid, grey-level window, structure colours.

:class:`Screen` joins the pieces of :mod:`~clinseg.interactive.viewer.orientation` (every view in radiological
orientation, whatever the stored direction) and :mod:`~clinseg.interactive.viewer.display` (windowing,
drawing) for one image. It holds no clicks and no masks: the session keeps those on the stored grid and asks
the screen to cut them (:meth:`Screen.plane`), to draw them (:meth:`Screen.png`) and to map what a person
points at back to stored voxels (:meth:`Screen.voxel`, :meth:`Screen.stroke`).

Coordinates: a *view* is ``(axis, index)`` — 0 axial, 1 coronal, 2 sagittal, and the slice along that display
axis (axial slices counted foot to head, coronal front to back, sagittal right to left); a *pixel* is
``(row, col)`` of that slice as drawn, before the PNG's enlargement. Stored points are ``(z, y, x)`` voxel
indices of the image array.

Examples
--------
>>> flipped = Geometry(spacing=(1.0, 1.0, 2.0), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1), shape=(2, 3, 4))
>>> screen = Screen(np.zeros((2, 3, 4), np.float32), flipped, ["A"])
>>> screen.voxel(0, 1, row=2, col=0)           # the screen's left column is the stored array's last x
(1, 2, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinseg.errors import ClinsegError
from clinseg.interactive.viewer.display import (
    CT_PRESETS,
    MASK_ALPHA,
    Layer,
    Window,
    colour_of,
    hex_colour,
    initial_window,
    render_png,
    slice_view,
    to_view,
    to_volume,
    view_shape,
)
from clinseg.interactive.viewer.orientation import MARKERS, Orientation
from clinseg.io.image import Geometry

Point = tuple[int, int, int]
#: View names by display axis, for messages.
VIEW_NAMES = ("axial", "coronal", "sagittal")


def compact(values: np.ndarray) -> np.ndarray:
    """``values`` as int16 when every voxel is an integer in int16's range (a CT in HU: half the memory of
    float32), else as float32."""
    as_float = np.asarray(values, dtype=np.float32)
    if as_float.size and np.all(np.isfinite(as_float)):
        low, high = float(as_float.min()), float(as_float.max())
        if low >= -(2**15) and high < 2**15 and np.array_equal(as_float, np.round(as_float)):
            return as_float.astype(np.int16)
    return as_float


class Screen:
    """One image on the screen.

    Parameters
    ----------
    channel : ``(Z, Y, X)`` intensities shown in grey, in the image's own units (HU for a CT; not the
        network's normalised input), on the stored grid.
    geometry : the stored grid's geometry; its direction gives the display orientation.
    structures : the run's structures, in order (their colours follow it).

    Attributes
    ----------
    orientation : how the stored array lies on the display grid.
    stored_shape, shape : ``(Z, Y, X)`` of the stored array, and of the display grid.
    spacing : voxel size in mm along the display axes.
    window : the window the page opens with; ``ct_like`` tells whether :data:`CT_PRESETS` apply.
    colours : structure -> RGB.
    """

    def __init__(self, channel: np.ndarray, geometry: Geometry, structures: Sequence[str]) -> None:
        if channel.ndim != 3:
            raise ClinsegError(f"expected a (Z, Y, X) channel to show, got shape {channel.shape}")
        try:
            self.orientation = Orientation.from_direction(geometry.direction)
        except ValueError as exc:
            raise ClinsegError(f"cannot show the image: {exc}") from None
        self.stored_shape: Point = tuple(int(s) for s in channel.shape)  # type: ignore[assignment]
        self.shape: Point = self.orientation.display_shape(self.stored_shape)
        self.spacing = self.orientation.display_spacing(geometry.spacing_zyx)
        self.window, self.ct_like = initial_window(channel)
        self._grey = self.orientation.view(compact(channel))
        self.colours = {s: colour_of(i) for i, s in enumerate(structures)}

    # -- from the screen to the stored grid ----------------------------------------------------------------
    def voxel(self, axis: int, index: int, row: int, col: int) -> Point:
        """Stored voxel ``(z, y, x)`` shown at pixel ``(row, col)`` of view ``(axis, index)``; refuses
        (:class:`ClinsegError`) a pixel outside the slice."""
        self._check_view(axis, index)
        rows, cols = view_shape(self.shape, axis)
        if not (0 <= row < rows and 0 <= col < cols):
            raise ClinsegError(f"pixel ({row}, {col}) lies outside the {VIEW_NAMES[axis]} slice of "
                               f"{rows} x {cols}")
        shown = to_volume(self.shape, axis, index, row, col)
        return tuple(int(v) for v in self.orientation.to_stored(shown, self.stored_shape))  # type: ignore[return-value]

    def stroke(self, axis: int, index: int,
               points: Sequence[Sequence[float]]) -> tuple[int, int, list[tuple[float, float]]]:
        """A brush stroke drawn on view ``(axis, index)`` at pixels ``points`` (``(row, col)``, fractional
        allowed), on the stored grid: ``(stored axis, stored slice, points)`` with the points as positions in
        that stored slice (its two remaining axes in array order). Flips and transposes keep discs discs, so
        the same voxels are painted."""
        self._check_view(axis, index)
        if not points:
            raise ClinsegError("a brush stroke needs at least one point")
        stored_axis = self.orientation.axes[axis]
        moved: list[tuple[float, float]] = []
        stored_index = 0
        for row, col in points:
            point = self.orientation.to_stored(to_volume(self.shape, axis, index, float(row), float(col)),
                                               self.stored_shape)
            stored_index = int(round(point[stored_axis]))
            rest = [float(v) for k, v in enumerate(point) if k != stored_axis]
            moved.append((rest[0], rest[1]))
        return stored_axis, int(stored_index), moved

    # -- from the stored grid to the screen ----------------------------------------------------------------
    def plane(self, volume: np.ndarray, axis: int, index: int) -> np.ndarray:
        """Slice ``(axis, index)`` of a stored ``(Z, Y, X)`` ``volume`` (a mask), in screen orientation."""
        self._check_view(axis, index)
        return slice_view(self.orientation.view(volume), axis, index)

    def pixel(self, axis: int, index: int, point: Sequence[int]) -> tuple[int, int] | None:
        """``(row, col)`` where stored voxel ``point`` appears in view ``(axis, index)``; None when it lies in
        another slice."""
        shown = self.orientation.to_display(point, self.stored_shape)
        where, row, col = to_view(axis, self.shape, shown)
        return (row, col) if where == index else None

    def grey(self, axis: int, index: int, window: Window | None = None) -> np.ndarray:
        """``(rows, cols)`` uint8 of view ``(axis, index)`` through ``window`` (default :attr:`window`)."""
        self._check_view(axis, index)
        return (window or self.window).apply(slice_view(self._grey, axis, index))

    def png(self, axis: int, index: int, planes: dict[str, np.ndarray], active: str,
            fg: Sequence[Sequence[int]] = (), bg: Sequence[Sequence[int]] = (), *,
            window: Window | None = None, opacity: float = MASK_ALPHA) -> bytes:
        """PNG of view ``(axis, index)``: the grey image, every structure of ``planes`` (structure -> its mask
        in this view, as :meth:`plane` cuts it) in its colour with ``active`` on top, and the stored clicks
        ``fg``/``bg`` that lie in this slice (see :func:`~clinseg.interactive.viewer.display.render_png`)."""
        layers = [Layer(plane, self.colours[name], name == active) for name, plane in planes.items()]
        dots = [[p for p in (self.pixel(axis, index, q) for q in points) if p is not None] for points in (fg, bg)]
        return render_png(self.grey(axis, index, window), layers, dots[0], dots[1], opacity)

    def describe(self) -> dict:
        """JSON-ready description for the page: display grid, markers, window, presets, colours."""
        return {
            "shape": list(self.shape),
            "spacing": list(self.spacing),
            "stored_toward": self.orientation.toward,
            "markers": [list(MARKERS[axis]) for axis in range(3)],
            "window": {"width": self.window.width, "level": self.window.level},
            "ct_like": self.ct_like,
            "presets": {name: [w.width, w.level] for name, w in CT_PRESETS.items()} if self.ct_like else {},
            "colours": {name: hex_colour(rgb) for name, rgb in self.colours.items()},
        }

    def _check_view(self, axis: int, index: int) -> None:
        if axis not in (0, 1, 2):
            raise ClinsegError(f"axis must be 0 (axial), 1 (coronal) or 2 (sagittal), got {axis}")
        if not 0 <= index < self.shape[axis]:
            raise ClinsegError(f"{VIEW_NAMES[axis]} slice {index} is outside 0..{self.shape[axis] - 1}")
