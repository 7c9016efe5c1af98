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

Damaged input never raises out of :func:`scan_folder`: a file that cannot be read, or whose header cannot be
used, is listed in ``skipped`` with the reason, and a series whose slices do not form one regular grid (a
gap, two slices at one position, a truncated slice, an unusable orientation or spacing) is listed in
``rejected`` with the reason, each of its files in ``skipped``.
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
from clinseg.io.dicom._damage import describe, text
from clinseg.io.dicom._grid import SPACING_TOLERANCE, Slice, read_header, sort_slices  # noqa: F401 (re-export)
from clinseg.io.image import Geometry, Image
from clinseg.names import check_name

#: Longest PatientID / SeriesNumber part of a case id (PatientID is at most 64 characters in DICOM).
_CASE_PART_LENGTH = (64, 16)
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
        return text(self.first, "Modality") or "OT"

    @property
    def description(self) -> str:
        """``SeriesDescription`` (empty when absent or not decodable)."""
        return text(self.first, "SeriesDescription")

    @property
    def patient_id(self) -> str:
        return text(self.first, "PatientID")

    @property
    def frame_of_reference_uid(self) -> str:
        return text(self.first, "FrameOfReferenceUID")

    @property
    def sop_instance_uids(self) -> list[str]:
        """The slices' SOP Instance UIDs in array order (Z)."""
        return [text(s, "SOPInstanceUID") for s in self.slices]

    @property
    def geometry(self) -> Geometry:
        return series_geometry(self.slices, self.uid)


@dataclass
class ScanResult:
    """What :func:`scan_folder` found: image series by UID, RTSTRUCT and SEG files, skipped files and why.

    ``rejected`` maps the UID of each series whose slices do not form one regular grid to the reason;
    ``instances`` maps the SOP Instance UID of every grouped slice (usable or rejected series) to its series.
    """

    series: dict[str, Series] = field(default_factory=dict)
    rtstructs: list[Path] = field(default_factory=list)
    segs: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)

    def series_of_instance(self, sop_instance_uid: str) -> Series | None:
        """The usable series holding the slice ``sop_instance_uid`` (None when no usable series does)."""
        return self.series.get(self.instances.get(sop_instance_uid, ""))


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

    Image series whose slices disagree (orientation, size, pixel spacing), repeat a position, are not
    evenly spaced or hold a truncated slice are rejected, each of their files listed with the reason. Raises
    :class:`~clinseg.errors.ImageReadError` when ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(f"{folder}: DICOM folder not found")
    result = ScanResult()
    slices: dict[str, list[Slice]] = defaultdict(list)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds, truncation = read_header(path)
        except Exception as exc:  # pydicom raises many types for non-DICOM or corrupt files
            result.skipped.append((path, f"not a readable DICOM file ({type(exc).__name__})"))
            continue
        try:
            kind, reason = _classify(ds)
        except Exception as exc:  # a header whose values cannot be decoded
            kind, reason = "skipped", f"unreadable DICOM header ({describe(exc)})"
        if kind == "rtstruct":
            result.rtstructs.append(path)
        elif kind == "seg":
            result.segs.append(path)
        elif kind == "slice":
            uid = text(ds, "SeriesInstanceUID")
            result.instances[text(ds, "SOPInstanceUID")] = uid
            slices[uid].append(Slice(path, ds, truncation))
        else:
            result.skipped.append((path, reason))
    for uid, items in slices.items():
        try:
            ordered = sort_slices(items)
        except ImageReadError as exc:
            result.rejected[uid] = str(exc)
            result.skipped.extend((item.path, f"series {uid}: {exc}") for item in items)
            continue
        result.series[uid] = Series(uid, [item.header for item in ordered], [item.path for item in ordered])
    return result


def _classify(ds: Dataset) -> tuple[str, str]:
    """``("rtstruct" | "seg" | "slice", "")`` for a usable header, else ``("skipped", why)``."""
    modality = text(ds, "Modality")
    if modality == "RTSTRUCT":
        return "rtstruct", ""
    if modality == "SEG":
        return "seg", ""
    if "DirectoryRecordSequence" in ds:
        return "skipped", "DICOMDIR index (the files it lists are read directly)"
    if "SOPClassUID" not in ds and not modality:
        return "skipped", "not a DICOM object clinseg can use (no SOPClassUID or Modality)"
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return "skipped", f"multi-frame {modality or 'image'} is not supported"
    if not all(k in ds for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
                                 "Columns")):
        what = f"modality {modality}" if modality and modality not in _IMAGE_MODALITIES else "image"
        return "skipped", f"{what} without a patient-space grid (not a volume slice)"
    if not text(ds, "SeriesInstanceUID") or not text(ds, "SOPInstanceUID"):
        return "skipped", "no SeriesInstanceUID/SOPInstanceUID"
    return "slice", ""


