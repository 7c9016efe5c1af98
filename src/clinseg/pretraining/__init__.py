"""Restoration pretraining (seed 002 §2.2): Models-Genesis-style distortions of image patches.

>>> from clinseg.pretraining import DistortionConfig, distort, distort_batch
"""

from clinseg.pretraining.distortions import (
    Box,
    DistortionConfig,
    distort,
    distort_batch,
    in_paint,
    local_pixel_shuffle,
    nonlinear_transform,
    out_paint,
    random_boxes,
    shuffle_windows,
)

__all__ = [
    "Box",
    "DistortionConfig",
    "distort",
    "distort_batch",
    "in_paint",
    "local_pixel_shuffle",
    "nonlinear_transform",
    "out_paint",
    "random_boxes",
    "shuffle_windows",
]
