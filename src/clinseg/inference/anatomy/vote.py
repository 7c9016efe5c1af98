"""Majority vote of the organ masks of several models (seed 001 §4.2.2: axial, coronal and sagittal networks).

A voxel is positive for an organ when more than half of the models predict it (2 of 3). A model without a
mask for an organ votes negative for it everywhere.

Example
-------
>>> a, b, c = ({"Eye": np.array([[[v0, v1]]])} for v0, v1 in ((1, 1), (1, 0), (0, 0)))
>>> majority_vote([a, b, c])["Eye"].astype(int)
array([[[1, 0]]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["majority_vote"]


def majority_vote(mask_sets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per organ, the voxels positive in more than half of ``mask_sets``.

    Parameters
    ----------
    mask_sets : one ``{organ: (Z, Y, X) mask}`` mapping per model (bool or 0/1), all on the same grid.

    Returns
    -------
    dict
        ``{organ: bool (Z, Y, X)}`` for every organ named in any set, in first-seen order.
    """
    if not mask_sets:
        raise ValueError("majority_vote needs at least one set of masks")
    organs = list(dict.fromkeys(name for masks in mask_sets for name in masks))
    needed = len(mask_sets) // 2 + 1
    voted: dict[str, np.ndarray] = {}
    for organ in organs:
        shapes = {np.shape(masks[organ]) for masks in mask_sets if organ in masks}
        if len(shapes) != 1:
            raise ValueError(f"masks of {organ!r} have different shapes across models: {sorted(shapes)}")
        votes = sum(np.asarray(m[organ], dtype=bool).astype(np.uint16) for m in mask_sets if organ in m)
        voted[organ] = np.asarray(votes) >= needed
    return voted
