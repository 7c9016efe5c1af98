"""Low-level visualisation shared by the layers above (phantom previews, run reports)."""

from clinseg.viz.overlay import (
    OverlayCase,
    draw_overlay,
    mask_centre,
    overlay_figure,
    overlay_grid,
    save_figure,
    structure_colors,
)

__all__ = [
    "OverlayCase",
    "draw_overlay",
    "mask_centre",
    "overlay_figure",
    "overlay_grid",
    "save_figure",
    "structure_colors",
]
