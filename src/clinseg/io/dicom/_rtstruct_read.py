"""Reading an RTSTRUCT, around damage: what can be read is returned, what cannot is said.

:func:`read_rtstruct` reads what it can: a contour with ``ContourData`` that is missing,
not numbers, not a multiple of 3 values or not finite makes its ROI *damaged* (``Roi.damage``: a mask
missing a slice would be a wrong reference); a contour with fewer than 3 points encloses nothing and is
ignored (``Roi.notes``); problems that belong to no single ROI (a sequence pydicom cannot parse, a
``ROIContourSequence`` item without ``ReferencedROINumber``, as a truncated file gives) are listed in
``StructureSet.problems``. pydicom reads a truncated file without complaint and cuts its last values, so
the checks look for what truncation leaves: an item without its ``ReferencedROINumber`` (which follows
the contours in the item), declared ROIs without contours in a file without ``RTROIObservationsSequence``.

Names read here become file names only after :func:`clinseg.io.dicom.importer.sanitise_structure_name` or
the names mapping; an empty or missing ``ROIName`` is ``ROI_<number>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from clinseg.errors import ImageReadError
from clinseg.io.dicom._damage import describe, text


@dataclass(frozen=True)
class Roi:
    """One ROI of a structure set: number, name, display colour (RGB) and contours ``(P, 3)`` in mm.

    ``notes`` say what was ignored while reading (contours with fewer than 3 points); ``damage`` says why the
    ROI cannot be used (unreadable or incomplete contours), None when it is intact.
    """

    number: int
    name: str
    colour: tuple[int, int, int] | None
    contours: tuple[np.ndarray, ...]
    notes: tuple[str, ...] = ()
    damage: str | None = None


@dataclass(frozen=True)
class StructureSet:
    """A parsed RTSTRUCT: the series and instances it references, its ROIs and damage tied to no one ROI."""

    path: Path
    frame_of_reference_uid: str
    referenced_series_uids: tuple[str, ...]
    referenced_instance_uids: tuple[str, ...]
    rois: tuple[Roi, ...]
    problems: tuple[str, ...] = ()


def read_rtstruct(path: str | os.PathLike[str]) -> StructureSet:
    """Parse an RTSTRUCT file, reading around damage (see the module docstring).

    Raises :class:`~clinseg.errors.ImageReadError` naming the file when it is not a readable DICOM file or not
    an RTSTRUCT; any other damage is reported in the result, never raised.
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
        modality = text(ds, "Modality")
    except Exception as exc:
        raise ImageReadError(f"{path}: not a readable DICOM file ({describe(exc)})") from exc
    if modality != "RTSTRUCT":
        raise ImageReadError(f"{path}: not an RTSTRUCT (Modality {modality or '?'})")
    problems: list[str] = []
    frame_uid, series_uids, frame_instances = _references(ds, problems)
    names, doubled = _declared_rois(ds, problems)
    unreadable: list[str] = []
    items = _items(ds, "ROIContourSequence", unreadable)
    problems += unreadable
    rois, instances, orphans = [], [], []
    for k, item in enumerate(items, start=1):
        number, missing = _integer(item, "ReferencedROINumber")
        contours = _items(item, "ContourSequence", [])
        if number is None:
            orphans.append(k)
            problems.append(f"ROIContourSequence item {k} {missing} (a truncated file?): its {len(contours)} "
                            "contour(s) belong to no ROI")
            continue
        roi, refs = _roi(item, number, names.get(number, f"ROI_{number}"))
        if number in doubled:
            roi = replace(roi, damage=doubled[number])
        rois.append(roi)
        instances += refs
    listed = {r.number for r in rois}
    lost = _lost_contours(ds, orphans, unreadable)
    rois += [Roi(n, name, None, (), (), doubled.get(n, lost)) for n, name in names.items() if n not in listed]
    return StructureSet(path, frame_uid, tuple(dict.fromkeys(series_uids)),
                        tuple(dict.fromkeys(instances + frame_instances)),
                        tuple(sorted(rois, key=lambda r: r.number)), tuple(problems))


def _items(ds: Dataset, keyword: str, problems: list[str]) -> list[Dataset]:
    """The items of sequence ``keyword`` (none when absent); a sequence pydicom cannot parse is a problem."""
    try:
        return list(ds.get(keyword) or [])
    except Exception as exc:  # pydicom parses sequences lazily: a cut sequence raises here
        problems.append(f"{keyword} cannot be read ({describe(exc)}; a truncated file?)")
        return []


def _integer(item: Dataset, keyword: str) -> tuple[int | None, str]:
    """``(value, "")``, or ``(None, why)`` when ``keyword`` is absent or not an integer."""
    if keyword not in item:
        return None, f"has no {keyword}"
    value = text(item, keyword)
    try:
        return int(value), ""
    except ValueError:
        return None, f"has an unreadable {keyword} ({value!r})"


