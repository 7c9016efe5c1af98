"""``clinseg import-dicom``: a folder tree of DICOM (series + RTSTRUCT/SEG) -> a clinseg dataset.

Each image series is one case, ``<PatientID>_<SeriesNumber>`` (:func:`~clinseg.io.dicom.series.case_ids`).
A series that a structure set (RTSTRUCT) or segmentation (SEG) references goes to ``imagesTr`` with one mask
per imported structure in ``structuresTr/<case>/<structure>.nii.gz``: which structures a case has follows
from what was drawn. A series nothing references goes to ``imagesTs`` (no reference to train on).

Names are harmonised by ``rename`` (e.g. :meth:`clinseg.data.structure_names.NameMap.standardise`):
an ROI whose name it does not know is reported ``unmapped`` (imported under its own sanitised name only with
``keep_unmapped``); several ROIs of one case mapping to one standard name (ignoring case: one file on
case-insensitive file systems) are all reported ``ambiguous`` and none is imported (clinseg does not guess
which one the clinician meant); an ROI without contours is ``empty``; an ROI whose contours cannot be read
completely is ``damaged`` and not imported (a mask missing a slice would be a wrong reference). Every name
that becomes a path is safe (:mod:`clinseg.names`). Everything lands in ``DATASET/import-report.csv``
(columns :data:`REPORT_COLUMNS`), also when the import stops with an error.

Damaged input is reported and skipped, and the import goes on; the one error is a structure set whose image
series is not in the source folder or was rejected by the scan (a gap, two slices at one position, a
truncated slice): the user most likely wants that case, so the error names the file and the reason, and
``allow_missing`` turns it into a report row.
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
from functools import partial
from pathlib import Path

import numpy as np

from clinseg.errors import DatasetError, ImageReadError
from clinseg.io.atomic import write_text
from clinseg.io.dicom._damage import describe
from clinseg.io.dicom.rtstruct import Roi, contours_off_grid, rasterise, read_rtstruct
from clinseg.io.dicom.series import (
    ScanResult,
    Series,
    case_ids,
    read_series,
    scan_folder,
)
from clinseg.io.image import Geometry, write_image
from clinseg.names import MAX_NAME_LENGTH, check_name, name_problem
from clinseg.progress import track

log = logging.getLogger(__name__)

#: Columns of ``import-report.csv``.
REPORT_COLUMNS = ("case", "patient_id", "series_uid", "kind", "name", "structure", "status", "detail", "file")
#: First characters that make a spreadsheet (Excel, LibreOffice) read a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a CSV cell that a spreadsheet shows as text: a leading ``'`` before a formula start.

    ROI names, patient ids and series descriptions come from the DICOM files, i.e. from whoever wrote them;
    an ROI named ``=HYPERLINK(...)`` or ``@SUM(...)`` would run as a formula when ``import-report.csv`` is
    opened in a spreadsheet (CSV injection). Only the CSV cell is changed; names used elsewhere are not.

    Examples
    --------
    >>> spreadsheet_safe("=1+1"), spreadsheet_safe("-3 mm"), spreadsheet_safe("Brainstem")
    ("'=1+1", "'-3 mm", 'Brainstem')
    """
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


@dataclass
class _Drawn:
    """One drawn structure of a series: its name, where it came from and how to get its mask.

    ``mask(geometry)`` gives the ``(Z, Y, X)`` mask and notes for the report; ``empty`` says why there is
    nothing to import and ``damage`` why it cannot be imported (None when neither).
    """

    name: str
    file: Path
    kind: str  # "rtstruct" | "seg"
    colour: tuple[int, int, int] | None
    mask: Callable[[Geometry], tuple[np.ndarray, list[str]]]
    empty: str | None = None
    damage: str | None = None


