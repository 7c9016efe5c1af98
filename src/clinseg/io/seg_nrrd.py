"""3D Slicer segmentations (``.seg.nrrd``): overlapping structures in one file, named and coloured.

The format is a plain NRRD image with custom header fields, as 3D Slicer writes it (Slicer developer guide,
"Segmentation labelmap file format"; the ``slicerio`` package reads it): segments that do not overlap share
a 3D label map (a *layer*), each with its own ``LabelValue``; overlapping segments go to further layers,
stored as a 4D image whose first axis (``kinds: list``) is the layer. Per segment ``N``:
``SegmentN_ID``, ``SegmentN_Name``, ``SegmentN_Color`` (RGB 0-1), ``SegmentN_LabelValue``,
``SegmentN_Layer``, ``SegmentN_Extent`` (voxel bounding box ``i0 i1 j0 j1 k0 k1``, ``0 -1 0 -1 0 -1`` when
empty), ``SegmentN_Tags`` (status and the SNOMED CT terminology of
:func:`clinseg.io.dicom.codes.slicer_terminology`); for the whole: ``Segmentation_MasterRepresentation``
``Binary labelmap``, ``Segmentation_ContainedRepresentationNames`` and
``Segmentation_ReferenceImageExtentOffset`` ``0 0 0``. Geometry is LPS (``space origin``, ``space
directions`` = direction cosines x spacing), the grid of the image the masks lie on, so the file opens
aligned with it. The header is written here (no NRRD library needed) with gzip-compressed voxels;
:func:`read_seg_nrrd` reads it back with SimpleITK.

Examples
--------
>>> layers = write_seg_nrrd("case.seg.nrrd", masks, ["Brain", "Brainstem"], [(250, 250, 225), (0, 145, 30)],
...                         geometry)   # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from clinseg.errors import ImageReadError
from clinseg.io.atomic import write_bytes
from clinseg.io.dicom.codes import slicer_terminology
from clinseg.io.image import Geometry

#: Voxel values per layer: ``uint8`` holds 255 segments per layer.
_MAX_PER_LAYER = 255


@dataclass(frozen=True)
class Segment:
    """One segment read from a ``.seg.nrrd``: name, RGB colour (0-255), layer, label value and its mask
    ``(Z, Y, X)`` uint8."""

    name: str
    colour: tuple[int, int, int]
    layer: int
    label_value: int
    mask: np.ndarray


def assign_layers(masks: np.ndarray) -> list[tuple[int, int]]:
    """``(layer, label value)`` per mask of ``(N, Z, Y, X)``: each mask goes to the first layer where it
    overlaps no mask already there (greedy, in order), label values 1, 2, … within a layer.

    Examples
    --------
    >>> a = np.array([[[1, 1, 0]]]); b = np.array([[[0, 1, 1]]]); c = np.array([[[0, 0, 1]]])
    >>> assign_layers(np.stack([a, b, c]))
    [(0, 1), (1, 1), (0, 2)]
    """
    masks = np.asarray(masks) > 0
    occupied: list[np.ndarray] = []
    counts: list[int] = []
    result = []
    for mask in masks:
        for layer, taken in enumerate(occupied):
            if counts[layer] < _MAX_PER_LAYER and not np.any(taken & mask):
                break
        else:
            occupied.append(np.zeros(masks.shape[1:], dtype=bool))
            counts.append(0)
            layer = len(occupied) - 1
        occupied[layer] |= mask
        counts[layer] += 1
        result.append((layer, counts[layer]))
    return result


def _extent(mask: np.ndarray) -> str:
    """``i0 i1 j0 j1 k0 k1`` (x, y, z voxel indices, inclusive) of a ``(Z, Y, X)`` mask; empty: ``0 -1 …``."""
    if not mask.any():
        return "0 -1 0 -1 0 -1"
    bounds = []
    for axis in (2, 1, 0):  # x, y, z
        other = tuple(a for a in range(3) if a != axis)
        index = np.flatnonzero(mask.any(axis=other))
        bounds += [int(index[0]), int(index[-1])]
    return " ".join(str(b) for b in bounds)


def _vector(values: Sequence[float]) -> str:
    return "(" + ",".join(repr(float(v)) for v in values) + ")"


def _header(geometry: Geometry, layers: int, fields: dict[str, str]) -> bytes:
    shape_xyz = [int(geometry.shape[2]), int(geometry.shape[1]), int(geometry.shape[0])]
    direction = np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)
    axes = [_vector(direction[:, i] * geometry.spacing[i]) for i in range(3)]
    four = layers > 1
    lines = [
        "NRRD0004",
        "# Complete NRRD file format specification at:",
        "# http://teem.sourceforge.net/nrrd/format.html",
        "type: unsigned char",
        f"dimension: {4 if four else 3}",
        "space: left-posterior-superior",
        "sizes: " + " ".join(str(s) for s in ([layers] if four else []) + shape_xyz),
        "space directions: " + " ".join((["none"] if four else []) + axes),
        "kinds: " + " ".join((["list"] if four else []) + ["domain"] * 3),
        "encoding: gzip",
        "space origin: " + _vector(geometry.origin),
    ]
    lines += [f"{key}:={value}" for key, value in fields.items()]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def write_seg_nrrd(path: str | os.PathLike[str], masks: np.ndarray, names: Sequence[str],
                   colours: Sequence[tuple[int, int, int]], geometry: Geometry) -> list[tuple[int, int]]:
    """Write ``(N, Z, Y, X)`` masks on ``geometry``'s grid as one Slicer segmentation; returns each mask's
    ``(layer, label value)`` (:func:`assign_layers`). Written atomically.

    Parameters
    ----------
    path : the file (``<case>.seg.nrrd``).
    masks : ``(N, Z, Y, X)``, non-zero inside.
    names : one segment name per mask (no ``|`` or line breaks: clinseg's names never hold them).
    colours : one RGB colour (0-255) per mask.
    geometry : the grid the masks lie on (spacing, origin, direction in LPS).
    """
    masks = np.asarray(masks)
    if masks.ndim != 4 or masks.shape[1:] != tuple(geometry.shape):
        raise ValueError(f"masks of shape {masks.shape} do not lie on the grid {tuple(geometry.shape)}")
    if not len(names) == len(colours) == masks.shape[0]:
        raise ValueError(f"{masks.shape[0]} masks, {len(names)} names and {len(colours)} colours")
    for name in names:
        if any(c in str(name) for c in "|\n\r"):
            raise ValueError(f"segment name {name!r} holds '|' or a line break")
    placement = assign_layers(masks)
    layers = max((layer for layer, _ in placement), default=0) + 1
    voxels = np.zeros((*masks.shape[1:], layers), dtype=np.uint8)  # (Z, Y, X, layer): the layer varies fastest
    fields: dict[str, str] = {}
    for n, (name, (layer, value)) in enumerate(zip(names, placement)):
        inside = masks[n] > 0
        voxels[..., layer][inside] = value
        rgb = " ".join(f"{int(c) / 255:.6g}" for c in colours[n])
        fields.update({
            f"Segment{n}_Color": rgb, f"Segment{n}_ColorAutoGenerated": "0", f"Segment{n}_Extent": _extent(inside),
            f"Segment{n}_ID": f"Segment_{n + 1}", f"Segment{n}_LabelValue": str(value),
            f"Segment{n}_Layer": str(layer), f"Segment{n}_Name": str(name), f"Segment{n}_NameAutoGenerated": "0",
            f"Segment{n}_Tags": f"Segmentation.Status:completed|TerminologyEntry:{slicer_terminology(str(name))}|",
        })
    fields.update({"Segmentation_ContainedRepresentationNames": "Binary labelmap|",
                   "Segmentation_MasterRepresentation": "Binary labelmap",
                   "Segmentation_ReferenceImageExtentOffset": "0 0 0"})
    data = voxels if layers > 1 else voxels[..., 0]
    write_bytes(path, _header(geometry, layers, fields)
                + gzip.compress(np.ascontiguousarray(data).tobytes(), compresslevel=6))
    return placement


def read_seg_nrrd(path: str | os.PathLike[str]) -> tuple[list[Segment], Geometry]:
    """The segments of a ``.seg.nrrd`` (any Slicer writes, one layer or several) and their grid, read with
    SimpleITK; raises :class:`~clinseg.errors.ImageReadError` naming the file."""
    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: not a readable NRRD file ({str(exc).strip().splitlines()[-1]})") from exc
    array = sitk.GetArrayFromImage(image)  # (Z, Y, X) or (Z, Y, X, layers)
    if array.ndim == 3:
        array = array[..., None]
    size = image.GetSize()
    geometry = Geometry(tuple(float(v) for v in image.GetSpacing()), tuple(float(v) for v in image.GetOrigin()),  # type: ignore[arg-type]
                        tuple(float(v) for v in image.GetDirection()), (int(size[2]), int(size[1]), int(size[0])))
    segments = []
    n = 0
    while image.HasMetaDataKey(f"Segment{n}_LabelValue"):
        def field(key: str, n: int = n) -> str:
            return image.GetMetaData(f"Segment{n}_{key}") if image.HasMetaDataKey(f"Segment{n}_{key}") else ""

        layer, value = int(field("Layer") or 0), int(field("LabelValue"))
        colour = tuple(round(float(c) * 255) for c in (field("Color") or "0 0 0").split())
        if layer >= array.shape[-1]:
            raise ImageReadError(f"{path}: segment {n} lies on layer {layer}, the file holds {array.shape[-1]}")
        segments.append(Segment(field("Name") or f"Segment_{n + 1}", colour, layer, value,  # type: ignore[arg-type]
                                (array[..., layer] == value).astype(np.uint8)))
        n += 1
    return segments, geometry
