"""Evaluation over nested *regions* (unions of labels) instead of single labels, e.g. the BRATS tumour regions.

A region is a name and a set of label values (the values of ``dataset.json`` ``labels``); its mask is the union
of the masks of the structures with those values. The ``"brats"`` preset is the BRATS challenge evaluation
used in seed 001 (Sec. 2.3.1) with the labels necrosis / non-enhancing core = 1, oedema = 2, enhancing core = 3:

=============  =============  ==========================================
region         label values   what it is
=============  =============  ==========================================
``whole``      {1, 2, 3}      whole tumour (oedema + tumour core)
``core``       {1, 3}         tumour core (non-enhancing + enhancing)
``enhancing``  {3}            contrast-enhancing core
=============  =============  ==========================================

Empty regions follow the BRATS convention through :func:`~clinseg.evaluation.metrics.structure_metrics`
unchanged: when the reference region is empty (e.g. a case without enhancing tumour) Dice is 1 if the
prediction is empty too and 0 otherwise; HD95/ASSD are 0 when both are empty and NaN (undefined, not a
made-up distance such as the BRATS platform's image diagonal) when only one is. Sensitivity is NaN on an
empty reference. These rows count in the summaries like any other (``delineated`` stays True): an empty
reference region is a known absence, not a missing delineation. A region is *not delineated* (empty metrics)
only when the reference case does not delineate one of its structures.

Masks are boolean ``(Z, Y, X)`` arrays; structure masks are stacked channel-first ``(N, Z, Y, X)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.metrics import METRIC_NAMES, structure_metrics


@dataclass(frozen=True)
class Region:
    """A named union of label values, e.g. ``Region("core", frozenset({1, 3}))``."""

    name: str
    labels: frozenset[int]


#: Named region tables; ``"brats"`` is the BRATS whole / core / enhancing evaluation (seed 001 Sec. 2.3.1).
REGION_PRESETS: dict[str, tuple[Region, ...]] = {
    "brats": (
        Region("whole", frozenset({1, 2, 3})),
        Region("core", frozenset({1, 3})),
        Region("enhancing", frozenset({3})),
    ),
}


def get_regions(regions: str | Sequence[Region]) -> tuple[Region, ...]:
    """The region table named ``regions`` in :data:`REGION_PRESETS`, or ``regions`` itself when already a table.

    Raises :class:`ConfigError` listing the presets for an unknown name.
    """
    if isinstance(regions, str):
        if regions not in REGION_PRESETS:
            raise ConfigError(f"unknown region set {regions!r}; known: {sorted(REGION_PRESETS)}")
        return REGION_PRESETS[regions]
    return tuple(regions)


def region_structures(regions: Sequence[Region], label_values: Mapping[str, int],
                      where: str = "dataset.json") -> dict[str, tuple[str, ...]]:
    """Region name -> the structures (in ``label_values`` order) whose label value belongs to the region.

    Raises
    ------
    DatasetError
        When a region uses a label value that no structure of ``label_values`` has (``where`` names the
        file in the message).
    """
    by_value = {value: name for name, value in label_values.items()}
    table: dict[str, tuple[str, ...]] = {}
    for region in regions:
        missing = sorted(region.labels - set(by_value))
        if missing:
            declared = ", ".join(f"{n}={v}" for n, v in label_values.items())
            raise DatasetError(f"{where}: region {region.name!r} uses label value(s) {missing}, which no structure "
                               f"has (labels: {declared})")
        table[region.name] = tuple(n for n, v in label_values.items() if v in region.labels)
    return table


def region_mask(masks: np.ndarray, structures: Sequence[str], members: Sequence[str]) -> np.ndarray:
    """Union of the masks of ``members``: ``masks`` is ``(N, Z, Y, X)`` with channel ``n`` = ``structures[n]``.

    Examples
    --------
    >>> masks = np.array([[[[1, 0]]], [[[0, 1]]]])       # (2, 1, 1, 2)
    >>> region_mask(masks, ["a", "b"], ["a", "b"]).astype(int).tolist()
    [[[1, 1]]]
    """
    union = np.zeros(masks.shape[1:], dtype=bool)
    for name in members:
        union |= masks[list(structures).index(name)] == 1  # not UNKNOWN (255, the ignore label)
    return union


def region_rows(
    case: str,
    target: np.ndarray,
    annotated: np.ndarray,
    structures: Sequence[str],
    members: Mapping[str, Sequence[str]],
    read_prediction: Callable[[str], np.ndarray],
    spacing_zyx: tuple[float, float, float],
    tolerance_mm: float = 2.0,
) -> list[dict[str, object]]:
    """Metric rows of one case, one per region, in the layout of the per-structure rows of ``evaluate``.

    Parameters
    ----------
    case : case id (the ``case`` column).
    target : ``(N, Z, Y, X)`` reference masks, channel ``n`` = ``structures[n]``.
    annotated : ``(N,)`` bool, whether the reference delineates each structure.
    structures : the dataset's structures, in channel order.
    members : region name -> its structures (:func:`region_structures`); rows follow its order.
    read_prediction : structure name -> predicted ``(Z, Y, X)`` mask; only called for delineated regions.
    spacing_zyx : voxel size in mm, array order.
    tolerance_mm : surface Dice tolerance in mm.

    Returns
    -------
    list of dict
        Keys ``case``, ``structure`` (the region name), ``delineated`` and :data:`METRIC_NAMES`; the metrics
        are NaN when a member structure is not delineated in the reference.
    """
    rows: list[dict[str, object]] = []
    for name, names in members.items():
        delineated = all(bool(annotated[list(structures).index(n)]) for n in names)
        row: dict[str, object] = {"case": case, "structure": name, "delineated": delineated}
        if delineated:
            pred = np.zeros(target.shape[1:], dtype=bool)
            for member in names:
                pred |= read_prediction(member)
            ref = region_mask(target, structures, names)
            pred &= ~(target == 255).any(axis=0)  # the dataset's ignore label: scored nowhere
            row.update(structure_metrics(pred, ref, spacing_zyx, tolerance_mm))
        else:
            row.update({m: np.nan for m in METRIC_NAMES})
        rows.append(row)
    return rows