def _normal(ds: Dataset) -> np.ndarray:
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    return np.cross(iop[:3], iop[3:])


def series_geometry(slices: list[Dataset], uid: str = "") -> Geometry:
    """The :class:`Geometry` of sorted slice headers (see the module docstring for the conventions)."""
    first = slices[0]
    iop = np.asarray([float(v) for v in first.ImageOrientationPatient])
    row, col, normal = iop[:3], iop[3:], _normal(first)
    if len(slices) > 1:
        positions = [np.dot(normal, [float(v) for v in ds.ImagePositionPatient]) for ds in slices]
        dz = float(np.median(np.diff(positions)))
    else:
        dz = _single_slice_spacing(first)
    dy, dx = (float(v) for v in first.PixelSpacing)
    direction = np.stack([row, col, normal], axis=1)  # columns: array X, Y, Z axes
    return Geometry(
        spacing=(dx, dy, dz),
        origin=tuple(float(v) for v in first.ImagePositionPatient),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in direction.ravel()),
        shape=(len(slices), int(first.Rows), int(first.Columns)),
    )


def _single_slice_spacing(ds: Dataset) -> float:
    """Z spacing of a one-slice series: ``SpacingBetweenSlices``, else ``SliceThickness``, else 1 mm."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            value = float(ds.get(keyword) or 0)
        except Exception:  # absent or not a number
            continue
        if np.isfinite(value) and value > 0:
            return value
    return 1.0


def read_series(series: Series) -> Image:
    """Read the pixel data of a series as a ``(Z, Y, X)`` volume in modality units (Rescale applied).

    The array is int16/int32 when slope and intercept keep the values integral (CT in HU), else float32.
    Raises :class:`~clinseg.errors.ImageReadError` naming the file whose pixels cannot be decoded or are not
    one grey-level plane of the series' size.
    """
    planes, integral = [], True
    shape = tuple(series.geometry.shape[1:])
    for path in series.files:
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
            slope = float(ds.get("RescaleSlope", 1) or 1)
            intercept = float(ds.get("RescaleIntercept", 0) or 0)
        except Exception as exc:
            raise ImageReadError(f"{path}: cannot decode the pixel data ({describe(exc)})") from exc
        if pixels.shape != shape:
            samples = text(ds, "SamplesPerPixel") or "?"
            raise ImageReadError(f"{path}: pixel data of shape {pixels.shape} with {samples} samples per pixel "
                                 f"where the series has {shape[0]} x {shape[1]} grey-level slices")
        if not (np.isfinite(slope) and np.isfinite(intercept)):
            raise ImageReadError(f"{path}: RescaleSlope/RescaleIntercept {slope}/{intercept} are not finite")
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

    Characters other than letters, digits, ``-`` and ``.`` become ``-`` (so ``../../x`` gives ``x``), leading
    and trailing ``-``/``.`` are dropped and the parts are cut to 64 and 16 characters; a missing PatientID
    is ``anon`` and a missing SeriesNumber ``s``. When two series would get the same id, ignoring case (two
    studies of a patient with the same series number, or ``p1`` and ``P1``, one folder on case-insensitive
    file systems), the ones after the first in SeriesInstanceUID order get ``-2``, ``-3`` … Every id passes
    :func:`clinseg.names.check_name`.
    """
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for s in sorted(series, key=lambda s: s.uid):
        patient = _sanitise(s.patient_id)[: _CASE_PART_LENGTH[0]].strip("-.") or "anon"
        number = _sanitise(text(s.first, "SeriesNumber"))[: _CASE_PART_LENGTH[1]].strip("-.") or "s"
        base = candidate = f"{patient}_{number}"
        copy = 1
        while candidate.lower() in taken:
            copy += 1
            candidate = f"{base}-{copy}"
        taken.add(candidate.lower())
        ids[s.uid] = check_name(candidate, "case id", s.files[0])
    return ids


def _sanitise(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]+", "-", value.strip()).strip("-.")