@dataclass
class ImportReport:
    """What an import did: the rows of ``import-report.csv`` and the cases with their structures."""

    rows: list[dict[str, str]] = field(default_factory=list)
    cases: dict[str, list[str]] = field(default_factory=dict)
    test_cases: list[str] = field(default_factory=list)

    def add(self, **row: object) -> None:
        self.rows.append({c: "" if row.get(c) is None else str(row.get(c)) for c in REPORT_COLUMNS})

    def names_with(self, status: str) -> list[str]:
        """Distinct ROI names reported with ``status`` (e.g. ``unmapped``, ``ambiguous``, ``damaged``)."""
        return sorted({r["name"] for r in self.rows if r["status"] == status and r["name"]})

    @property
    def skipped_files(self) -> int:
        """Number of distinct files (or series folders) reported ``skipped``."""
        return len({r["file"] for r in self.rows if r["status"] == "skipped"})

    def to_csv(self) -> str:
        """The rows as CSV text, each cell made :func:`spreadsheet_safe` (the rows themselves are unchanged)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: spreadsheet_safe(v) for c, v in row.items()} for row in self.rows)
        return buffer.getvalue()


def sanitise_structure_name(name: str) -> str:
    """A file-name-safe structure name that passes :func:`clinseg.names.check_name`.

    Characters other than letters, digits, ``_ . -`` become ``_``, leading and trailing ``_``/``.`` are
    dropped (so ``../../x`` gives ``x`` and ``.hidden`` gives ``hidden``), the name is cut to
    :data:`~clinseg.names.MAX_NAME_LENGTH` characters, and a name with nothing left is ``unnamed``. A Windows
    device name gets a ``_`` after it (``CON`` gives ``CON_``, ``nul.x`` gives ``nul_.x``).

    Examples
    --------
    >>> sanitise_structure_name("Tumour bed"), sanitise_structure_name("../../x"), sanitise_structure_name("?")
    ('Tumour_bed', 'x', 'unnamed')
    """
    safe = re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(name).strip()).strip("_.")
    safe = safe[:MAX_NAME_LENGTH].rstrip("_.") or "unnamed"
    if name_problem(safe) is not None:  # a device name (CON, nul.x …): the only problem left
        stem, dot, rest = safe.partition(".")
        safe = f"{stem}_{dot}{rest}"[:MAX_NAME_LENGTH]
    return safe


def _locate(scan: ScanResult, uids: tuple[str, ...], instances: tuple[str, ...]) -> Series | None:
    """The usable scanned series a structure set references (by series UID, else by an image instance)."""
    for uid in uids:
        if uid in scan.series:
            return scan.series[uid]
    for uid in instances:
        if (series := scan.series_of_instance(uid)) is not None:
            return series
    return None


def _not_found(scan: ScanResult, src: Path, path: Path, label: str, uids: tuple[str, ...],
               instances: tuple[str, ...]) -> tuple[str | None, str]:
    """Why the series of a structure set is not usable: ``(error message or None, report detail)``.

    The message is None when the file names no series at all (damage to report, not a series to add).
    """
    rejected = [u for u in uids if u in scan.rejected]
    rejected += [scan.instances[i] for i in instances if scan.instances.get(i) in scan.rejected]
    if rejected:
        uid = rejected[0]
        reason = scan.rejected[uid]
        return (f"{path}: {label} references image series {uid}, whose slices were skipped: {reason} (fix the "
                f"series, or pass --allow-missing to import without this {label})",
                f"referenced series {uid} was skipped: {reason}")
    if uids or instances:
        wanted = ", ".join(uids) or f"(the series of image instance {instances[0]})"
        return (f"{path}: {label} references image series {wanted}, which is not among the readable series "
                f"under {src} (add the series, or pass --allow-missing to skip it)",
                "referenced series not found: " + wanted)
    return None, (f"the {label} names no image series (no series UID and no referenced image instance): a "
                  "damaged or truncated file?")


def _rtstruct_mask(roi: Roi, geometry: Geometry) -> tuple[np.ndarray, list[str]]:
    """The ROI's mask on ``geometry`` and notes: contours ignored while reading, contours off the series."""
    mask = rasterise(roi.contours, geometry)
    notes = list(roi.notes)
    off = contours_off_grid(roi.contours, geometry)
    if off:
        normal = np.asarray(geometry.direction, dtype=np.float64).reshape(3, 3)[:, 2]
        first = float(normal @ np.asarray(geometry.origin))
        last = first + (geometry.shape[0] - 1) * geometry.spacing[2]
        shown = ", ".join(f"{z:.6g}" for z in off[:5]) + (", …" if len(off) > 5 else "")
        where = f"z = {shown} mm; the series covers z = {first:.6g} to {last:.6g} mm"
        if len(off) == len(roi.contours):
            what = f"all {len(off)} contours lie" if len(off) > 1 else "its one contour lies"
            notes.insert(0, f"{what} outside the series ({where})")
        else:
            notes.append(f"{len(off)} of {len(roi.contours)} contours outside the series ignored ({where})")
    return mask, notes


