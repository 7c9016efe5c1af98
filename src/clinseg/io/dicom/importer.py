"""``clinseg import-dicom``: a folder tree of DICOM (series + RTSTRUCT/SEG) -> a clinseg dataset.

Each image series is one case, ``<PatientID>_<SeriesNumber>`` (:func:`~clinseg.io.dicom.series.case_ids`).
A series that a structure set (RTSTRUCT) or segmentation (SEG) references goes to ``imagesTr`` with one mask
per imported structure in ``structuresTr/<case>/<structure>.nii.gz``: which structures a case has follows
from what was drawn. A series nothing references goes to ``imagesTs`` (no reference to train on).

Names are harmonised by ``rename`` (e.g. :meth:`clinseg.data.structure_names.NameMap.standardise`):
an ROI whose name it does not know is reported ``unmapped`` (imported under its own name only with
``keep_unmapped``); several ROIs of one case mapping to one standard name are all reported ``ambiguous`` and
none is imported (clinseg does not guess which one the clinician meant); an ROI without contours is
``empty``. Everything lands in ``DATASET/import-report.csv`` (columns :data:`REPORT_COLUMNS`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clinseg.errors import DatasetError, ImageReadError
from clinseg.io.atomic import write_text
from clinseg.io.dicom.rtstruct import rasterise, read_rtstruct
from clinseg.io.dicom.series import (
    ScanResult,
    Series,
    case_ids,
    read_series,
    scan_folder,
)
from clinseg.io.image import Geometry, write_image
from clinseg.progress import track

log = logging.getLogger(__name__)

#: Columns of ``import-report.csv``.
REPORT_COLUMNS = ("case", "patient_id", "series_uid", "kind", "name", "structure", "status", "detail", "file")


@dataclass
class _Drawn:
    """One drawn structure of a series: its name, where it came from and how to get its mask."""

    name: str
    file: Path
    kind: str  # "rtstruct" | "seg"
    colour: tuple[int, int, int] | None
    mask: Callable[[Geometry], np.ndarray]
    empty: bool


@dataclass
class ImportReport:
    """What an import did: the rows of ``import-report.csv`` and the cases with their structures."""

    rows: list[dict[str, str]] = field(default_factory=list)
    cases: dict[str, list[str]] = field(default_factory=dict)
    test_cases: list[str] = field(default_factory=list)

    def add(self, **row: object) -> None:
        self.rows.append({c: "" if row.get(c) is None else str(row.get(c)) for c in REPORT_COLUMNS})

    def names_with(self, status: str) -> list[str]:
        """Distinct ROI names reported with ``status`` (e.g. ``unmapped``, ``ambiguous``)."""
        return sorted({r["name"] for r in self.rows if r["status"] == status})

    @property
    def skipped_files(self) -> int:
        return sum(r["status"] == "skipped" for r in self.rows)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()


def sanitise_structure_name(name: str) -> str:
    """A file-name-safe structure name (characters other than letters, digits, ``_ . -`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name.strip()).strip("_.") or "unnamed"


def _find_series(scan: ScanResult, referenced: tuple[str, ...], instances: tuple[str, ...]) -> Series | None:
    for uid in referenced:
        if uid in scan.series:
            return scan.series[uid]
    for uid in instances[:1]:
        return scan.series_of_instance(uid)
    return None


def _collect(scan: ScanResult, src: Path, report: ImportReport, allow_missing: bool) -> dict[str, list[_Drawn]]:
    """Drawn structures per series UID, from every RTSTRUCT and SEG of the scan."""
    drawn: dict[str, list[_Drawn]] = defaultdict(list)
    for path in scan.rtstructs:
        try:
            ss = read_rtstruct(path)
        except ImageReadError as exc:
            report.add(kind="rtstruct", status="skipped", detail=str(exc), file=path)
            continue
        series = _find_series(scan, ss.referenced_series_uids, ss.referenced_instance_uids)
        if series is None:
            wanted = ", ".join(ss.referenced_series_uids) or "(no series reference)"
            message = (f"{path}: RTSTRUCT references image series {wanted}, which is not among the readable "
                       f"series under {src}")
            if not allow_missing:
                raise DatasetError(message + " (add the series, or pass --allow-missing to skip it)")
            report.add(kind="rtstruct", status="skipped", detail="referenced series not found: " + wanted, file=path)
            continue
        for roi in ss.rois:
            drawn[series.uid].append(_Drawn(
                roi.name, path, "rtstruct", roi.colour,
                lambda geometry, contours=roi.contours: rasterise(contours, geometry), not roi.contours))
    for path in scan.segs:
        from clinseg.io.dicom.seg import SegReadError, read_seg_segments

        try:
            series_uid, segments = read_seg_segments(path, scan)
        except SegReadError as exc:
            if exc.missing_series and not allow_missing:
                raise DatasetError(f"{exc} (add the series, or pass --allow-missing to skip it)") from None
            report.add(kind="seg", status="skipped", detail=str(exc), file=path)
            continue
        for name, colour, mask in segments:
            drawn[series_uid].append(_Drawn(name, path, "seg", colour, lambda _g, m=mask: m, not mask.any()))
    return drawn


def import_dicom(src: str | os.PathLike[str], dataset: str | os.PathLike[str],
                 rename: Callable[[str], str | None] | None = None, *, keep_unmapped: bool = False,
                 allow_missing: bool = False) -> ImportReport:
    """Import a DICOM folder tree into a new dataset folder (see the module docstring).

    Parameters
    ----------
    src : folder tree with image series, RTSTRUCT and SEG files (any names, any order).
    dataset : output dataset folder; must not hold a ``dataset.json`` yet.
    rename : clinical name -> standard name, or None when unknown; default keeps names (sanitised).
    keep_unmapped : import ROIs ``rename`` does not know under their sanitised own name.
    allow_missing : skip (and report) a structure set whose image series is missing instead of failing.

    Raises
    ------
    DatasetError
        When a structure set references a series that is not in ``src`` (unless ``allow_missing``), when
        ``dataset`` already holds a dataset, or when no image series was found.
    """
    src, dataset = Path(src), Path(dataset)
    if (dataset / "dataset.json").exists():
        raise DatasetError(f"{dataset}: already holds a dataset (dataset.json); import into a new folder")
    scan = scan_folder(src)
    report = ImportReport()
    for path, reason in scan.skipped:
        report.add(status="skipped", detail=reason, file=path)
    drawn = _collect(scan, src, report, allow_missing)
    if not scan.series:
        write_text(dataset / "import-report.csv", report.to_csv())
        raise DatasetError(f"{src}: no usable DICOM image series found ({len(scan.skipped)} file(s) skipped; "
                           f"see {dataset / 'import-report.csv'})")
    ids = case_ids(list(scan.series.values()))
    colours: dict[str, list[int]] = {}
    modalities = Counter(s.modality for s in scan.series.values())
    for series in track(sorted(scan.series.values(), key=lambda s: ids[s.uid]), "importing DICOM"):
        case = ids[series.uid]
        common = {"case": case, "patient_id": series.patient_id, "series_uid": series.uid}
        chosen = _choose(drawn.get(series.uid, []), rename, keep_unmapped, report, common)
        image = read_series(series)
        geometry = image.geometry
        written = []
        for standard, item in chosen.items():
            mask = item.mask(geometry)
            if not mask.any():
                report.add(**common, kind=item.kind, name=item.name, structure=standard, status="empty",
                           detail="no voxel inside the contours on the image grid", file=item.file)
                continue
            write_image(mask.astype(np.uint8), geometry, dataset / "structuresTr" / case / f"{standard}.nii.gz")
            report.add(**common, kind=item.kind, name=item.name, structure=standard, status="imported",
                       detail=f"{int(mask.sum())} voxels", file=item.file)
            written.append(standard)
            if item.colour is not None:
                colours.setdefault(standard, list(item.colour))
        split = "Tr" if written else "Ts"
        write_image(image.array, geometry, dataset / f"images{split}" / f"{case}_0000.nii.gz")
        sp = "x".join(f"{s:.4g}" for s in geometry.spacing)
        report.add(**common, kind="series", name=str(getattr(series.first, "SeriesDescription", "")),
                   status="imported" if written else "test",
                   detail=f"{series.modality}, {geometry.shape[0]} slices, spacing {sp} mm"
                   + ("" if written else "; no structure imported: written to imagesTs"), file=series.files[0].parent)
        if written:
            report.cases[case] = sorted(written)
        else:
            report.test_cases.append(case)
    write_text(dataset / "import-report.csv", report.to_csv())
    structures = sorted({s for names in report.cases.values() for s in names})
    if not structures:
        raise DatasetError(f"{src}: no structure could be imported (unmapped: {', '.join(report.names_with('unmapped')) or 'none'}); "
                           f"see {dataset / 'import-report.csv'}")
    spec = {
        "name": dataset.name,
        "channel_names": {"0": modalities.most_common(1)[0][0]},
        "labels": structures,
        "label_mode": "multilabel",
        "file_ending": ".nii.gz",
        "colours": {s: colours[s] for s in structures if s in colours},
        "source": f"clinseg import-dicom of {src}",
    }
    write_text(dataset / "dataset.json", json.dumps(spec, indent=2) + "\n")
    return report


def _choose(items: list[_Drawn], rename: Callable[[str], str | None] | None, keep_unmapped: bool,
            report: ImportReport, common: dict[str, str]) -> dict[str, _Drawn]:
    """Standard name -> the one drawn structure to import; reports empty, unmapped and ambiguous ones."""
    by_standard: dict[str, list[_Drawn]] = defaultdict(list)
    for item in items:
        if item.empty:
            report.add(**common, kind=item.kind, name=item.name, status="empty", detail="no contours", file=item.file)
            continue
        standard = rename(item.name) if rename else sanitise_structure_name(item.name)
        if standard is None:
            if not keep_unmapped:
                report.add(**common, kind=item.kind, name=item.name, status="unmapped",
                           detail="name not in the names mapping: not imported", file=item.file)
                continue
            standard = sanitise_structure_name(item.name)
        by_standard[standard].append(item)
    chosen = {}
    for standard, group in by_standard.items():
        if len(group) == 1:
            chosen[standard] = group[0]
            continue
        others = ", ".join(repr(g.name) for g in group)
        for item in group:
            report.add(**common, kind=item.kind, name=item.name, structure=standard, status="ambiguous",
                       detail=f"{len(group)} ROIs ({others}) map to {standard}: none imported", file=item.file)
        log.warning("case %s: %d ROIs map to %s (%s); none imported", common["case"], len(group), standard, others)
    return chosen
