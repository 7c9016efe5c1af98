"""RTSTRUCT (RT Structure Set) read, rasterise and write, with pydicom and scikit-image.

Decision: no RTSTRUCT library. ``rt-utils`` (the usual choice) requires ``opencv-python``, whose GUI build
needs libGL at import on a headless CI machine, and a package cannot declare "the headless wheel instead":
``pip install clinseg`` would pull the GUI one. Contours are therefore written with pydicom and
``skimage.measure.find_contours`` and read back with ``skimage.draw.polygon`` (scikit-image and pydicom are
dependencies anyway); the code is small and the round trip is tested.

Conventions
-----------
* **Filling (even-odd rule).** The closed planar contours of one ROI on one slice are filled and combined
  with XOR: a contour inside another cuts a hole, a contour inside the hole is an island again. This is the
  convention of the common treatment planning systems for holes and several contours per slice.
* **Pixel centres.** A voxel belongs to the mask when its centre lies inside the polygon. Written contours
  run along the voxel edges of the mask (``find_contours`` at level 0.5, through the midpoints between
  voxel centres, corners cut diagonally), so mask -> RTSTRUCT -> mask gives back the mask.
* **Slices.** A contour is assigned to the slice nearest its mean position along the slice normal; points
  are in mm (LPS), as ``ContourData`` requires. A contour whose nearest slice lies outside the volume is
  ignored (:func:`contours_off_grid` lists them).
* **Damaged files.** :func:`read_rtstruct` reads around damage and reports it (``Roi.damage``,
  ``Roi.notes``, ``StructureSet.problems``); see :mod:`clinseg.io.dicom._rtstruct_read`.
* **Written structure sets** type every ROI from its name (``RTROIInterpretedType`` ORGAN, PTV, CTV, GTV,
  EXTERNAL, AVOIDANCE or CONTROL, :func:`clinseg.io.dicom.codes.roi_interpreted_type`), name clinseg and the
  run (:class:`~clinseg.io.dicom.provenance.Provenance`), and leave out an empty mask: an ROI without a
  ``ContourSequence`` is valid DICOM but common readers fail on it (rt-utils 1.2.7 raises an
  ``AttributeError``), so :func:`write_rtstruct` omits it and :func:`empty_structures` tells which.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from skimage.draw import polygon as fill_polygon
from skimage.measure import approximate_polygon, find_contours

from clinseg.io.atomic import atomic_path
from clinseg.io.dicom._rtstruct_read import Roi, StructureSet, read_rtstruct
from clinseg.io.dicom.codes import roi_interpreted_type
from clinseg.io.dicom.provenance import Provenance
from clinseg.io.dicom.series import Series
from clinseg.io.image import Geometry

__all__ = ["Roi", "StructureSet", "contour_slices", "contours_off_grid", "empty_structures", "mask_to_contours",
           "rasterise", "read_rtstruct", "write_rtstruct"]

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"


def _to_index(points: np.ndarray, geometry: Geometry) -> np.ndarray:
    """``(P, 3)`` LPS mm -> continuous voxel indices ``(P, 3)`` as ``(x, y, z)``."""
    direction = np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)
    offset = points - np.asarray(geometry.origin)
    return np.linalg.solve(direction, offset.T).T / np.asarray(geometry.spacing)


def _to_physical(index: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Continuous voxel indices ``(P, 3)`` as ``(x, y, z)`` -> LPS mm."""
    direction = np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)
    return np.asarray(geometry.origin) + (index * np.asarray(geometry.spacing)) @ direction.T


def contour_slices(contours: Sequence[np.ndarray], geometry: Geometry) -> np.ndarray:
    """The slice index (array Z) each contour ``(P, 3)`` mm is filled on: the slice nearest its mean position.

    Indices may lie outside ``[0, Z)`` for contours off the volume (-1 for one too far to count); ``(N,)`` int64.
    """
    centres = [float(_to_index(points, geometry)[:, 2].mean()) for points in contours]
    return np.asarray([round(z) if abs(z) < 2**62 else -1 for z in centres], dtype=np.int64)


def contours_off_grid(contours: Sequence[np.ndarray], geometry: Geometry) -> list[float]:
    """Positions (mm along the slice normal) of the contours :func:`rasterise` ignores: off the volume."""
    slices = contour_slices(contours, geometry)
    normal = np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)[:, 2]
    return [float(normal @ points.mean(axis=0)) for points, z in zip(contours, slices)
            if not 0 <= z < geometry.shape[0]]


def rasterise(contours: Sequence[np.ndarray], geometry: Geometry) -> np.ndarray:
    """Fill closed planar contours (each ``(P, 3)`` mm) on the grid of ``geometry``: ``(Z, Y, X)`` uint8.

    Contours of one slice are combined with the even-odd rule (XOR), so inner contours are holes. Contours
    off the volume (beyond half a slice, :func:`contours_off_grid`) are ignored.
    """
    shape = tuple(int(s) for s in geometry.shape)
    mask = np.zeros(shape, dtype=bool)
    for points, z in zip(contours, contour_slices(contours, geometry)):
        if not 0 <= z < shape[0]:
            continue
        index = _to_index(points, geometry)
        rr, cc = fill_polygon(index[:, 1], index[:, 0], shape=shape[1:])
        plane = np.zeros(shape[1:], dtype=bool)
        plane[rr, cc] = True
        mask[z] ^= plane
    return mask.astype(np.uint8)