@dataclass
class _Collected:
    """The structures of every RTSTRUCT and SEG, by series UID, with the rows that belong to each series."""

    drawn: dict[str, list[_Drawn]] = field(default_factory=lambda: defaultdict(list))
    rows: dict[str, list[dict[str, object]]] = field(default_factory=lambda: defaultdict(list))
    blocked: list[str] = field(default_factory=list)  # errors: structure sets whose series is missing/rejected


def _collect(scan: ScanResult, src: Path, report: ImportReport) -> _Collected:
    """Read every RTSTRUCT and SEG of the scan; what belongs to no series is reported at once."""
    out = _Collected()
    for path in scan.rtstructs:
        try:
            ss = read_rtstruct(path)
        except ImageReadError as exc:
            report.add(kind="rtstruct", status="skipped", detail=str(exc), file=path)
            continue
        rows: list[dict[str, object]] = [dict(kind="rtstruct", status="damaged", detail=p, file=path)
                                         for p in ss.problems]
        if not ss.rois and not ss.problems:
            rows.append(dict(kind="rtstruct", status="empty", detail="the structure set holds no ROI", file=path))
        series = _locate(scan, ss.referenced_series_uids, ss.referenced_instance_uids)
        if series is None:
            if ss.rois:
                rows.insert(0, _unfound_row(out, scan, src, path, "RTSTRUCT", ss.referenced_series_uids,
                                            ss.referenced_instance_uids, len(ss.rois)))
            for row in rows:
                report.add(**row)
            continue
        out.rows[series.uid] += rows
        for roi in ss.rois:
            empty = None
            if not roi.contours:
                empty = "; ".join(["no usable contour", *roi.notes]) if roi.notes else "no contours"
            out.drawn[series.uid].append(_Drawn(roi.name, path, "rtstruct", roi.colour, partial(_rtstruct_mask, roi),
                                                empty, roi.damage))
    for path in scan.segs:
        from clinseg.io.dicom.seg import SegReadError, read_seg_segments

        try:
            series_uid, segments = read_seg_segments(path, scan)
        except SegReadError as exc:
            if exc.missing_series:
                report.add(**_unfound_row(out, scan, src, path, "DICOM-SEG", exc.series_uids, (), None))
            else:
                report.add(kind="seg", status="skipped", detail=str(exc), file=path)
            continue
        for name, colour, mask in segments:
            out.drawn[series_uid].append(_Drawn(name, path, "seg", colour, lambda _g, m=mask: (m, []),
                                                None if mask.any() else "no voxel in the segment"))
    return out


def _unfound_row(out: _Collected, scan: ScanResult, src: Path, path: Path, label: str, uids: tuple[str, ...],
                 instances: tuple[str, ...], rois: int | None) -> dict[str, object]:
    """The report row of a structure set without a usable series; records the error when one is due."""
    error, detail = _not_found(scan, src, path, label, uids, instances)
    if error is not None:
        out.blocked.append(error)
    if rois:
        detail += f" ({rois} ROI{'s' if rois > 1 else ''} not imported)"
    kind = "rtstruct" if label == "RTSTRUCT" else "seg"
    return dict(kind=kind, status="skipped" if error else "damaged", detail=detail, file=path)


