"""What the viewer shows: a windowed slice of the image, every structure's mask in its colour, the clicks.

Pure functions on arrays (no state, no files). :class:`Window` maps intensities to 8-bit grey (width and
level, in the image's units: HU for a CT); :func:`initial_window` picks the first one — the soft-tissue
preset (:data:`CT_PRESETS`) for a CT-like image, the 1st–99th percentiles (:func:`auto_window`) otherwise.
:func:`slice_view` cuts a slice in screen orientation, :func:`to_volume` maps a pixel of that slice back to a
voxel, and :func:`render_png` draws one slice with its overlays.

The volumes given here are *display grids* (:mod:`clinseg.interactive.viewer.orientation`): axis 0 runs to
the patient's head, axis 1 to the back, axis 2 to the patient's left — for the identity direction, the stored
``(Z, Y, X)`` array itself. In screen orientation the axial view (``axis=0``) shows ``volume[s]`` with rows =
axis 1 (anterior at the top) and columns = axis 2 (patient right on the left: radiological); the coronal
(``axis=1``) and sagittal (``axis=2``) views show axis 0 as rows, flipped so that superior is at the top.

Examples
--------
>>> volume = np.arange(24).reshape(2, 3, 4)
>>> slice_view(volume, 1, 0).shape          # coronal: (S, L)
(2, 4)
>>> to_volume((2, 3, 4), axis=1, index=2, row=0, col=3)
(1, 2, 3)
>>> Window(400, 40).apply(np.array([-160.0, 40.0, 240.0]))   # soft tissue: -160..240 HU
array([  0, 127, 255], dtype=uint8)
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

RGB = tuple[int, int, int]
#: Structure colours, in the run's structure order (cycled past ten). No pure green or red: those are the
#: click dots.
PALETTE: tuple[RGB, ...] = ((0, 160, 255), (255, 150, 0), (230, 60, 230), (240, 220, 40), (0, 210, 190),
                            (150, 110, 255), (255, 120, 160), (190, 130, 70), (170, 230, 80), (220, 220, 220))
#: Default overlay opacity of the active structure (the others get half); contours are drawn opaque.
MASK_ALPHA = 0.4
#: Click dot colours: foreground green, background red.
FG_RGB = (40, 220, 60)
BG_RGB = (235, 40, 40)
#: Slices are enlarged by an integer factor (nearest neighbour) to about this many pixels on the long side,
#: so click dots stay round and visible on small images; capped at 8x.
TARGET_PIXELS = 512
#: A CT-like image (HU): at least 0.5 % of its voxels at or below this value (air, or the scanner's padding)…
CT_AIR_HU = -500.0
#: … and its 99.5th percentile at or below this one (bone and contrast; an MR in arbitrary units rarely
#: has negative values at all).
CT_MAX_HU = 4000.0


@dataclass(frozen=True)
class Window:
    """A grey-level window: intensities ``level - width/2`` … ``level + width/2`` map to black … white.

    Parameters
    ----------
    width : window width (> 0), in the image's units (HU for a CT).
    level : window centre, same units.
    """

    width: float
    level: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.width) and np.isfinite(self.level)) or self.width <= 0:
            raise ValueError(f"a window needs a finite width > 0 and a finite level, got W{self.width} "
                             f"L{self.level}")

    @property
    def low(self) -> float:
        """Intensity shown black (and below)."""
        return self.level - self.width / 2

    def apply(self, values: np.ndarray) -> np.ndarray:
        """uint8 copy of ``values`` (any shape): ``(v - low) * 255 / width``, clipped; NaN shows black."""
        scaled = (np.asarray(values, dtype=np.float32) - np.float32(self.low)) * np.float32(255.0 / self.width)
        return np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).astype(np.uint8)


#: CT windows (width, level in HU), offered when the image is CT-like (:func:`is_ct_like`); the first is the
#: one a CT opens with.
CT_PRESETS: dict[str, Window] = {
    "soft tissue": Window(400, 40),
    "bone": Window(1800, 400),
    "lung": Window(1500, -600),
    "brain": Window(80, 40),
}


def _finite_sample(values: np.ndarray) -> np.ndarray:
    """The finite values of ``values`` (a regular subsample of about a million when larger: same
    percentiles, a fraction of the time)."""
    flat = np.asarray(values).ravel()
    if flat.size > 2_000_000:
        flat = flat[:: flat.size // 1_000_000]
    flat = flat.astype(np.float32, copy=False)
    return flat[np.isfinite(flat)]


def auto_window(values: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> Window:
    """The window from the ``low_pct``–``high_pct`` percentiles of the finite voxels of ``values`` (an MR
    or any image without a fixed intensity scale). A constant image gets a width of 1 around its value."""
    finite = _finite_sample(values)
    if finite.size == 0:
        return Window(1.0, 0.0)
    low, high = (float(v) for v in np.percentile(finite, [low_pct, high_pct]))
    if high <= low:
        return Window(1.0, low)
    return Window(high - low, (high + low) / 2)


def is_ct_like(values: np.ndarray) -> bool:
    """True when ``values`` look like Hounsfield units: some air (0.5th percentile at or below
    :data:`CT_AIR_HU`) and no more than bone above (99.5th percentile at or below :data:`CT_MAX_HU`).

    A heuristic on intensities, not on a file's modality tag: a CT cropped tightly inside the body (no air)
    opens with the percentile window instead; width and level can be set by hand either way.
    """
    finite = _finite_sample(values)
    if finite.size == 0:
        return False
    low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    return low <= CT_AIR_HU and high <= CT_MAX_HU


def initial_window(values: np.ndarray) -> tuple[Window, bool]:
    """``(window, ct_like)``: the soft-tissue preset for a CT-like image, else :func:`auto_window`."""
    if is_ct_like(values):
        return CT_PRESETS["soft tissue"], True
    return auto_window(values), False


def colour_of(position: int) -> RGB:
    """Colour of the structure at ``position`` in the run's structure order (:data:`PALETTE`, cycled)."""
    return PALETTE[position % len(PALETTE)]


