"""The ``labels`` of a ``dataset.json``: structure values, nnU-Net v2 region labels and the ``ignore`` label.

``{"background": 0, "Brainstem": 1, "Parotids": [2, 3], "ignore": 4}`` gives the structures and their label
values, the regions (a structure that is the union of several values) and the ``ignore`` value (nnU-Net v2: the
highest value; its voxels are unknown for every structure). A list of names gives values 1, 2, ... in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from clinseg.errors import DatasetError
from clinseg.names import check_name

#: nnU-Net v2's name of the label whose voxels are unknown for every class.
IGNORE_LABEL = "ignore"


def parse_labels(labels: object, path: Path) -> tuple[dict[str, int], dict[str, tuple[int, ...]], int | None]:
    """``(label_values, regions, ignore_value)`` of a ``labels`` entry; :class:`DatasetError` naming ``path``.

    ``label_values`` maps each structure (background and ``ignore`` left out) to its value, a region to the
    smallest of its values (its place in the output order); ``regions`` maps a region to all its values.
    """
    regions: dict[str, tuple[int, ...]] = {}
    if isinstance(labels, list):
        label_values = {str(name): i + 1 for i, name in enumerate(labels)}
    elif isinstance(labels, Mapping):
        label_values = {}
        for name, value in labels.items():
            if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                regions[str(name)] = tuple(sorted(set(value)))  # nnU-Net region: the union of these values
                label_values[str(name)] = min(value)
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise DatasetError(f"{path}: label {name!r} must have an integer value or a list of values (a "
                                   f"region, the union of those labels), got {value!r}")
            label_values[str(name)] = value
    else:
        raise DatasetError(f"{path}: 'labels' must be an object (name -> value) or a list of structure names")
    bg = [n for n, v in label_values.items() if v == 0 and n not in regions]
    for name in bg:
        label_values.pop(name)
    ignore_value = label_values.pop(IGNORE_LABEL, None)
    if ignore_value is not None and (IGNORE_LABEL in regions or ignore_value <= max(
            [v for r in regions.values() for v in r] + list(label_values.values()), default=0)):
        raise DatasetError(f"{path}: the {IGNORE_LABEL!r} label must have the highest integer value (nnU-Net v2's "
                           f"rule), got {ignore_value!r}")
    if not label_values:
        raise DatasetError(f"{path}: no foreground labels declared")
    for name in label_values:  # structure names become file names: OUT/<case>/<structure>.nii.gz
        check_name(name, "structure name", path)
    plain = [v for n, v in label_values.items() if n not in regions]
    dup_values = {v for v in plain if plain.count(v) > 1}
    if dup_values:
        raise DatasetError(f"{path}: several labels share the value(s) {sorted(dup_values)}")
    return label_values, regions, ignore_value
