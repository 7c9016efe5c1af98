"""What the viewer shows: a windowed slice of the image, the mask as a coloured overlay, the clicks as dots.

Pure functions on arrays (no state, no files): :func:`window` turns channel 0 into an 8-bit display volume
once per session, :func:`slice_view` cuts a slice in screen orientation, :func:`to_volume` maps a pixel of
that slice back to a voxel, and :func:`render_png` draws one slice with its overlay.

Arrays are ``(Z, Y, X)``. Screen orientation (the array's own, as ITK/LPS stores it): the axial view shows
``image[z]`` with rows = Y and columns = X; the coronal (``axis=1``) and sagittal (``axis=2``) views show Z as
rows, flipped so that the last slice (superior for the usual direction cosines) is at the top.

Examples
--------
>>> display = window(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
>>> slice_view(display, 1, 0).shape          # coronal: (Z, X)
(2, 4)
>>> to_volume((2, 3, 4), axis=1, index=2, row=0, col=3)
(1, 2, 3)
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

#: Overlay colour of the mask (RGB) and its opacity; the contour is drawn opaque.
MASK_RGB = (0, 160, 255)
MASK_ALPHA = 0.4
#: Click dot colours: foreground green, background red.
FG_RGB = (40, 220, 60)
BG_RGB = (235, 40, 40)
#: Slices are enlarged by an integer factor (nearest neighbour) to about this many pixels on the long side,
#: so click dots stay round and visible on small images; capped at 8x.
TARGET_PIXELS = 512

Point = tuple[int, int, int]


def window(channel: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> np.ndarray:
    """``(Z, Y, X)`` uint8 copy of ``channel`` windowed to its ``low_pct``–``high_pct`` percentiles.

    Percentiles of the finite voxels; a constant image becomes mid-grey. The input is not modified.
    """
    values = np.asarray(channel, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, np.uint8)
    if finite.size > 2_000_000:  # percentiles of a regular subsample: same window, a fraction of the time
        finite = finite[:: finite.size // 1_000_000]
    low, high = (float(v) for v in np.percentile(finite, [low_pct, high_pct]))
    if high <= low:
        return np.full(values.shape, 128, np.uint8)
    scaled = (np.nan_to_num(values, nan=low) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def view_shape(shape: Sequence[int], axis: int) -> tuple[int, int]:
    """``(rows, cols)`` of a slice across ``axis`` of a ``(Z, Y, X)`` volume of ``shape``."""
    z, y, x = (int(s) for s in shape)
    return ((y, x), (z, x), (z, y))[_check_axis(axis)]


def slice_view(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice ``index`` across ``axis`` of a ``(Z, Y, X)`` volume, in screen orientation (see module doc)."""
    axis = _check_axis(axis)
    if not 0 <= index < volume.shape[axis]:
        raise ValueError(f"slice {index} is outside 0..{volume.shape[axis] - 1} along axis {axis}")
    plane = np.take(volume, index, axis=axis)
    return plane if axis == 0 else plane[::-1]


def to_volume(shape: Sequence[int], axis: int, index: int, row: int, col: int) -> Point:
    """Voxel ``(z, y, x)`` shown at pixel ``(row, col)`` of slice ``index`` across ``axis`` (inverse of
    :func:`slice_view`)."""
    axis = _check_axis(axis)
    z_last = int(shape[0]) - 1
    if axis == 0:
        return (index, row, col)
    if axis == 1:
        return (z_last - row, index, col)
    return (z_last - row, col, index)


def to_view(axis: int, shape: Sequence[int], point: Sequence[int]) -> tuple[int, int, int]:
    """``(slice index, row, col)`` where voxel ``point = (z, y, x)`` appears in the view across ``axis``."""
    z, y, x = (int(p) for p in point)
    z_flip = int(shape[0]) - 1 - z
    return ((z, y, x), (y, z_flip, x), (x, z_flip, y))[_check_axis(axis)]


def _check_axis(axis: int) -> int:
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (axial), 1 (coronal) or 2 (sagittal), got {axis}")
    return int(axis)


def render_png(display: np.ndarray, mask: np.ndarray, axis: int, index: int,
               fg: Sequence[Sequence[int]] = (), bg: Sequence[Sequence[int]] = ()) -> bytes:
    """PNG of one slice: ``display`` in grey, ``mask`` as a semi-transparent fill with an opaque contour, and
    the clicks lying in this slice as green (foreground) / red (background) dots.

    Parameters
    ----------
    display : ``(Z, Y, X)`` uint8 volume (see :func:`window`).
    mask : ``(Z, Y, X)`` mask of the same shape, nonzero = inside.
    axis, index : which slice (0 axial, 1 coronal, 2 sagittal).
    fg, bg : clicks as ``(z, y, x)`` voxel indices; those outside this slice are not drawn.

    Returns
    -------
    PNG bytes, enlarged by an integer factor (nearest neighbour) — the same for rows and columns, so a pixel
    ``(r, c)`` of the PNG is voxel pixel ``(r // f, c // f)``.
    """
    grey = slice_view(display, axis, index).astype(np.float32)
    inside = slice_view(mask, axis, index) != 0
    rgb = np.repeat(grey[..., None], 3, axis=2)
    colour = np.asarray(MASK_RGB, np.float32)
    rgb[inside] = (1 - MASK_ALPHA) * rgb[inside] + MASK_ALPHA * colour
    rgb[inside & ~ndimage.binary_erosion(inside, border_value=0)] = colour
    rows, cols = inside.shape
    factor = int(min(8, max(1, TARGET_PIXELS // max(rows, cols))))
    picture = Image.fromarray(rgb.astype(np.uint8), "RGB")
    if factor > 1:
        picture = picture.resize((cols * factor, rows * factor), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    radius = max(3.0, 0.35 * factor)
    for points, fill in ((fg, FG_RGB), (bg, BG_RGB)):
        for point in points:
            where, row, col = to_view(axis, display.shape, point)
            if where != index:
                continue
            cy, cx = (row + 0.5) * factor, (col + 0.5) * factor
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill, outline=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def disc_stroke(shape: tuple[int, int], points: Sequence[Sequence[float]], radius: float) -> np.ndarray:
    """``(rows, cols)`` bool mask of a brush stroke: discs of ``radius`` pixels along the polyline ``points``
    (``(row, col)`` pairs), sampled every half radius so a fast drag leaves no gaps."""
    if radius <= 0:
        raise ValueError(f"brush radius must be > 0 voxels, got {radius}")
    centres: list[tuple[float, float]] = []
    pts = [(float(p[0]), float(p[1])) for p in points]
    for (r0, c0), (r1, c1) in pairwise(pts):
        steps = max(1, int(np.ceil(np.hypot(r1 - r0, c1 - c0) / max(radius / 2, 0.5))))
        centres.extend((r0 + (r1 - r0) * t / steps, c0 + (c1 - c0) * t / steps) for t in range(steps))
    if pts:
        centres.append(pts[-1])
    out = np.zeros(shape, bool)
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    for r, c in centres:
        out |= (rr - r) ** 2 + (cc - c) ** 2 <= radius * radius
    return out
