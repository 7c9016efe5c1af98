"""Compare a folder of predictions with a dataset's reference: ``clinseg evaluate PRED_DIR REF --out DIR``.

Writes ``metrics.csv`` (one row per case and structure) and ``summary.csv`` (per structure: mean, std, 95% CI).
A structure the reference does not delineate is reported with ``delineated = False`` and empty metrics —
"not delineated", never 0 or 1. With ``regions`` (e.g. ``"brats"``) the rows are per region (a union of labels,
:mod:`clinseg.evaluation.regions`) instead of per structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from clinseg.data.dataset import load_dataset
from clinseg.data.loading import load_targets
from clinseg.errors import DatasetError
from clinseg.evaluation.metrics import METRIC_NAMES, structure_metrics
from clinseg.evaluation.regions import (
    Region,
    get_regions,
    region_rows,
    region_structures,
)
from clinseg.evaluation.summary import summarise
from clinseg.io.atomic import atomic_path, ensure_folder
from clinseg.io.image import read_geometry, read_image
from clinseg.progress import track

METRICS_COLUMNS = ("case", "structure", *METRIC_NAMES, "delineated")


def _prediction_mask(pred_dir: Path, case: str, structure: str, shape: tuple[int, ...]) -> np.ndarray:
    path = pred_dir / case / f"{structure}.nii.gz"
    if not path.is_file():
        raise DatasetError(f"{path}: prediction missing for case {case!r} structure {structure!r}")
    array = read_image(path).array
    if array.shape != shape:
        raise DatasetError(f"{path}: prediction shape {array.shape} differs from the reference {shape}")
    return array > 0


def evaluate_predictions(
    pred_dir: str | Path, dataset_dir: str | Path, split: str = "test", tolerance_mm: float = 2.0,
    regions: str | Sequence[Region] | None = None,
) -> pd.DataFrame:
    """The tidy metrics table for every reference case of ``split`` (columns :data:`METRICS_COLUMNS`).

    ``regions`` (a preset name such as ``"brats"`` or a table of :class:`Region`) gives one row per case and
    region, the ``structure`` column holding the region name, instead of one per case and structure.
    """
    pred_dir = Path(pred_dir)
    dataset = load_dataset(dataset_dir)
    records = dataset.cases(split)  # type: ignore[arg-type]
    if not records:
        raise DatasetError(f"{dataset.root}: no {split} cases to evaluate against")
    members = None
    if regions is not None:
        members = region_structures(get_regions(regions), dataset.spec.label_values, str(dataset.root / "dataset.json"))
    rows = []
    for record in track(records, "evaluating"):
        if not (pred_dir / record.case_id).is_dir():
            raise DatasetError(f"{pred_dir / record.case_id}: no prediction for reference case {record.case_id!r}")
        geometry = read_geometry(record.images[0])
        target, annotated = load_targets(record, dataset.spec, geometry)
        if members is not None:
            rows.extend(region_rows(
                record.case_id, target, annotated, dataset.spec.structures, members,
                partial(_prediction_mask, pred_dir, record.case_id, shape=geometry.shape),
                geometry.spacing_zyx, tolerance_mm))
            continue
        for n, name in enumerate(dataset.spec.structures):
            row: dict[str, object] = {"case": record.case_id, "structure": name, "delineated": bool(annotated[n])}
            if annotated[n]:
                pred = _prediction_mask(pred_dir, record.case_id, name, geometry.shape)
                row.update(structure_metrics(pred, target[n] > 0, geometry.spacing_zyx, tolerance_mm))
            else:
                row.update({m: np.nan for m in METRIC_NAMES})
            rows.append(row)
    return pd.DataFrame(rows, columns=list(METRICS_COLUMNS))


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def evaluate_to_folder(
    pred_dir: str | Path, dataset_dir: str | Path, out_dir: str | Path, split: str = "test",
    tolerance_mm: float = 2.0, regions: str | Sequence[Region] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate and write ``metrics.csv`` and ``summary.csv`` into ``out_dir``; returns both tables.

    ``regions``: see :func:`evaluate_predictions` (rows per region, e.g. ``"brats"``, instead of per structure).
    """
    out_dir = ensure_folder(out_dir)  # a bad --out is an error before the metrics are computed
    metrics = evaluate_predictions(pred_dir, dataset_dir, split, tolerance_mm, regions)
    summary = summarise(metrics)
    write_table(metrics, out_dir / "metrics.csv")
    write_table(summary, out_dir / "summary.csv")
    return metrics, summary