def _references(ds: Dataset, problems: list[str]) -> tuple[str, list[str], list[str]]:
    """Frame of reference UID, referenced series UIDs and the image instances listed with them."""
    frame_uid, series_uids, instances = "", [], []
    for frame in _items(ds, "ReferencedFrameOfReferenceSequence", problems):
        frame_uid = frame_uid or text(frame, "FrameOfReferenceUID")
        for study in _items(frame, "RTReferencedStudySequence", problems):
            for series in _items(study, "RTReferencedSeriesSequence", problems):
                if uid := text(series, "SeriesInstanceUID"):
                    series_uids.append(uid)
                instances += [u for image in _items(series, "ContourImageSequence", problems)
                              if (u := text(image, "ReferencedSOPInstanceUID"))]
    return frame_uid, series_uids, instances


def _declared_rois(ds: Dataset, problems: list[str]) -> tuple[dict[int, str], dict[int, str]]:
    """ROI number -> name from ``StructureSetROISequence``, and the numbers declared twice -> why unusable."""
    names: dict[int, str] = {}
    doubled: dict[int, str] = {}
    for k, item in enumerate(_items(ds, "StructureSetROISequence", problems), start=1):
        number, missing = _integer(item, "ROINumber")
        if number is None:
            problems.append(f"StructureSetROISequence item {k} {missing}: that ROI is ignored")
            continue
        name = text(item, "ROIName") or f"ROI_{number}"
        if number in names:
            doubled[number] = (f"ROI number {number} is declared twice ({names[number]!r}, {name!r}): "
                               "which contours belong to which is unknown")
            continue
        names[number] = name
    return names, doubled


def _lost_contours(ds: Dataset, orphans: list[int], unreadable: list[str]) -> str | None:
    """Why a declared ROI without a ``ROIContourSequence`` item may have lost its contours (None: never drawn)."""
    if orphans:
        items = ", ".join(str(k) for k in orphans)
        return (f"its contours cannot be found: ROIContourSequence item{'s' if len(orphans) > 1 else ''} {items} "
                f"{'have' if len(orphans) > 1 else 'has'} no ReferencedROINumber (a truncated file?)")
    if unreadable:
        return f"its contours cannot be found: {unreadable[0]}"
    if "RTROIObservationsSequence" not in ds:
        return ("no contours, and the file has no RTROIObservationsSequence, which follows them: a truncated "
                "file?")
    return None


def _roi(item: Dataset, number: int, name: str) -> tuple[Roi, list[str]]:
    """The ROI of one ``ROIContourSequence`` item and the image instances its contours reference."""
    problems: list[str] = []
    contours, short, damage, instances = [], [], [], []
    for k, contour in enumerate(_items(item, "ContourSequence", problems), start=1):
        instances += [u for image in _items(contour, "ContourImageSequence", []) if
                      (u := text(image, "ReferencedSOPInstanceUID"))]
        if (text(contour, "ContourGeometricType") or "CLOSED_PLANAR") != "CLOSED_PLANAR":
            continue  # POINT / OPEN_PLANAR contours enclose no volume
        points, problem = _points(contour)
        if problem:
            damage.append(f"contour {k}: {problem}")
        elif len(points) < 3:
            short.append(k)
        else:
            contours.append(points)
    notes = ()
    if short:
        s = "s" if len(short) > 1 else ""
        notes = (f"{len(short)} contour{s} with fewer than 3 points ignored (contour{s} "
                 f"{', '.join(str(k) for k in short)})",)
    return Roi(number, name, _colour(item), tuple(contours), notes, "; ".join(problems + damage) or None), instances


def _points(contour: Dataset) -> tuple[np.ndarray, str]:
    """``ContourData`` as ``(P, 3)`` mm, or an empty array and why it cannot be used."""
    none = np.zeros((0, 3))
    if "ContourData" not in contour:
        return none, "no ContourData"
    try:
        raw = contour.ContourData
        values = [float(v) for v in ([raw] if isinstance(raw, (str, bytes, int, float)) else raw)]
    except Exception:  # a value that is not a number
        return none, "ContourData holds a value that is not a number"
    if len(values) % 3:
        return none, f"ContourData holds {len(values)} values, not a multiple of 3 (a truncated file?)"
    points = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(points).all():
        return none, "ContourData holds NaN or infinite coordinates"
    return points, ""


def _colour(item: Dataset) -> tuple[int, int, int] | None:
    """``ROIDisplayColor`` as RGB 0-255, or None when absent or not three such numbers."""
    try:
        raw = item.get("ROIDisplayColor")
        values = tuple(int(v) for v in raw) if raw is not None else ()
    except Exception:
        return None
    return values if len(values) == 3 and all(0 <= v <= 255 for v in values) else None  # type: ignore[return-value]
