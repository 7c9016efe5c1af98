"""Predict a folder of DICOM image series and write NIfTI, RTSTRUCT or DICOM-SEG.

``clinseg predict RUN DICOM_DIR OUT --format nifti|rtstruct|dicom-seg``: every image series under
``DICOM_DIR`` is one case, named ``<PatientID>_<SeriesNumber>`` as ``clinseg import-dicom`` names it
(:func:`clinseg.io.dicom.series.case_ids`). Outputs per case:

* ``nifti``: ``OUT/<case>/<structure>.nii.gz`` (the layout of ``predict`` on NIfTI input);
* ``rtstruct``: ``OUT/<case>/rtstruct.dcm``, an RTSTRUCT referencing the input series;
* ``dicom-seg``: ``OUT/<case>/seg.dcm``, a binary DICOM-SEG referencing the input series.

Structure names are the run's (the dataset's, sides split, for seed 001's OAR pipeline: an
:class:`~clinseg.inference.organs.OrganPipeline` of ``--method oar2d`` runs, voted with ``--ensemble`` and
post-processed with ``--postprocess anatomy``, whose fat rule reads the series' own intensities); colours
come from the dataset's ``dataset.json`` ``colours`` when the run records its dataset, else from
:data:`PALETTE` in structure order (deterministic).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.errors import ConfigError, DatasetError
from clinseg.inference.predictor import label_map_values, prepare_output, write_case
from clinseg.io.dicom.rtstruct import write_rtstruct
from clinseg.io.dicom.seg import write_seg
from clinseg.io.dicom.series import case_ids, read_series, scan_folder
from clinseg.progress import track

log = logging.getLogger(__name__)

FORMATS = ("nifti", "rtstruct", "dicom-seg")
#: Display colours (RGB) given to structures in order when the dataset has none.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
)


def structure_colours(structures: Sequence[str], dataset_colours: dict[str, Any] | None = None
                      ) -> list[tuple[int, int, int]]:
    """One RGB colour per structure: the dataset's when it has one, else the palette's by position."""
    out = []
    for n, name in enumerate(structures):
        given = (dataset_colours or {}).get(name)
        ok = isinstance(given, list) and len(given) == 3 and all(isinstance(c, int) for c in given)
        out.append(tuple(given) if ok else PALETTE[n % len(PALETTE)])  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def _run_colours(run_dir: Path | None) -> dict[str, Any]:
    """``colours`` of the dataset a run was trained on, when the run folder records where it is."""
    if run_dir is None:
        return {}
    for name in ("run.json", "fingerprint.json"):
        try:
            info = json.loads((run_dir / name).read_text(encoding="utf-8"))
            spec = json.loads((Path(info["dataset"]) / "dataset.json").read_text(encoding="utf-8"))
            return dict(spec.get("colours") or {})
        except (OSError, KeyError, TypeError, ValueError):
            continue
    return {}


def predict_dicom_folder(predictor: Any, input_dir: str | Path, out_dir: str | Path, output_format: str = "nifti",
                         *, run_dir: str | Path | None = None, **options: object) -> list[str]:
    """Segment every image series under ``input_dir``; returns the case ids (see the module docstring).

    ``predictor`` is any clinseg predictor (``structures``, ``channels``, ``config.normalization`` and
    ``predict((C, Z, Y, X)) -> (N, Z, Y, X)``) or an :class:`~clinseg.inference.organs.OrganPipeline`;
    ``options`` go to a predictor's ``predict``.
    """
    if output_format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
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
    colours = structure_colours(structures, _run_colours(Path(run_dir) if run_dir else None))
    label_values = label_map_values(predictor)
    for series in track(sorted(scan.series.values(), key=lambda s: ids[s.uid]), "predicting DICOM"):
        case = ids[series.uid]
        image = read_series(series)
        raw = image.array[None].astype(np.float32)
        masks = np.asarray(predictor.segment(raw, image.geometry, **options))
        if output_format == "nifti":
            write_case(out_dir, case, masks, structures, image.geometry, label_values)
        elif output_format == "rtstruct":
            write_rtstruct(out_dir / case / "rtstruct.dcm", masks, structures, colours, series)
        else:
            write_seg(out_dir / case / "seg.dcm", masks, structures, colours, series)
        log.debug("case %s: series %s -> %s", case, series.uid, output_format)
    return [ids[s.uid] for s in sorted(scan.series.values(), key=lambda s: ids[s.uid])]


def is_dicom_input(folder: str | Path) -> bool:
    """True when ``folder`` holds DICOM files and no NIfTI/NRRD/MHA images at its top level."""
    from clinseg.io.dicom.series import contains_dicom
    from clinseg.io.image import has_supported_ending

    folder = Path(folder)
    if not folder.is_dir() or any(p.is_file() and has_supported_ending(p.name) for p in folder.iterdir()):
        return False
    return contains_dicom(folder)
