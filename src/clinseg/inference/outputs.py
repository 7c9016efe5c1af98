"""What ``clinseg predict`` writes besides the masks, so a prediction opens named and coloured in a viewer.

``--format`` (:data:`FORMATS`):

* ``nifti`` (default): ``OUT/<case>/<structure>.nii.gz``; for exclusive classes also the label map
  ``OUT/<case>.nii.gz`` in the dataset's label values.
* ``seg-nrrd``: the same, plus ``OUT/<case>.seg.nrrd``, one 3D Slicer segmentation of every structure (named,
  coloured, SNOMED CT terminology; overlapping structures on separate layers, :mod:`clinseg.io.seg_nrrd`).
* ``rtstruct`` / ``dicom-seg``: DICOM referencing a DICOM input series
  (:mod:`clinseg.inference.dicom_predict`).

Whenever label maps are written, the folder also gets their colour tables: ``OUT/labels.ctbl`` (3D Slicer)
and ``OUT/labels_itksnap.txt`` (ITK-SNAP), :mod:`clinseg.io.colour_tables`. Colours are the dataset's
(``dataset.json`` ``colours``, when the run records its dataset) or :data:`PALETTE` in structure order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.errors import ConfigError, DatasetError
from clinseg.io.colour_tables import (
    labels_of,
    write_itksnap_labels,
    write_slicer_colour_table,
)
from clinseg.io.dicom.provenance import Provenance
from clinseg.io.image import read_image
from clinseg.io.seg_nrrd import write_seg_nrrd
from clinseg.progress import track

log = logging.getLogger(__name__)

#: Output formats of ``clinseg predict --format``; the DICOM ones need DICOM input.
FORMATS: tuple[str, ...] = ("nifti", "seg-nrrd", "rtstruct", "dicom-seg")
DICOM_FORMATS: tuple[str, ...] = ("rtstruct", "dicom-seg")
#: File names of the label-map colour tables in the output folder.
SLICER_TABLE, ITKSNAP_TABLE = "labels.ctbl", "labels_itksnap.txt"
#: Display colours (RGB) given to structures in order when the dataset has none.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
)


def check_format(output_format: str) -> str:
    """``output_format`` when it is one of :data:`FORMATS`, else a :class:`ConfigError`."""
    if output_format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    return output_format


def structure_colours(structures: Sequence[str], dataset_colours: dict[str, Any] | None = None
                      ) -> list[tuple[int, int, int]]:
    """One RGB colour per structure: the dataset's when it has one, else the palette's by position."""
    out = []
    for n, name in enumerate(structures):
        given = (dataset_colours or {}).get(name)
        ok = isinstance(given, list) and len(given) == 3 and all(isinstance(c, int) for c in given)
        out.append(tuple(given) if ok else PALETTE[n % len(PALETTE)])  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def run_colours(run_dir: str | Path | None) -> dict[str, Any]:
    """``colours`` of the dataset a run was trained on, when the run folder records where it is."""
    if run_dir is None:
        return {}
    for name in ("run.json", "fingerprint.json"):
        try:
            info = json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))
            spec = json.loads((Path(info["dataset"]) / "dataset.json").read_text(encoding="utf-8"))
            return dict(spec.get("colours") or {})
        except (OSError, KeyError, TypeError, ValueError):
            continue
    return {}


def provenance_of(predictor: object, run_dir: str | Path | None) -> Provenance:
    """The run's name and network (the first run's, for a pipeline of several) for DICOM headers."""
    config = getattr(predictor, "config", None)
    if config is None and getattr(predictor, "predictors", None):
        config = getattr(predictor.predictors[0], "config", None)  # type: ignore[attr-defined]
    run = Path(run_dir).resolve().name if run_dir is not None else ""
    return Provenance(run=run, model=str(getattr(config, "model", "") or ""))


def write_label_tables(out_dir: str | Path, structures: Sequence[str], values: Sequence[int],
                       colours: Sequence[tuple[int, int, int]]) -> list[Path]:
    """Write the Slicer and ITK-SNAP tables of the label maps in ``out_dir``; returns their paths."""
    labels = labels_of(structures, values, colours)
    paths = [Path(out_dir) / SLICER_TABLE, Path(out_dir) / ITKSNAP_TABLE]
    write_slicer_colour_table(paths[0], labels)
    write_itksnap_labels(paths[1], labels)
    return paths


def write_seg_nrrd_cases(out_dir: str | Path, cases: Sequence[str], structures: Sequence[str],
                         colours: Sequence[tuple[int, int, int]]) -> list[Path]:
    """``OUT/<case>.seg.nrrd`` for every predicted case, from its ``OUT/<case>/<structure>.nii.gz`` masks."""
    out_dir, written = Path(out_dir), []
    for case in track(list(cases), "writing .seg.nrrd", what="cases"):
        masks, geometry = [], None
        for name in structures:
            path = out_dir / case / f"{name}.nii.gz"
            if not path.is_file():
                raise DatasetError(f"{path}: mask missing, cannot write {case}.seg.nrrd")
            image = read_image(path)
            masks.append(image.array)
            geometry = geometry or image.geometry
        if geometry is None:
            continue
        target = out_dir / f"{case}.seg.nrrd"
        layers = write_seg_nrrd(target, np.stack(masks), structures, colours, geometry)
        log.debug("%s: %d segment(s) on %d layer(s)", target, len(masks), max(layer for layer, _ in layers) + 1)
        written.append(target)
    return written


def viewer_files(out_dir: str | Path, cases: Sequence[str], structures: Sequence[str],
                 label_values: Sequence[int] | None, output_format: str, run_dir: str | Path | None
                 ) -> list[Path]:
    """Write what a NIfTI prediction in ``out_dir`` needs to open named and coloured: the label maps' colour
    tables (when ``label_values``, exclusive classes) and, for ``seg-nrrd``, one ``.seg.nrrd`` per case."""
    colours = structure_colours(structures, run_colours(run_dir))
    written = []
    if label_values is not None:
        written += write_label_tables(out_dir, structures, label_values, colours)
    if check_format(output_format) == "seg-nrrd":
        written += write_seg_nrrd_cases(out_dir, cases, structures, colours)
    return written
