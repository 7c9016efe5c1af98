"""Low-level visualisation shared by the layers above (phantom previews, run reports)."""

from clinseg.viz.overlay import overlay_figure, save_figure

__all__ = ["overlay_figure", "save_figure"]
