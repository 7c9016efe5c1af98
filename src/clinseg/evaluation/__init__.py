"""Evaluation: segmentation metrics per structure and their summary statistics.

Masks are boolean ``(Z, Y, X)`` arrays; ``spacing_zyx`` is the voxel size in mm in array order.
"""

from clinseg.evaluation.metrics import (
    METRIC_NAMES,
    metric_directions,
    structure_metrics,
)
from clinseg.evaluation.summary import format_summary_table, mean_ci, summarise

__all__ = [
    "METRIC_NAMES",
    "format_summary_table",
    "mean_ci",
    "metric_directions",
    "structure_metrics",
    "summarise",
]
