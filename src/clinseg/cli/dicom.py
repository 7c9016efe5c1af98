"""``clinseg import-dicom SRC_DIR DATASET``: DICOM series + RTSTRUCT/SEG -> a clinseg dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors


@handle_errors
def import_dicom(
    src: Path = typer.Argument(..., metavar="SRC",
                               help="Folder tree of DICOM files (image series, RTSTRUCT, SEG; any order)."),
    dataset: Path = typer.Argument(..., metavar="DATASET", help="New dataset folder (imagesTr, structuresTr, "
                                   "dataset.json, import-report.csv)."),
    names: Path = typer.Option(None, "--names", help="YAML 'standard name: [synonyms…]' (default: clinseg's "
                               "TG-263 based head-and-neck/brain mapping)."),
    keep_unmapped: bool = typer.Option(False, "--keep-unmapped", help="Import ROIs the mapping does not know "
                                       "under their own (sanitised) name instead of only listing them."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Skip (and report) a structure set whose "
                                       "image series is not in SRC_DIR, or was rejected (a gap, two slices at one "
                                       "position, a truncated slice), instead of failing."),
) -> None:
    """Import DICOM images and their structure sets into a dataset, harmonising structure names."""
    from clinseg.data.structure_names import load_name_map
    from clinseg.io.dicom.importer import import_dicom as run_import

    mapping = load_name_map(names)
    report = run_import(src, dataset, mapping.standardise, keep_unmapped=keep_unmapped, allow_missing=allow_missing)
    structures = sorted({s for v in report.cases.values() for s in v})
    console.print(f"imported {len(report.cases)} case(s) with structures into [bold]{dataset}[/] "
                  f"({len(report.test_cases)} series without structures -> imagesTs); structures: "
                  f"{', '.join(structures)}", highlight=False)
    for status, label in (("unmapped", "unmapped names (not imported)"), ("ambiguous", "ambiguous ROIs"),
                          ("empty", "empty ROIs"), ("damaged", "damaged ROIs (not imported)")):
        found = report.names_with(status)
        if found:
            console.print(f"[yellow]{label}:[/] {', '.join(found)}", highlight=False)
    damaged_files = {r["file"] for r in report.rows if r["status"] == "damaged" and not r["name"]}
    if damaged_files:
        console.print(f"[yellow]damaged structure set(s):[/] {len(damaged_files)} (see the report)", highlight=False)
    if report.skipped_files:
        console.print(f"[yellow]skipped {report.skipped_files} file(s) or series[/]", highlight=False)
    console.print(f"report: {dataset / 'import-report.csv'}", highlight=False)
