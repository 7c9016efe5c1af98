"""Find DICOM image series, structure sets and segmentations in a folder tree and build volumes.

Files may lie in any order and folder structure, mixing patients, studies and series: :func:`scan_folder`
reads every file's header (no pixel data), groups image slices by ``SeriesInstanceUID`` and collects the
RTSTRUCT and SEG objects; what it cannot use is listed with the reason. :func:`read_series` stacks the
slices of one series into a ``(Z, Y, X)`` volume with its :class:`~clinseg.io.image.Geometry`.

Geometry follows ITK (LPS, the DICOM patient coordinate system): the direction's columns are the row
cosine (array X), the column cosine (array Y) and the slice normal (array Z); slices are sorted by their
position along that normal, the origin is the first slice's ``ImagePositionPatient``, the X spacing is
``PixelSpacing[1]`` (between columns), Y is ``PixelSpacing[0]`` (between rows), Z is the distance
between consecutive slice positions (not ``SliceThickness``, which may differ from it).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from clinseg.errors import ImageReadError
from clinseg.io.image import Geometry, Image

#: Relative tolerance on slice spacing: slices further from a regular grid make the series unusable.
SPACING_TOLERANCE = 0.01
_IMAGE_MODALITIES = ("CT", "MR", "PT", "NM", "US", "OT", "CBCT", "RTIMAGE")


@dataclass
class Series:
    """One image series: its slice headers sorted along the slice normal, and the files they came from."""

    uid: str
    slices: list[Dataset]
    files: list[Path]

    @property
    def first(self) -> Dataset:
        return self.slices[0]

    @property
    def modality(self) -> str:
        return str(getattr(self.first, "Modality", "OT"))

    @property
    def patient_id(self) -> str:
        return str(getattr(self.first, "PatientID", "") or "")

    @property
    def frame_of_reference_uid(self) -> str:
        return str(getattr(self.first, "FrameOfReferenceUID", "") or "")

    @property
    def sop_instance_uids(self) -> list[str]:
        """The slices' SOP Instance UIDs in array order (Z)."""
        return [str(s.SOPInstanceUID) for s in self.slices]

    @property
    def geometry(self) -> Geometry:
        return series_geometry(self.slices, self.uid)


@dataclass
class ScanResult:
    """What :func:`scan_folder` found: image series by UID, RTSTRUCT and SEG files, skipped files and why."""

    series: dict[str, Series] = field(default_factory=dict)
    rtstructs: list[Path] = field(default_factory=list)
    segs: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def series_of_instance(self, sop_instance_uid: str) -> Series | None:
        """The series holding the slice ``sop_instance_uid`` (None when no scanned series does)."""
        for series in self.series.values():
            if sop_instance_uid in series.sop_instance_uids:
                return series
        return None


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts with the DICOM preamble and ``DICM`` magic (Part 10 file)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def contains_dicom(folder: str | os.PathLike[str]) -> bool:
    """True when the folder tree holds at least one DICOM Part 10 file."""
    return any(p.is_file() and is_dicom_file(p) for p in Path(folder).rglob("*"))


