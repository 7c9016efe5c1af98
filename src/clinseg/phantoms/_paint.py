"""How every phantom paints a tissue layer: partial-volume coverage of a shape on a voxel grid."""

from __future__ import annotations

import numpy as np

from clinseg.phantoms._shapes import PoseGrid


def layer_coverage(grid: PoseGrid, shape: object, grow: float = 0.0) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Partial-volume coverage in [0, 1] of ``shape`` grown by ``grow`` mm, on its index block of ``grid``.

    The coverage ramps linearly over one voxel across the surface (0.5 on it), which is how every phantom
    paints a tissue layer: thin structures keep a plausible partial-volume signal. None when the shape
    misses the grid.
    """
    hit = grid.evaluate(shape)
    if hit is None:
        return None
    block, sd = hit
    ramp = float(grid.spacing.mean()) / grid.scale
    return block, np.clip(0.5 - (sd - grow) / ramp, 0.0, 1.0)
