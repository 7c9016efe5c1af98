"""Axial, coronal and sagittal slices of a volume with coloured structure outlines and fills.

Arrays are ``(Z, Y, X)``; ``spacing_zyx`` (mm) sets the aspect ratio so anisotropic voxels look right.
The slices pass through the centre of the union of the masks (or of the volume when there is none).
Rendering uses matplotlib's Agg backend: no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from clinseg.io.atomic import atomic_path  # noqa: E402

_PALETTE = plt.get_cmap("tab20").colors


def _centre(masks: Mapping[str, np.ndarray], shape: Sequence[int]) -> tuple[int, int, int]:
    union = np.zeros(shape, dtype=bool)
    for mask in masks.values():
        union |= mask > 0
    if not union.any():
        return tuple(s // 2 for s in shape)  # type: ignore[return-value]
    return tuple(int(round(c)) for c in np.argwhere(union).mean(axis=0))  # type: ignore[return-value]


def overlay_figure(
    image_zyx: np.ndarray,
    masks: Mapping[str, np.ndarray],
    spacing_zyx: Sequence[float],
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """A 1x3 figure (axial, coronal, sagittal) of ``image_zyx`` with ``masks`` overlaid.

    Parameters
    ----------
    image_zyx : ``(Z, Y, X)`` image.
    masks : structure name -> ``(Z, Y, X)`` binary mask.
    spacing_zyx : voxel size in mm in array order.
    title : figure title.
    colors : optional structure name -> matplotlib colour.
    """
    z, y, x = _centre(masks, image_zyx.shape)
    sz, sy, sx = (float(s) for s in spacing_zyx)
    lo, hi = np.percentile(image_zyx, [1, 99.5])
    views = [
        ("axial", lambda a: a[z], sy / sx),
        ("coronal", lambda a: a[:, y][::-1], sz / sx),
        ("sagittal", lambda a: a[:, :, x][::-1], sz / sy),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    handles = []
    for ax, (name, cut, aspect) in zip(axes, views):
        ax.imshow(cut(image_zyx), cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
        for i, (structure, mask) in enumerate(masks.items()):
            colour = (colors or {}).get(structure, _PALETTE[i % len(_PALETTE)])
            sl = cut(mask > 0)
            if not sl.any():
                continue
            fill = np.zeros((*sl.shape, 4))
            fill[sl] = to_rgba(colour, 0.35)
            ax.imshow(fill, aspect=aspect, interpolation="nearest")
            ax.contour(sl.astype(float), levels=[0.5], colors=[colour], linewidths=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    for i, structure in enumerate(masks):
        colour = (colors or {}).get(structure, _PALETTE[i % len(_PALETTE)])
        handles.append(plt.Line2D([], [], color=colour, lw=4, label=structure))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> None:
    """Save ``fig`` as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