def scan_folder(folder: str | os.PathLike[str]) -> ScanResult:
    """Read the headers of every file under ``folder`` and group them (see the module docstring).

    Image series whose slices disagree (orientation, size, pixel spacing), repeat a position or are not
    evenly spaced are skipped, each of their files listed with the reason. Raises
    :class:`~clinseg.errors.ImageReadError` when ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: DICOM folder not found")
    result = ScanResult()
    slices: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types for non-DICOM or corrupt files
            result.skipped.append((path, f"not a readable DICOM file ({type(exc).__name__})"))
            continue
        modality = str(getattr(ds, "Modality", ""))
        if modality == "RTSTRUCT":
            result.rtstructs.append(path)
        elif modality == "SEG":
            result.segs.append(path)
        elif "DirectoryRecordSequence" in ds:
            result.skipped.append((path, "DICOMDIR index (the files it lists are read directly)"))
        elif int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            result.skipped.append((path, f"multi-frame {modality or 'image'} is not supported"))
        elif not all(k in ds for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows")):
            what = f"modality {modality}" if modality and modality not in _IMAGE_MODALITIES else "image"
            result.skipped.append((path, f"{what} without a patient-space grid (not a volume slice)"))
        elif "SeriesInstanceUID" not in ds or "SOPInstanceUID" not in ds:
            result.skipped.append((path, "no SeriesInstanceUID/SOPInstanceUID"))
        else:
            slices[str(ds.SeriesInstanceUID)].append((path, ds))
    for uid, items in slices.items():
        try:
            ordered = _sort_slices(items, uid)
        except ImageReadError as exc:
            result.skipped.extend((path, str(exc)) for path, _ in items)
            continue
        result.series[uid] = Series(uid, [ds for _, ds in ordered], [path for path, _ in ordered])
    return result


def _normal(ds: Dataset) -> np.ndarray:
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    return np.cross(iop[:3], iop[3:])


def _sort_slices(items: list[tuple[Path, Dataset]], uid: str) -> list[tuple[Path, Dataset]]:
    """Sort slices along the normal; check that they form one regular grid (raises ImageReadError)."""
    first = items[0][1]
    iop0 = np.asarray([float(v) for v in first.ImageOrientationPatient])
    for path, ds in items:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], iop0, atol=1e-4):
            raise ImageReadError(f"series {uid}: slices with different orientations ({path.name})")
        if (int(ds.Rows), int(ds.Columns)) != (int(first.Rows), int(first.Columns)):
            raise ImageReadError(f"series {uid}: slices of different sizes ({path.name})")
        if not np.allclose([float(v) for v in ds.PixelSpacing], [float(v) for v in first.PixelSpacing], rtol=1e-4):
            raise ImageReadError(f"series {uid}: slices with different pixel spacings ({path.name})")
    normal = _normal(first)
    keyed = sorted(items, key=lambda item: float(np.dot(normal, [float(v) for v in item[1].ImagePositionPatient])))
    positions = np.asarray([np.dot(normal, [float(v) for v in ds.ImagePositionPatient]) for _, ds in keyed])
    gaps = np.diff(positions)
    if gaps.size and gaps.min() < 1e-4:
        dup = keyed[int(np.argmin(gaps)) + 1][0]
        raise ImageReadError(f"series {uid}: two slices at the same position ({dup.name})")
    if gaps.size and np.abs(gaps - np.median(gaps)).max() > SPACING_TOLERANCE * np.median(gaps) + 1e-3:
        raise ImageReadError(f"series {uid}: unevenly spaced slices (gaps {gaps.min():.3g}..{gaps.max():.3g} mm; "
                             "missing slices?)")
    return keyed


def series_geometry(slices: list[Dataset], uid: str = "") -> Geometry:
    """The :class:`Geometry` of sorted slice headers (see the module docstring for the conventions)."""
    first = slices[0]
    iop = np.asarray([float(v) for v in first.ImageOrientationPatient])
    row, col, normal = iop[:3], iop[3:], _normal(first)
    if len(slices) > 1:
        positions = [np.dot(normal, [float(v) for v in ds.ImagePositionPatient]) for ds in slices]
        dz = float(np.median(np.diff(positions)))
    else:
        dz = float(getattr(first, "SpacingBetweenSlices", None) or getattr(first, "SliceThickness", None) or 1.0)
    dy, dx = (float(v) for v in first.PixelSpacing)
    direction = np.stack([row, col, normal], axis=1)  # columns: array X, Y, Z axes
    return Geometry(
        spacing=(dx, dy, dz),
        origin=tuple(float(v) for v in first.ImagePositionPatient),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in direction.ravel()),
        shape=(len(slices), int(first.Rows), int(first.Columns)),
    )


def read_series(series: Series) -> Image:
    """Read the pixel data of a series as a ``(Z, Y, X)`` volume in modality units (Rescale applied).

    The array is int16/int32 when slope and intercept keep the values integral (CT in HU), else float32.
    Raises :class:`~clinseg.errors.ImageReadError` naming the file whose pixels cannot be decoded.
    """
    planes, integral = [], True
    for path in series.files:
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
        except Exception as exc:
            raise ImageReadError(f"{path}: cannot decode the pixel data ({type(exc).__name__}: {exc})") from exc
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
        integral &= slope.is_integer() and intercept.is_integer()
        planes.append(pixels.astype(np.float64) * slope + intercept)
    volume = np.stack(planes)
    if integral:
        info = np.iinfo(np.int16)
        volume = volume.astype(np.int16 if info.min <= volume.min() and volume.max() <= info.max else np.int32)
    else:
        volume = volume.astype(np.float32)
    return Image(volume, series.geometry)


def case_ids(series: list[Series]) -> dict[str, str]:
    """Case ids for image series: ``<PatientID>_<SeriesNumber>``, sanitised, unique; series UID -> case id.

    Characters other than letters, digits, ``-`` and ``.`` become ``-``; a missing PatientID is ``anon``
    and a missing SeriesNumber ``s``. When two series would get the same id (two studies of a patient
    with the same series number), the ones after the first in SeriesInstanceUID order get ``-2``, ``-3`` …
    """
    ids: dict[str, str] = {}
    used: dict[str, int] = {}
    for s in sorted(series, key=lambda s: s.uid):
        number = getattr(s.first, "SeriesNumber", None)
        base = f"{_sanitise(s.patient_id) or 'anon'}_{_sanitise(str(number)) if number not in (None, '') else 's'}"
        used[base] = used.get(base, 0) + 1
        ids[s.uid] = base if used[base] == 1 else f"{base}-{used[base]}"
    return ids


def _sanitise(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]+", "-", text.strip()).strip("-.")
