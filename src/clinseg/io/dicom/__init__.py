"""DICOM in and out: image series, RTSTRUCT (contours) and DICOM-SEG (highdicom).

* :mod:`~clinseg.io.dicom.series` — scan a folder tree, group series, build volumes with geometry.
* :mod:`~clinseg.io.dicom.rtstruct` — read, rasterise (even-odd rule) and write RT Structure Sets.
* :mod:`~clinseg.io.dicom.seg` — write and read DICOM Segmentation objects.
* :mod:`~clinseg.io.dicom.codes` — SNOMED CT codes and RT ROI types read from structure names.
"""

from clinseg.io.dicom.rtstruct import (
    Roi,
    StructureSet,
    empty_structures,
    mask_to_contours,
    rasterise,
    read_rtstruct,
    write_rtstruct,
)
from clinseg.io.dicom.series import (
    ScanResult,
    Series,
    case_ids,
    contains_dicom,
    is_dicom_file,
    read_series,
    scan_folder,
    series_geometry,
)

__all__ = [
    "Roi", "ScanResult", "Series", "StructureSet", "case_ids", "contains_dicom", "empty_structures",
    "is_dicom_file",
    "mask_to_contours", "rasterise", "read_rtstruct", "read_series", "scan_folder", "series_geometry",
    "write_rtstruct",
]