def mask_to_contours(mask: np.ndarray, geometry: Geometry) -> list[tuple[int, np.ndarray]]:
    """Closed contours of a ``(Z, Y, X)`` binary mask: ``(slice index, (P, 3) points in mm)``.

    Each slice is zero-padded so that objects touching the border give closed contours; collinear points
    are dropped (``approximate_polygon`` with a tolerance of 1/100 voxel).
    """
    out = []
    for z in np.flatnonzero(np.asarray(mask).reshape(mask.shape[0], -1).any(axis=1)):
        plane = np.pad(np.asarray(mask[z]) > 0, 1).astype(np.float32)
        for contour in find_contours(plane, 0.5):
            contour = approximate_polygon(contour, tolerance=0.01)[:-1] - 1.0  # closed: drop the repeat
            if len(contour) < 3:
                continue
            index = np.column_stack([contour[:, 1], contour[:, 0], np.full(len(contour), float(z))])
            out.append((int(z), _to_physical(index, geometry)))
    return out


def _copy(source: Dataset, target: Dataset, keywords: Sequence[str]) -> None:
    for keyword in keywords:
        if keyword in source:
            setattr(target, keyword, getattr(source, keyword))
        else:
            setattr(target, keyword, "")


def empty_structures(masks: np.ndarray, names: Sequence[str]) -> list[str]:
    """The names of the ``(N, Z, Y, X)`` masks that hold no voxel: :func:`write_rtstruct` leaves them out."""
    masks = np.asarray(masks)
    return [str(name) for n, name in enumerate(names) if not masks[n].any()]


def write_rtstruct(path: str | os.PathLike[str], masks: np.ndarray, names: Sequence[str],
                   colours: Sequence[tuple[int, int, int]], series: Series, *, label: str = "clinseg",
                   series_number: int = 901, provenance: Provenance | None = None) -> str:
    """Write ``(N, Z, Y, X)`` masks as an RTSTRUCT referencing ``series``; returns its SOP Instance UID.

    Masks lie on the series grid (``series.geometry``); ``names[n]``/``colours[n]`` (RGB 0-255) label mask
    ``n``, ROI numbers follow the mask order. Every contour references its slice (ContourImageSequence); an
    empty mask is left out (:func:`empty_structures` lists them). Patient and study attributes are copied
    from the series; ``provenance`` names the run; the file is written atomically.
    """
    masks = np.asarray(masks)
    geometry = series.geometry
    if masks.shape[1:] != tuple(geometry.shape):
        raise ValueError(f"masks of shape {masks.shape[1:]} do not lie on the series grid {geometry.shape}")
    who = provenance or Provenance()
    first, now = series.first, _dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_SOP_CLASS, generate_uid()
    _copy(first, ds, ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                      "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
                      "FrameOfReferenceUID"))
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), series_number
    ds.SeriesDescription, ds.OperatorsName = who.series_description(), ""
    ds.Manufacturer, ds.ManufacturerModelName = who.manufacturer, who.model_name
    ds.SoftwareVersions = who.software_versions
    ds.InstanceNumber = 1
    ds.StructureSetLabel, ds.StructureSetName = label[:16], label[:64]
    ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.ContentDate, ds.ContentTime = ds.StructureSetDate, ds.StructureSetTime

    contour_images = [_image_ref(s) for s in series.slices]
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = series.uid
    ref_series.ContourImageSequence = DicomSequence(contour_images)
    ref_study = Dataset()
    ref_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired, usual)
    ref_study.ReferencedSOPInstanceUID = str(getattr(first, "StudyInstanceUID", ""))
    ref_study.RTReferencedSeriesSequence = DicomSequence([ref_series])
    frame = Dataset()
    frame.FrameOfReferenceUID = series.frame_of_reference_uid
    frame.RTReferencedStudySequence = DicomSequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])

    roi_items, contour_items, observations = [], [], []
    for n, name in enumerate(names):
        contours = [_contour(series, z, points) for z, points in mask_to_contours(masks[n], geometry)]
        if not contours:  # an ROI without ContourSequence breaks common readers: leave it out
            continue
        number = n + 1
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, series.frame_of_reference_uid
        roi.ROIName, roi.ROIGenerationAlgorithm = str(name), "AUTOMATIC"
        roi.ROIGenerationDescription = who.series_description()
        roi_items.append(roi)
        item = Dataset()
        item.ReferencedROINumber, item.ROIDisplayColor = number, [int(c) for c in colours[n]]
        item.ContourSequence = DicomSequence(contours)
        contour_items.append(item)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType, obs.ROIInterpreter = roi_interpreted_type(str(name)), ""
        observations.append(obs)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(observations)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return str(ds.SOPInstanceUID)


def _contour(series: Series, z: int, points: np.ndarray) -> Dataset:
    """One closed planar contour ``(P, 3)`` mm on slice ``z`` of ``series``."""
    contour = Dataset()
    contour.ContourImageSequence = DicomSequence([_image_ref(series.slices[z])])
    contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
    contour.ContourData = [f"{v:.4f}" for v in points.ravel()]
    return contour


def _image_ref(slice_header: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = slice_header.SOPClassUID
    ref.ReferencedSOPInstanceUID = slice_header.SOPInstanceUID
    return ref

