"""Interactive segmentation (seed 002 §2.3): guidance click maps and simulated clicks.

>>> from clinseg.interactive import click_maps, initial_click, next_click, training_clicks
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
    simulate_clicks,
    training_clicks,
)

__all__ = [
    "DEFAULT_BACKGROUND_RATE",
    "MAX_INTERACTIONS",
    "Click",
    "Point",
    "click_maps",
    "initial_click",
    "next_click",
    "num_interactions",
    "simulate_clicks",
    "training_clicks",
]
