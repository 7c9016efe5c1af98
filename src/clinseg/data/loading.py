"""Load one case into arrays: the image channels, the per-structure targets and the annotation mask.

This is where partial delineations become data: ``annotated[n]`` is False for a structure the case does
not delineate, which the masked multi-label loss turns into a class weight c_n = 0 (seed 000, Fig. 1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from clinseg.data.checks import (
    check_binary,
    check_finite,
    check_label_values,
    check_same_grid,
)
from clinseg.data.dataset import CaseRecord, DatasetSpec
from clinseg.errors import DatasetError, ImageReadError
from clinseg.io.image import Geometry, read_image

#: Target value of a voxel whose label is unknown (the same as :data:`clinseg.data.voxel_labels.UNKNOWN`).
UNKNOWN = 255

Normalization = Literal["zscore", "percentile", "median", "none"]


@dataclass
class CaseData:
    """Arrays of one case.

    Attributes
    ----------
    case_id : the case identifier.
    image : ``(C, Z, Y, X)`` float32 channels (normalised when requested).
    target : ``(N, Z, Y, X)`` uint8 binary masks, one per structure (all zero where not annotated).
    annotated : ``(N,)`` bool, which structures this case delineates.
    geometry : the image grid (spacing/origin in mm, ``(x, y, z)``).
    """

    case_id: str
    image: np.ndarray
    target: np.ndarray
    annotated: np.ndarray
    geometry: Geometry


def normalize_intensity(image: np.ndarray, scheme: Normalization = "zscore", median_scale: float = 100.0) -> np.ndarray:
    """Normalise each channel of a ``(C, Z, Y, X)`` image independently; returns a new float32 array.

    ``zscore`` subtracts the mean and divides by the standard deviation (nnU-Net's MRI scheme);
    ``percentile`` maps the 0.5th..99.5th percentiles to 0..1 (robust for CT and MR alike);
    ``median`` divides by the median of the non-zero voxels and multiplies by ``median_scale`` (seed 001
    §2.3.2, per patient and sequence: the median is less affected by the tumour than the mean; the seed's
    "fixed constant" has no stated value). The zero background of skull-stripped images stays zero and an
    all-zero channel (a missing sequence) stays all zero.
    """
    out = np.empty(image.shape, dtype=np.float32)
    for c in range(image.shape[0]):
        x = image[c].astype(np.float32, copy=False)
        if scheme == "zscore":
            out[c] = (x - x.mean()) / max(float(x.std()), 1e-6)
        elif scheme == "percentile":
            lo, hi = np.percentile(x, [0.5, 99.5])
            out[c] = (x - lo) / max(float(hi - lo), 1e-6)
        elif scheme == "median":
            nonzero = x[x != 0]
            median = float(np.median(nonzero)) if nonzero.size else 0.0
            out[c] = x * np.float32(median_scale / median) if abs(median) > 1e-12 else x
        elif scheme == "none":
            out[c] = x
        else:
            raise ValueError(f"unknown normalisation {scheme!r}")
    return out


def _raise_first(problems: list[str], exc: type[Exception] = DatasetError) -> None:
    if problems:
        raise exc(problems[0])


def load_image(record: CaseRecord, normalization: Normalization = "zscore") -> tuple[np.ndarray, Geometry]:
    """Read all channels of a case as ``(C, Z, Y, X)`` float32 with the grid of channel 0.

    Raises :class:`~clinseg.errors.ImageReadError` for a missing/unreadable file or NaN/Inf voxels and
    :class:`~clinseg.errors.DatasetError` when channels lie on different grids.
    """
    channels, geometry = [], None
    for path in record.images:
        img = read_image(path, dtype=np.float32)
        _raise_first(check_finite(img.array, path), ImageReadError)
        if geometry is None:
            geometry = img.geometry
        else:
            _raise_first(check_same_grid(geometry, record.images[0], img.geometry, path))
        channels.append(img.array)
    assert geometry is not None
    return normalize_intensity(np.stack(channels), normalization), geometry


def load_targets(record: CaseRecord, spec: DatasetSpec, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Build the ``(N, Z, Y, X)`` uint8 targets and the ``(N,)`` annotated mask of a case.

    A structure comes from its own mask file when there is one, else from the label map (value declared
    in ``dataset.json``, or any value of a region) when the label map annotates it. Voxels of the label map's
    ``ignore`` value are :data:`~clinseg.data.voxel_labels.UNKNOWN` (255) in every delineated structure.
    """
    n = spec.num_structures
    target = np.zeros((n, *geometry.shape), dtype=np.uint8)
    annotated = np.array([s in record.annotated for s in spec.structures], dtype=bool)
    ref_name = record.images[0]
    label_array = None
    if record.label_map is not None:
        img = read_image(record.label_map)
        _raise_first(check_finite(img.array, record.label_map), ImageReadError)
        _raise_first(check_same_grid(geometry, ref_name, img.geometry, record.label_map))
        _raise_first(check_label_values(img.array, spec.allowed_values, record.label_map))
        label_array = img.array
    for i, name in enumerate(spec.structures):
        if not annotated[i]:
            continue
        path = record.structure_files.get(name)
        if path is not None:
            img = read_image(path)
            _raise_first(check_finite(img.array, path), ImageReadError)
            _raise_first(check_same_grid(geometry, ref_name, img.geometry, path))
            _raise_first(check_binary(img.array, path))
            target[i] = img.array > 0
        elif label_array is not None:
            target[i] = np.isin(label_array, spec.values_of(name))
    if label_array is not None and spec.ignore_value is not None:
        unknown = label_array == spec.ignore_value
        if unknown.any():
            target[annotated] = np.where(unknown[None], np.uint8(UNKNOWN), target[annotated])
    return target, annotated


def load_case(
    record: CaseRecord, spec: DatasetSpec, *, normalization: Normalization = "zscore", labels: bool = True
) -> CaseData:
    """Read a case's image channels and (optionally) its targets; see :class:`CaseData`."""
    image, geometry = load_image(record, normalization)
    if labels:
        target, annotated = load_targets(record, spec, geometry)
    else:
        target = np.zeros((spec.num_structures, *geometry.shape), dtype=np.uint8)
        annotated = np.zeros(spec.num_structures, dtype=bool)
    return CaseData(record.case_id, image, target, annotated, geometry)


def keep_structures(case: CaseData, structures: Sequence[str], keep: Collection[str]) -> CaseData:
    """A copy of ``case`` in which only the delineations of ``keep`` remain.

    The others become *not delineated* (target zero, ``annotated`` False): exactly what a missing
    delineation is, so a study can remove references without touching the files (seed 000, Sec. 3).
    ``structures`` is the dataset's structure order (the rows of ``case.target``).
    """
    unknown = sorted(set(keep) - set(structures))
    if unknown:
        raise DatasetError(f"{case.case_id}: unknown structure(s) {unknown}")
    mask = np.array([s in keep for s in structures], dtype=bool)
    target = case.target * mask[:, None, None, None].astype(case.target.dtype)
    return dataclasses.replace(case, target=target, annotated=case.annotated & mask)

