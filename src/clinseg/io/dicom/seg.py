"""DICOM Segmentation (SEG) objects, written and read with highdicom.

A prediction is written as one BINARY SEG with one segment per structure, frames referencing the slices
of the source series (empty frames omitted, as highdicom does by default); segment labels are the
structure names, colours are stored as CIELab display colours. Each segment's property category, type and
laterality modifier are SNOMED CT codes read from its name (:func:`clinseg.io.dicom.codes.structure_code`:
``Parotid_L`` is "Parotid gland" 45289007 with the modifier "Left" 7771000, ``PTV_70`` a "Planning target
volume"); a name without a known code keeps the generic "Organ" (91772007) in "Anatomical Structure". The
algorithm is identified as clinseg and the run (family "Artificial Intelligence"; manufacturer, model name,
software version and series description: :class:`~clinseg.io.dicom.provenance.Provenance`). Reading returns
the masks on the grid of the referenced series, so a mask -> SEG -> mask round trip is exact.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from clinseg.errors import ImageReadError
from clinseg.io.atomic import atomic_path
from clinseg.io.dicom._damage import describe
from clinseg.io.dicom.codes import structure_code
from clinseg.io.dicom.provenance import Provenance
from clinseg.io.dicom.series import ScanResult, Series


class SegReadError(ImageReadError):
    """A SEG file cannot be used; ``missing_series`` when its source series (``series_uids``) is not available."""

    def __init__(self, message: str, missing_series: bool = False, series_uids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing_series = missing_series
        self.series_uids = series_uids


def write_seg(path: str | os.PathLike[str], masks: np.ndarray, names: Sequence[str],
              colours: Sequence[tuple[int, int, int]], series: Series, *, series_number: int = 902,
              provenance: Provenance | None = None) -> str:
    """Write ``(N, Z, Y, X)`` binary masks on the grid of ``series`` as a DICOM-SEG; returns its SOP UID.

    The slice headers of ``series`` are the source images (pixel data is not needed); ``provenance`` names
    the run in the header. Written atomically.
    """
    masks = np.asarray(masks)
    if masks.shape[1:] != tuple(series.geometry.shape):
        raise ValueError(f"masks of shape {masks.shape[1:]} do not lie on the series grid {series.geometry.shape}")
    who = provenance or Provenance()
    algorithm = hd.AlgorithmIdentificationSequence(name=who.model_name, version=who.version,
                                                   family=codes.cid7162.ArtificialIntelligence)
    descriptions = [_description(n + 1, str(name), colours[n], algorithm) for n, name in enumerate(names)]
    pixels = np.moveaxis(masks > 0, 0, -1)  # (frames, rows, columns, segments)
    seg = hd.seg.Segmentation(
        source_images=series.slices, pixel_array=pixels.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=generate_uid(), series_number=series_number, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer=who.manufacturer, manufacturer_model_name=who.model_name,
        software_versions=who.software_versions, device_serial_number="0",
        series_description=who.series_description(),
    )
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return str(seg.SOPInstanceUID)


def _description(number: int, name: str, colour: tuple[int, int, int],
                 algorithm: hd.AlgorithmIdentificationSequence) -> hd.seg.SegmentDescription:
    """One segment: label, coded property (with laterality), display colour, the algorithm."""
    code = structure_code(name)
    description = hd.seg.SegmentDescription(
        segment_number=number, segment_label=name[:64],
        segmented_property_category=code.category, segmented_property_type=code.type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm,
        tracking_uid=generate_uid(), tracking_id=name,
        display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in colour)),
    )
    if code.modifier is not None:  # highdicom has no argument for it; the attribute is standard (C.8.20.2)
        description.SegmentedPropertyTypeModifierCodeSequence = [hd.sr.CodedConcept.from_code(code.modifier)]
    return description


def _open(path: Path) -> hd.seg.Segmentation:
    try:
        return hd.seg.segread(path)
    except Exception as exc:
        raise SegReadError(f"{path}: not a readable DICOM-SEG ({describe(exc)})") from exc


def read_seg(path: str | os.PathLike[str], series: Series) -> list[tuple[str, tuple[int, int, int] | None, np.ndarray]]:
    """The segments of a SEG as ``(label, RGB colour or None, (Z, Y, X) uint8 mask)`` on ``series``' grid."""
    path = Path(path)
    seg = _open(path)
    numbers = list(seg.get_segment_numbers())
    if not numbers:
        return []
    try:
        pixels = seg.get_pixels_by_source_instance(series.sop_instance_uids, segment_numbers=numbers,
                                                   assert_missing_frames_are_empty=True, dtype=np.uint8)
    except Exception as exc:
        raise SegReadError(f"{path}: its frames do not map onto series {series.uid} ({describe(exc)})") from exc
    expected = (*series.geometry.shape, len(numbers))
    if pixels.shape != expected:
        raise SegReadError(f"{path}: its frames of shape {pixels.shape[1:3]} do not lie on the grid of series "
                           f"{series.uid} {series.geometry.shape[1:]}")
    out = []
    for i, number in enumerate(numbers):
        description = seg.get_segment_description(number)
        colour = None
        if "RecommendedDisplayCIELabValue" in description:
            lab = hd.color.CIELabColor.from_dicom_value(description.RecommendedDisplayCIELabValue)
            colour = tuple(int(c) for c in lab.to_rgb())
        out.append((str(description.SegmentLabel), colour, (pixels[..., i] > 0).astype(np.uint8)))
    return out  # type: ignore[return-value]


def read_seg_segments(path: str | os.PathLike[str], scan: ScanResult
                      ) -> tuple[str, list[tuple[str, tuple[int, int, int] | None, np.ndarray]]]:
    """Find the source series of a SEG among ``scan``'s series and read its segments: ``(series UID, …)``.

    Raises :class:`SegReadError` (``missing_series`` and ``series_uids`` set) when no scanned series is its
    source, and for any damage highdicom or NumPy stumble on (one line naming the file).
    """
    path = Path(path)
    seg = _open(path)
    try:
        sources = {str(series_uid) for _, series_uid, _ in seg.get_source_image_uids()}
        for uid in sorted(sources):
            if uid in scan.series:
                return uid, read_seg(path, scan.series[uid])
    except SegReadError:
        raise
    except Exception as exc:  # a damaged SEG: highdicom, pydicom and NumPy raise many types
        raise SegReadError(f"{path}: damaged DICOM-SEG ({describe(exc)})") from exc
    raise SegReadError(f"{path}: DICOM-SEG references image series {', '.join(sorted(sources)) or '(none)'}, "
                       "which is not among the readable series scanned", missing_series=True,
                       series_uids=tuple(sorted(sources)))
