"""Interactive segmentation (seed 002 §2.3): click maps, simulated clicks, click-guided training and inference,
and the ``clinseg interact`` viewer (:mod:`clinseg.interactive.viewer`).

>>> from clinseg.interactive import InteractiveNetwork, click_maps, initial_click, next_click
"""

from clinseg.interactive.clicks import (
    DEFAULT_BACKGROUND_RATE,
    MAX_INTERACTIONS,
    Click,
    Point,
    click_maps,
    initial_click,
    next_click,
    num_interactions,
)
from clinseg.interactive.guidance import (
    ClickSettings,
    Guidance,
    first_round,
    next_round,
    slice_axis_of,
)
from clinseg.interactive.network import InteractiveNetwork, simulate_session

__all__ = [
    "DEFAULT_BACKGROUND_RATE",
    "MAX_INTERACTIONS",
    "Click",
    "ClickSettings",
    "Guidance",
    "InteractiveNetwork",
    "Point",
    "click_maps",
    "first_round",
    "initial_click",
    "next_click",
    "next_round",
    "num_interactions",
    "simulate_session",
    "slice_axis_of",
]