def import_dicom(src: str | os.PathLike[str], dataset: str | os.PathLike[str],
                 rename: Callable[[str], str | None] | None = None, *, keep_unmapped: bool = False,
                 allow_missing: bool = False) -> ImportReport:
    """Import a DICOM folder tree into a new dataset folder (see the module docstring).

    Parameters
    ----------
    src : folder tree with image series, RTSTRUCT and SEG files (any names, any order).
    dataset : output dataset folder; must not hold a ``dataset.json`` yet.
    rename : clinical name -> standard name, or None when unknown; default keeps names (sanitised).
        A standard name it returns must pass :func:`clinseg.names.check_name`.
    keep_unmapped : import ROIs ``rename`` does not know under their sanitised own name.
    allow_missing : skip (and report) a structure set whose image series is missing or was rejected by the
        scan instead of failing.

    Raises
    ------
    DatasetError
        When a structure set references a series that is not in ``src`` or was rejected (unless
        ``allow_missing``), when ``rename`` gives an unsafe name, when ``dataset`` already holds a dataset,
        or when no image series or no structure could be imported. ``import-report.csv`` is written first
        whenever the scan got that far.
    """
    src, dataset = Path(src), Path(dataset)
    if (dataset / "dataset.json").exists():
        raise DatasetError(f"{dataset}: already holds a dataset (dataset.json); import into a new folder")
    scan = scan_folder(src)
    report = ImportReport()
    report_path = dataset / "import-report.csv"
    for path, reason in scan.skipped:
        report.add(status="skipped", detail=reason, file=path)
    collected = _collect(scan, src, report)
    if collected.blocked and not allow_missing:
        write_text(report_path, report.to_csv())
        more = len(collected.blocked) - 1
        raise DatasetError(collected.blocked[0] + (f"; and {more} more structure set(s) like it" if more else "")
                           + f"; see {report_path}")
    if not scan.series:
        write_text(report_path, report.to_csv())
        raise DatasetError(f"{src}: no usable DICOM image series found ({len(scan.skipped)} file(s) skipped; "
                           f"see {report_path})")
    ids = case_ids(list(scan.series.values()))
    colours: dict[str, list[int]] = {}
    modalities = Counter(s.modality for s in scan.series.values())
    for series in track(sorted(scan.series.values(), key=lambda s: ids[s.uid]), "importing DICOM"):
        case = ids[series.uid]
        common = {"case": case, "patient_id": series.patient_id, "series_uid": series.uid}
        for row in collected.rows.get(series.uid, []):
            report.add(**common, **row)
        chosen = _choose(collected.drawn.get(series.uid, []), rename, keep_unmapped, report, common)
        written = _import_series(series, case, chosen, dataset, report, common, colours)
        if written:
            report.cases[case] = sorted(written)
        elif written is not None:
            report.test_cases.append(case)
    write_text(report_path, report.to_csv())
    structures = sorted({s for names in report.cases.values() for s in names})
    if not structures:
        why = "; ".join(f"{status}: {', '.join(names)}" for status in ("unmapped", "damaged", "empty", "ambiguous")
                        if (names := report.names_with(status))) or "no ROI found"
        raise DatasetError(f"{src}: no structure could be imported ({why}); see {report_path}")
    channel = modalities.most_common(1)[0][0]
    spec = {
        "name": dataset.name,
        "channel_names": {"0": channel if name_problem(channel) is None else "image"},
        "labels": structures,
        "label_mode": "multilabel",
        "file_ending": ".nii.gz",
        "colours": {s: colours[s] for s in structures if s in colours},
        "source": f"clinseg import-dicom of {src}",
    }
    write_text(dataset / "dataset.json", json.dumps(spec, indent=2) + "\n")
    return report


