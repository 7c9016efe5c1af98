"""Predict a folder of DICOM image series and write NIfTI, RTSTRUCT or DICOM-SEG.

``clinseg predict RUN DICOM_DIR OUT --format nifti|rtstruct|dicom-seg``: every image series under
``DICOM_DIR`` is one case, named ``<PatientID>_<SeriesNumber>`` as ``clinseg import-dicom`` names it
(:func:`clinseg.io.dicom.series.case_ids`). Outputs per case:

* ``nifti``: ``OUT/<case>/<structure>.nii.gz`` (the layout of ``predict`` on NIfTI input);
* ``seg-nrrd``: the same plus ``OUT/<case>.seg.nrrd`` (3D Slicer, :mod:`clinseg.inference.outputs`);
* ``rtstruct``: ``OUT/<case>/rtstruct.dcm``, an RTSTRUCT referencing the input series (a structure
  predicted empty is left out, and logged: an ROI without contours breaks common readers);
* ``dicom-seg``: ``OUT/<case>/seg.dcm``, a binary DICOM-SEG referencing the input series, segments coded
  with SNOMED CT (:mod:`clinseg.io.dicom.codes`).

Both DICOM objects name clinseg and the run (manufacturer, model name, software version, series
description: :class:`~clinseg.io.dicom.provenance.Provenance`).

Structure names are the run's (the dataset's, sides split, for seed 001's OAR pipeline: an
:class:`~clinseg.inference.organs.OrganPipeline` of ``--method oar2d`` runs, voted with ``--ensemble`` and
post-processed with ``--postprocess anatomy``, whose fat rule reads the series' own intensities); colours
come from the dataset's ``dataset.json`` ``colours`` when the run records its dataset, else from
:data:`~clinseg.inference.outputs.PALETTE` in structure order (deterministic).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.errors import ConfigError, DatasetError
from clinseg.inference.outputs import (  # noqa: F401 (PALETTE, structure_colours: re-exported)
    FORMATS,
    PALETTE,
    check_format,
    provenance_of,
    run_colours,
    structure_colours,
    write_label_tables,
)
from clinseg.inference.predictor import label_map_values, prepare_output, write_case
from clinseg.io.dicom.rtstruct import empty_structures, write_rtstruct
from clinseg.io.dicom.seg import write_seg
from clinseg.io.dicom.series import case_ids, read_series, scan_folder
from clinseg.io.seg_nrrd import write_seg_nrrd
from clinseg.progress import track

log = logging.getLogger(__name__)


def predict_dicom_folder(predictor: Any, input_dir: str | Path, out_dir: str | Path, output_format: str = "nifti",
                         *, run_dir: str | Path | None = None, **options: object) -> list[str]:
    """Segment every image series under ``input_dir``; returns the case ids (see the module docstring).

    ``predictor`` is any clinseg predictor (``structures``, ``channels``, ``config.normalization`` and
    ``predict((C, Z, Y, X)) -> (N, Z, Y, X)``) or an :class:`~clinseg.inference.organs.OrganPipeline`;
    ``options`` go to a predictor's ``predict``.
    """
    check_format(output_format)
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    if len(predictor.channels) != 1:
        raise ConfigError(f"this run reads {len(predictor.channels)} image channels; DICOM input gives one "
                          "series per case (convert multi-sequence cases to NIfTI channels first)")
    scan = scan_folder(input_dir)
    if not scan.series:
        reasons = "; ".join(sorted({r for _, r in scan.skipped}))[:300]
        raise DatasetError(f"{input_dir}: no usable DICOM image series ({reasons or 'no files'})")
    ids = case_ids(list(scan.series.values()))
    out_dir = prepare_output(out_dir)
    structures = list(predictor.structures)
    colours = structure_colours(structures, run_colours(run_dir))
    label_values = label_map_values(predictor)
    provenance = provenance_of(predictor, run_dir)
    ordered = sorted(scan.series.values(), key=lambda s: ids[s.uid])
    for series in track(ordered, "predicting DICOM", what="series"):
        case = ids[series.uid]
        image = read_series(series)
        raw = image.array[None].astype(np.float32)
        masks = np.asarray(predictor.segment(raw, image.geometry, **options))
        if output_format in ("nifti", "seg-nrrd"):
            write_case(out_dir, case, masks, structures, image.geometry, label_values)
            if output_format == "seg-nrrd":
                write_seg_nrrd(out_dir / f"{case}.seg.nrrd", masks, structures, colours, image.geometry)
        elif output_format == "rtstruct":
            empty = empty_structures(masks, structures)
            if empty:
                log.warning("%s: no ROI for %s (predicted empty; an ROI without contours breaks common readers)",
                            out_dir / case / "rtstruct.dcm", ", ".join(empty))
            write_rtstruct(out_dir / case / "rtstruct.dcm", masks, structures, colours, series,
                           provenance=provenance)
        else:
            write_seg(out_dir / case / "seg.dcm", masks, structures, colours, series, provenance=provenance)
        log.debug("case %s: series %s -> %s", case, series.uid, output_format)
    if label_values is not None and output_format in ("nifti", "seg-nrrd"):
        write_label_tables(out_dir, structures, label_values, colours)
    return [ids[s.uid] for s in ordered]


def is_dicom_input(folder: str | Path) -> bool:
    """True when ``folder`` holds DICOM files and no NIfTI/NRRD/MHA images at its top level."""
    from clinseg.io.dicom.series import contains_dicom
    from clinseg.io.image import has_supported_ending

    folder = Path(folder)
    if not folder.is_dir() or any(p.is_file() and has_supported_ending(p.name) for p in folder.iterdir()):
        return False
    return contains_dicom(folder)
