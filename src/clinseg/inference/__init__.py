"""Inference: sliding-window probabilities of whole volumes, and post-processing into masks.

>>> from clinseg.inference import predict_probabilities, threshold, keep_largest_components
"""

from clinseg.inference.postprocess import (
    keep_largest_components,
    largest_component,
    threshold,
    to_label_map,
)
from clinseg.inference.sliding_window import (
    gaussian_importance_map,
    predict_probabilities,
    window_starts,
)

__all__ = [
    "gaussian_importance_map",
    "keep_largest_components",
    "largest_component",
    "predict_probabilities",
    "threshold",
    "to_label_map",
    "window_starts",
]