def _import_series(series: Series, case: str, chosen: dict[str, _Drawn], dataset: Path, report: ImportReport,
                   common: dict[str, str], colours: dict[str, list[int]]) -> list[str] | None:
    """Write the image and the masks of one series; the structures written, or None when it is unreadable."""
    description = series.description
    try:
        image = read_series(series)
    except ImageReadError as exc:
        n = len(chosen)
        lost = f"; {n} drawn structure{'s' if n > 1 else ''} not imported" if n else ""
        report.add(**common, kind="series", name=description, status="skipped",
                   detail=f"{exc}: case not imported{lost}", file=series.files[0].parent)
        log.warning("case %s not imported: %s", case, exc)
        return None
    geometry = image.geometry
    written = []
    for standard, item in chosen.items():
        row = dict(common, kind=item.kind, name=item.name, structure=standard, file=item.file)
        try:
            mask, notes = item.mask(geometry)
        except Exception as exc:  # NumPy/scikit-image on contours that passed reading but still cannot be filled
            report.add(**row, status="damaged", detail=f"its contours cannot be filled ({describe(exc)}): not imported")
            continue
        if mask.shape != tuple(geometry.shape):
            report.add(**row, status="damaged", detail=f"its mask of shape {mask.shape} does not lie on the series "
                       f"grid {geometry.shape}: not imported")
            continue
        if not mask.any():
            detail = "; ".join(notes) or "no voxel inside the contours on the image grid"
            report.add(**row, status="empty", detail=detail)
            continue
        write_image(mask.astype(np.uint8), geometry, dataset / "structuresTr" / case / f"{standard}.nii.gz")
        report.add(**row, status="imported", detail="; ".join([f"{int(mask.sum())} voxels", *notes]))
        written.append(standard)
        if item.colour is not None:
            colours.setdefault(standard, list(item.colour))
    split = "Tr" if written else "Ts"
    write_image(image.array, geometry, dataset / f"images{split}" / f"{case}_0000.nii.gz")
    sp = "x".join(f"{s:.4g}" for s in geometry.spacing)
    report.add(**common, kind="series", name=description, status="imported" if written else "test",
               detail=f"{series.modality}, {geometry.shape[0]} slices, spacing {sp} mm"
               + ("" if written else "; no structure imported: written to imagesTs"), file=series.files[0].parent)
    return written


def _standard_name(item: _Drawn, rename: Callable[[str], str | None] | None, keep_unmapped: bool) -> str | None:
    """The file name (without ending) of a drawn structure, or None when it is unmapped and not kept."""
    if rename is None:
        return sanitise_structure_name(item.name)
    standard = rename(item.name)
    if standard is None:
        return sanitise_structure_name(item.name) if keep_unmapped else None
    return check_name(standard, "structure name", item.file)


def _choose(items: list[_Drawn], rename: Callable[[str], str | None] | None, keep_unmapped: bool,
            report: ImportReport, common: dict[str, str]) -> dict[str, _Drawn]:
    """Standard name -> the one drawn structure to import; reports damaged, empty, unmapped and ambiguous ones.

    Names that differ only in case are one group: they would be one file on case-insensitive file systems.
    """
    groups: dict[str, list[tuple[str, _Drawn]]] = defaultdict(list)
    for item in items:
        row = dict(common, kind=item.kind, name=item.name, file=item.file)
        if item.damage:
            report.add(**row, status="damaged", detail=f"{item.damage}: not imported")
            continue
        if item.empty:
            report.add(**row, status="empty", detail=item.empty)
            continue
        standard = _standard_name(item, rename, keep_unmapped)
        if standard is None:
            report.add(**row, status="unmapped", detail="name not in the names mapping: not imported")
            continue
        groups[standard.lower()].append((standard, item))
    chosen = {}
    for group in groups.values():
        if len(group) == 1:
            chosen[group[0][0]] = group[0][1]
            continue
        others = ", ".join(repr(item.name) for _, item in group)
        targets = sorted({standard for standard, _ in group})
        case_only = " (one file name on case-insensitive file systems)" if len(targets) > 1 else ""
        for standard, item in group:
            report.add(**common, kind=item.kind, name=item.name, structure=standard, status="ambiguous",
                       detail=f"{len(group)} ROIs ({others}) map to {' / '.join(targets)}{case_only}: none imported",
                       file=item.file)
        log.warning("case %s: %d ROIs map to %s (%s); none imported", common["case"], len(group),
                    " / ".join(targets), others)
    return chosen