def hex_colour(rgb: RGB) -> str:
    """``#rrggbb`` of ``rgb`` (for the page's legend)."""
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def view_shape(shape: Sequence[int], axis: int) -> tuple[int, int]:
    """``(rows, cols)`` of a slice across ``axis`` of a display grid of ``shape``."""
    sup, post, left = (int(n) for n in shape)
    return ((post, left), (sup, left), (sup, post))[_check_axis(axis)]


def slice_view(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice ``index`` across ``axis`` of a display grid ``volume``, in screen orientation (see module doc)."""
    axis = _check_axis(axis)
    if not 0 <= index < volume.shape[axis]:
        raise ValueError(f"slice {index} is outside 0..{volume.shape[axis] - 1} along axis {axis}")
    plane = np.take(volume, index, axis=axis)
    return plane if axis == 0 else plane[::-1]


def to_volume(shape: Sequence[int], axis: int, index: float, row: float, col: float) -> tuple:
    """Display voxel ``(s, p, l)`` shown at pixel ``(row, col)`` of slice ``index`` across ``axis`` of a display
    grid of ``shape`` (inverse of :func:`slice_view`). Integers give integers; a fractional position (a
    brush stroke's) maps the same way, pixel centres at integers."""
    axis = _check_axis(axis)
    top = int(shape[0]) - 1
    if axis == 0:
        return (index, row, col)
    if axis == 1:
        return (top - row, index, col)
    return (top - row, col, index)


def to_view(axis: int, shape: Sequence[int], point: Sequence[int]) -> tuple[int, int, int]:
    """``(slice index, row, col)`` where display voxel ``point = (s, p, l)`` appears in the view across
    ``axis`` (inverse of :func:`to_volume`)."""
    sup, post, left = (int(v) for v in point)
    row = int(shape[0]) - 1 - sup
    return ((sup, post, left), (post, row, left), (left, row, post))[_check_axis(axis)]


def _check_axis(axis: int) -> int:
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (axial), 1 (coronal) or 2 (sagittal), got {axis}")
    return int(axis)


@dataclass(frozen=True)
class Layer:
    """One structure's mask in the shown slice.

    Attributes
    ----------
    mask : ``(rows, cols)`` mask of the slice, nonzero = inside (screen orientation, :func:`slice_view`).
    colour : its colour (:func:`colour_of`).
    active : the structure clicks and strokes apply to: drawn last, at the full opacity.
    """

    mask: np.ndarray
    colour: RGB
    active: bool = False


def render_png(grey: np.ndarray, layers: Sequence[Layer] = (), fg: Sequence[Sequence[int]] = (),
               bg: Sequence[Sequence[int]] = (), opacity: float = MASK_ALPHA) -> bytes:
    """PNG of one slice: ``grey``, each layer's mask as a fill in its colour with an opaque contour, and
    clicks as green (foreground) / red (background) dots.

    Parameters
    ----------
    grey : ``(rows, cols)`` uint8 slice in screen orientation (:meth:`Window.apply` of :func:`slice_view`).
    layers : the structures' masks in this slice; the active one is drawn on top with a fill of ``opacity``,
        the others with half of it.
    fg, bg : clicks as ``(row, col)`` pixels of this slice.
    opacity : fill opacity of the active structure, 0 (contours only) to 1.

    Returns
    -------
    PNG bytes, enlarged by an integer factor (nearest neighbour) — the same for rows and columns, so a pixel
    ``(r, c)`` of the PNG is slice pixel ``(r // f, c // f)``.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"overlay opacity must lie in 0..1, got {opacity}")
    rgb = np.repeat(np.asarray(grey, np.float32)[..., None], 3, axis=2)
    for layer in sorted(layers, key=lambda item: item.active):
        inside = np.asarray(layer.mask) != 0
        if inside.shape != rgb.shape[:2]:
            raise ValueError(f"a mask of shape {inside.shape} on a slice of shape {rgb.shape[:2]}")
        alpha = opacity if layer.active else opacity / 2
        colour = np.asarray(layer.colour, np.float32)
        rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colour
        rgb[inside & ~ndimage.binary_erosion(inside, border_value=0)] = colour
    rows, cols = rgb.shape[:2]
    factor = int(min(8, max(1, TARGET_PIXELS // max(rows, cols))))
    picture = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
    if factor > 1:
        picture = picture.resize((cols * factor, rows * factor), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    radius = max(3.0, 0.35 * factor)
    for points, fill in ((fg, FG_RGB), (bg, BG_RGB)):
        for row, col in points:
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
