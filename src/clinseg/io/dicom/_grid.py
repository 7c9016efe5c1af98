"""Checks that the slices of one image series form one regular grid, and that no slice is truncated.

Used by :func:`clinseg.io.dicom.series.scan_folder`. Every problem is an
:class:`~clinseg.errors.ImageReadError` whose message names the slice file and says what is wrong, so a
rejected series can say why (a gap at which position, which two files share a position, which file is cut).
Positions (``z``) are in mm along the slice normal: the patient z for axial slices.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from clinseg.errors import ImageReadError
from clinseg.io.dicom._damage import text

#: Relative tolerance on slice spacing: slices further from a regular grid make the series unusable.
SPACING_TOLERANCE = 0.01
#: Tolerance on the unit length and orthogonality of the two ImageOrientationPatient cosines.
ORIENTATION_TOLERANCE = 0.01


@dataclass(frozen=True)
class Slice:
    """A slice file, its header (no pixel data) and why its pixel data is incomplete (None when complete)."""

    path: Path
    header: Dataset
    truncation: str | None


def read_header(path: Path) -> tuple[Dataset, str | None]:
    """The header of ``path`` without pixel data, and whether the pixel data after it is cut short."""
    with open(path, "rb") as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        truncation = _pixel_data_truncation(fh, ds, path.stat().st_size)
    return ds, truncation


#: Explicit-VR value representations with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}


def _pixel_data_truncation(fh: BinaryIO, ds: Dataset, size: int) -> str | None:
    """Why the pixel data element at the file position is incomplete, or None (also when it cannot tell).

    ``dcmread(stop_before_pixels=True)`` leaves the file at the pixel data element's tag, so its declared
    length can be compared with the bytes left in the file without reading the pixels. Encapsulated
    (compressed) pixel data has no declared length; it is checked when decoded.
    """
    start = fh.tell()
    head = fh.read(12)
    if len(head) < 8:
        return "has no pixel data (a truncated file?)"
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None or little is None:
        return None
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", head[:4])
    if group != 0x7FE0 or element not in (0x0008, 0x0009, 0x0010):
        return None
    if implicit:
        (length,), header = struct.unpack(order + "L", head[4:8]), 8
    elif head[4:6] in _LONG_VRS:
        if len(head) < 12:
            return "is truncated: it ends inside its pixel data header"
        (length,), header = struct.unpack(order + "L", head[8:12]), 12
    else:
        (length,), header = struct.unpack(order + "H", head[6:8]), 8
    available = size - start - header
    if length != 0xFFFFFFFF and available < length:
        return f"is truncated: its pixel data holds {max(available, 0)} of {length} bytes"
    return None


def _numbers(item: Slice, keyword: str, count: int) -> np.ndarray:
    """``count`` finite numbers from the header of ``item``; raises ImageReadError naming the file."""
    try:
        raw = item.header.get(keyword)
        values = [float(v) for v in ([raw] if raw is None or isinstance(raw, (str, bytes, int, float)) else raw)]
    except Exception:  # absent, or values that are not numbers
        values = []
    if len(values) != count or not np.all(np.isfinite(values)):
        raise ImageReadError(f"{item.path.name}: {keyword} is not {count} numbers ({text(item.header, keyword)!r})")
    return np.asarray(values, dtype=np.float64)


def _grid(item: Slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Orientation (6), position (3), pixel spacing (2) and (rows, columns) of a slice, checked."""
    iop = _numbers(item, "ImageOrientationPatient", 6)
    row, col = iop[:3], iop[3:]
    tol = ORIENTATION_TOLERANCE
    if abs(np.linalg.norm(row) - 1) > tol or abs(np.linalg.norm(col) - 1) > tol or abs(row @ col) > tol:
        values = ", ".join(f"{v:g}" for v in iop)
        raise ImageReadError(f"{item.path.name}: ImageOrientationPatient [{values}] is not two orthogonal "
                             "unit vectors")
    position = _numbers(item, "ImagePositionPatient", 3)
    spacing = _numbers(item, "PixelSpacing", 2)
    if not np.all(spacing > 0):
        raise ImageReadError(f"{item.path.name}: PixelSpacing must be two positive numbers")
    try:
        size = (int(item.header.Rows), int(item.header.Columns))
    except Exception:
        size = (0, 0)
    if min(size) <= 0:
        raise ImageReadError(f"{item.path.name}: Rows and Columns must be positive integers")
    return iop, position, spacing, size


def _mm(values: np.ndarray | list[float]) -> str:
    return ", ".join(f"{v:.6g}" for v in values)


def sort_slices(items: list[Slice]) -> list[Slice]:
    """Sort slices along the normal; check that they form one regular grid (raises ImageReadError saying why).

    Positions in the messages (``z``) are in mm along the slice normal (the patient z for axial slices).
    """
    grids = [_grid(item) for item in items]
    iop0, _, spacing0, size0 = grids[0]
    for item, (iop, _, spacing, size) in zip(items, grids):
        if not np.allclose(iop, iop0, atol=1e-4):
            raise ImageReadError(f"slices with different orientations ({item.path.name})")
        if size != size0:
            raise ImageReadError(f"slices of different sizes ({item.path.name})")
        if not np.allclose(spacing, spacing0, rtol=1e-4):
            raise ImageReadError(f"slices with different pixel spacings ({item.path.name})")
    normal = np.cross(iop0[:3], iop0[3:])
    along = np.asarray([float(normal @ position) for _, position, _, _ in grids])
    order = np.argsort(along, kind="stable")
    keyed, positions = [items[i] for i in order], along[order]
    gaps = np.diff(positions)
    if gaps.size and gaps.min() < 1e-4:
        i = int(np.argmin(gaps))
        pair = sorted([keyed[i], keyed[i + 1]], key=lambda item: item.path.name)
        cut = "".join(f"; {p.path.name} {p.truncation}" for p in pair if p.truncation)
        raise ImageReadError(f"two slices at the same position z = {_mm([positions[i]])} mm "
                             f"({pair[0].path.name}, {pair[1].path.name}{cut})")
    for item in keyed:
        if item.truncation:
            raise ImageReadError(f"{item.path.name} {item.truncation}")
    if gaps.size:
        usual = float(np.median(gaps))
        bad = np.flatnonzero(np.abs(gaps - usual) > SPACING_TOLERANCE * usual + 1e-3)
        if bad.size:
            where = ", ".join(f"{_mm([positions[i]])} to {_mm([positions[i + 1]])} mm" for i in bad[:3])
            more = f" and {bad.size - 3} more" if bad.size > 3 else ""
            sizes = "a gap of" if bad.size == 1 else "gaps of"
            raise ImageReadError(f"unevenly spaced slices at z = {where}{more} ({sizes} {_mm(gaps[bad[:3]])} mm; "
                                 f"the others are {usual:.4g} mm: missing slices?)")
    return keyed
