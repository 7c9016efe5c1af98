"""Axial, coronal and sagittal slices of a volume with coloured structure fills and contours.

Arrays are ``(Z, Y, X)`` in ITK/LPS order (+X patient left, +Y posterior, +Z superior); ``spacing_zyx``
(mm) sets each panel's aspect ratio so anisotropic voxels look right. Panels use the radiological
convention: axial with anterior up and patient left on the right, coronal and sagittal with superior up.
By default the slices pass through the centre of the union of the masks (or of the volume).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas: no display, no
pyplot state, safe in worker threads.

Examples
--------
>>> fig = overlay_figure(image, {"Eye_L": eye}, spacing_zyx=(2.0, 2.0, 2.0), title="head_000")  # doctest: +SKIP
>>> save_figure(fig, "preview.png")                                                            # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from clinseg.io.atomic import atomic_path

_PALETTE = colormaps["tab20"].colors
VIEWS = ("axial", "coronal", "sagittal")


@dataclass(frozen=True)
class OverlayCase:
    """One row of an overlay grid.

    Attributes
    ----------
    image : ``(Z, Y, X)`` volume.
    masks : structure name -> ``(Z, Y, X)`` mask (nonzero = inside).
    spacing_zyx : voxel size in mm along ``(Z, Y, X)``.
    title : row title.
    center_zyx : voxel the three slices pass through; default: centre of the union of ``masks``.
    """

    image: np.ndarray
    masks: Mapping[str, np.ndarray] = field(default_factory=dict)
    spacing_zyx: Sequence[float] = (1.0, 1.0, 1.0)
    title: str | None = None
    center_zyx: Sequence[int] | None = None


def mask_centre(masks: Mapping[str, np.ndarray], shape_zyx: Sequence[int]) -> tuple[int, int, int]:
    """Voxel at the centre of mass of the union of ``masks`` (volume centre when all are empty)."""
    union = np.zeros(tuple(shape_zyx), dtype=bool)
    for mask in masks.values():
        union |= np.asarray(mask) > 0
    if not union.any():
        return tuple(int(s) // 2 for s in shape_zyx)  # type: ignore[return-value]
    return tuple(int(round(c)) for c in np.argwhere(union).mean(axis=0))  # type: ignore[return-value]


def structure_colors(names: Sequence[str], colors: Mapping[str, str] | None = None) -> dict[str, tuple]:
    """RGBA colour per structure: ``colors`` where given, else tab20 in order of ``names``."""
    given = colors or {}
    return {n: to_rgba(given.get(n, _PALETTE[i % len(_PALETTE)])) for i, n in enumerate(names)}


def _cuts(volume: np.ndarray, centre: Sequence[int]) -> list[np.ndarray]:
    z, y, x = (int(np.clip(c, 0, n - 1)) for c, n in zip(centre, volume.shape))
    return [volume[z], volume[:, y, :], volume[:, :, x]]


def draw_overlay(
    axes: Sequence[Axes],
    image_zyx: np.ndarray,
    masks: Mapping[str, np.ndarray],
    spacing_zyx: Sequence[float],
    colors: Mapping[str, tuple] | None = None,
    center_zyx: Sequence[int] | None = None,
    window: tuple[float, float] | None = None,
) -> tuple[int, int, int]:
    """Draw axial, coronal and sagittal overlays into three given axes; returns the centre voxel used.

    Parameters
    ----------
    axes : three matplotlib axes (axial, coronal, sagittal).
    image_zyx : ``(Z, Y, X)`` volume.
    masks : name -> ``(Z, Y, X)`` mask.
    spacing_zyx : voxel size in mm along ``(Z, Y, X)`` (panel aspect ratios).
    colors : name -> RGBA (default: :func:`structure_colors`).
    center_zyx : slice position (default: :func:`mask_centre`).
    window : display range (default: 1st-99.5th percentile of the volume).
    """
    image_zyx = np.asarray(image_zyx)
    if image_zyx.ndim != 3:
        raise ValueError(f"overlay expects a (Z, Y, X) volume, got shape {image_zyx.shape}")
    for name, mask in masks.items():
        if np.shape(mask) != image_zyx.shape:
            raise ValueError(f"mask {name!r} has shape {np.shape(mask)}, image {image_zyx.shape}")
    colors = colors or structure_colors(list(masks))
    centre = tuple(center_zyx) if center_zyx is not None else mask_centre(masks, image_zyx.shape)
    sz, sy, sx = (float(s) for s in spacing_zyx)
    lo, hi = window if window is not None else np.percentile(image_zyx, [1.0, 99.5])
    # (view, aspect = row spacing / column spacing, image origin): axial rows are Y (anterior at top);
    # coronal and sagittal rows are Z, drawn with origin "lower" so superior is up.
    layout = [("axial", sy / sx, "upper"), ("coronal", sz / sx, "lower"), ("sagittal", sz / sy, "lower")]
    image_cuts = _cuts(image_zyx, centre)
    mask_cuts = {name: _cuts(np.asarray(mask) > 0, centre) for name, mask in masks.items()}
    for k, (ax, (view, aspect, origin)) in enumerate(zip(axes, layout)):
        ax.imshow(image_cuts[k], cmap="gray", vmin=lo, vmax=hi, aspect=aspect, origin=origin,
                  interpolation="nearest")
        for name, cuts in mask_cuts.items():
            cut = cuts[k]
            if not cut.any():
                continue
            fill = np.zeros((*cut.shape, 4))
            fill[cut] = (*colors[name][:3], 0.35)
            ax.imshow(fill, aspect=aspect, origin=origin, interpolation="nearest")
            # contour() works in (column, row) data coordinates, which imshow already oriented.
            ax.contour(cut.astype(float), levels=[0.5], colors=[colors[name]], linewidths=0.9)
        ax.set_title(view, fontsize=9)
        ax.set_axis_off()
    return centre  # type: ignore[return-value]


def overlay_grid(
    rows: Sequence[OverlayCase],
    colors: Mapping[str, str] | None = None,
    order: Sequence[str] | None = None,
    panel_inches: float = 3.2,
) -> Figure:
    """A figure with one row of three panels per :class:`OverlayCase` and a shared legend.

    ``order`` fixes the colour order of structure names (others follow in order of appearance) so a
    structure has the same colour in every row.
    """
    if not rows:
        raise ValueError("overlay_grid needs at least one row")
    names = list(order or [])
    for row in rows:
        names += [n for n in row.masks if n not in names]
    palette = structure_colors(names, colors)
    fig = Figure(figsize=(3 * panel_inches, (panel_inches + 0.3) * len(rows) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    # One subfigure per row, so a row title sits above its own panels whatever their aspect ratios.
    for subfig, row in zip(fig.subfigures(len(rows), 1, squeeze=False)[:, 0], rows):
        axes = subfig.subplots(1, 3)
        draw_overlay(axes, row.image, row.masks, row.spacing_zyx, palette, row.center_zyx)
        if row.title:
            subfig.suptitle(row.title, x=0.01, ha="left", fontsize=10, weight="bold")
    shown = [n for n in names if any(n in row.masks for row in rows)]
    if shown:
        handles = [Line2D([], [], color=palette[n], lw=5, label=n) for n in shown]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8,
                   frameon=False)
    return fig


def overlay_figure(
    image_zyx: np.ndarray,
    masks: Mapping[str, np.ndarray],
    spacing_zyx: Sequence[float],
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
    center_zyx: Sequence[int] | None = None,
) -> Figure:
    """A 1 x 3 figure (axial, coronal, sagittal) of ``image_zyx`` with ``masks`` overlaid.

    Parameters
    ----------
    image_zyx : ``(Z, Y, X)`` volume.
    masks : structure name -> ``(Z, Y, X)`` bool/integer mask (may be empty).
    spacing_zyx : voxel size in mm along ``(Z, Y, X)``; sets the panels' aspect ratios.
    title : figure title.
    colors : optional structure name -> matplotlib colour.
    center_zyx : voxel the slices pass through (default: centre of the union of masks, or of the volume).
    """
    return overlay_grid([OverlayCase(image_zyx, masks, spacing_zyx, title, center_zyx)], colors)


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> None:
    """Write ``fig`` as a PNG atomically (Agg canvas, no display needed)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
