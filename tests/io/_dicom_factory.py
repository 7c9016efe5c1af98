"""Synthetic DICOM for the tests: CT/MR series with realistic tags and RTSTRUCTs with hand-made contours.

Written independently of clinseg's own writer (plain pydicom datasets), so the importer is tested against
files it did not produce. Files get random names, so the folder order says nothing about the slice order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass
class SeriesInfo:
    """UIDs and grid of a written series (slices in Z order)."""

    patient_id: str
    study_uid: str
    series_uid: str
    frame_uid: str
    sop_uids: list[str]
    sop_class: str
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]
    shape: tuple[int, int, int]  # (Z, Y, X)
    files: list[Path]


def _save(ds: Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_series(folder: Path, volume: np.ndarray, *, spacing=(0.8, 0.9, 2.5), origin=(-12.0, -15.0, 30.0),
                 patient_id: str = "PAT001", series_number: int = 2, modality: str = "CT",
                 study_uid: str | None = None, frame_uid: str | None = None, seed: int = 0,
                 slope: float = 1.0, intercept: float = -1024.0) -> SeriesInfo:
    """Write a ``(Z, Y, X)`` volume (modality units) as one slice file per Z, under random file names.

    Axial orientation (identity direction), ``PixelSpacing = [y, x]``; stored values are
    ``(volume - intercept) / slope`` as uint16.
    """
    rng = np.random.default_rng(seed)
    study_uid, frame_uid = study_uid or generate_uid(), frame_uid or generate_uid()
    series_uid = generate_uid()
    sop_class = CT_IMAGE if modality == "CT" else MR_IMAGE
    stored = np.round((np.asarray(volume, dtype=np.float64) - intercept) / slope).astype(np.uint16)
    sop_uids, files = [], []
    for z in range(volume.shape[0]):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Head", patient_id, "19700101", "O"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study_uid, "20240101", "120000", "1"
        ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = modality, series_uid, series_number
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
        ds.Manufacturer, ds.InstanceNumber = "TestFactory", z + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [f"{v:.3f}" for v in (origin[0], origin[1], origin[2] + z * spacing[2])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.SliceLocation = origin[2] + z * spacing[2]
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        if modality == "CT":
            ds.RescaleType = "HU"
        ds.PixelData = stored[z].tobytes()
        path = folder / f"{rng.integers(1 << 40):012x}.dcm"
        _save(ds, path)
        sop_uids.append(str(ds.SOPInstanceUID))
        files.append(path)
    return SeriesInfo(patient_id, study_uid, series_uid, frame_uid, sop_uids, sop_class,
                      tuple(spacing), tuple(origin), tuple(volume.shape), files)  # type: ignore[arg-type]


def circle(info: SeriesInfo, z: int, centre_xy: tuple[float, float], radius_mm: float, points: int = 48,
           clockwise: bool = False) -> np.ndarray:
    """A closed planar circle on slice ``z`` in patient mm, ``(P, 3)``; centre in voxel indices (x, y)."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False) * (-1 if clockwise else 1)
    cx = info.origin[0] + centre_xy[0] * info.spacing[0]
    cy = info.origin[1] + centre_xy[1] * info.spacing[1]
    zz = info.origin[2] + z * info.spacing[2]
    return np.column_stack([cx + radius_mm * np.cos(t), cy + radius_mm * np.sin(t), np.full(points, zz)])


def write_rtstruct(path: Path, info: SeriesInfo, rois: dict[str, list[np.ndarray]], *,
                   referenced_series_uid: str | None = None, colours: dict[str, tuple[int, int, int]] | None = None) -> str:
    """An RTSTRUCT with one ROI per name (contours in mm) referencing ``info`` (or another series UID)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT, generate_uid()
    ds.PatientName, ds.PatientID = "Phantom^Head", info.patient_id
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = info.study_uid, "20240101", "120000"
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 99
    ds.Manufacturer, ds.StructureSetLabel = "TestTPS", "Clinical"
    ds.StructureSetDate, ds.StructureSetTime = "20240101", "120000"
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = referenced_series_uid or info.series_uid
    images = []
    for uid in info.sop_uids:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = info.sop_class, uid
        images.append(item)
    ref_series.ContourImageSequence = Sequence(images)
    ref_study = Dataset()
    ref_study.ReferencedSOPClassUID, ref_study.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.1", info.study_uid
    ref_study.RTReferencedSeriesSequence = Sequence([ref_series])
    frame = Dataset()
    frame.FrameOfReferenceUID = info.frame_uid
    frame.RTReferencedStudySequence = Sequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    roi_seq, contour_seq, obs_seq = [], [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, info.frame_uid, name
        roi.ROIGenerationAlgorithm = "MANUAL"
        roi_seq.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = list((colours or {}).get(name, (255, 0, 0)))
        items = []
        for points in contours:
            c = Dataset()
            z = round((points[0, 2] - info.origin[2]) / info.spacing[2])
            img = Dataset()
            img.ReferencedSOPClassUID, img.ReferencedSOPInstanceUID = info.sop_class, info.sop_uids[z]
            c.ContourImageSequence = Sequence([img])
            c.ContourGeometricType, c.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
            c.ContourData = [f"{v:.3f}" for v in points.ravel()]
            items.append(c)
        if items:
            item.ContourSequence = Sequence(items)
        contour_seq.append(item)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber, obs.RTROIInterpretedType = number, number, "ORGAN"
        obs.ROIInterpreter = ""
        obs_seq.append(obs)
    ds.StructureSetROISequence = Sequence(roi_seq)
    ds.ROIContourSequence = Sequence(contour_seq)
    ds.RTROIObservationsSequence = Sequence(obs_seq)
    _save(ds, path)
    return str(ds.SOPInstanceUID)


def phantom_volume(shape=(8, 32, 32), seed: int = 0) -> np.ndarray:
    """A CT-like ``(Z, Y, X)`` int volume in HU: air, a water cylinder, a bright ball, some noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    vol = np.full(shape, -1000.0)
    vol[np.broadcast_to(((y - shape[1] / 2) ** 2 + (x - shape[2] / 2) ** 2) < (shape[1] * 0.4) ** 2, shape)] = 0.0
    vol[((z - shape[0] / 2) ** 2 * 4 + (y - shape[1] / 2) ** 2 + (x - shape[2] / 3) ** 2) < 25] = 400.0
    return np.clip(np.round(vol + rng.normal(0, 10, shape)), -1024, 3000).astype(np.int16)


def ball(shape=(8, 32, 32), centre=(4, 16, 16), radii=(3, 8, 8)) -> np.ndarray:
    """A binary ellipsoid ``(Z, Y, X)`` with radii in voxels."""
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    d = sum(((a - c) / r) ** 2 for a, c, r in zip((z, y, x), centre, radii))
    return (d <= 1.0).astype(np.uint8)


def edit_dicom(path: Path, edit: Callable[[Dataset], object], out: Path | None = None) -> Path:
    """Read ``path``, change the dataset with ``edit`` and save it to ``out`` (default: over ``path``).

    For damaged-file tests: ``edit`` deletes or garbles tags the way a broken exporter would.
    """
    ds = pydicom.dcmread(path)
    edit(ds)
    out = out or path
    ds.save_as(out, enforce_file_format=True)
    return out


def truncate(path: Path, keep: int, out: Path | None = None) -> Path:
    """Write the first ``keep`` bytes of ``path`` to ``out`` (default: over ``path``): an interrupted copy."""
    data = path.read_bytes()
    out = out or path
    out.write_bytes(data[:keep])
    return out
