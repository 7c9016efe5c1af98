"""Compare a folder of predictions with a dataset's reference: ``clinseg evaluate PRED_DIR REF --out DIR``.

Writes ``metrics.csv`` (one row per case and structure) and ``summary.csv`` (per structure: mean, std, 95% CI).
The predictions may be clinseg's or another tool's (nnU-Net label maps, TotalSegmentator mask folders, with
a name map): :mod:`clinseg.evaluation.layouts`.
A structure the reference does not delineate is reported with ``delineated = False`` and empty metrics —
"not delineated", never 0 or 1. With ``regions`` (e.g. ``"brats"``) the rows are per region (a union of labels,
:mod:`clinseg.evaluation.regions`) instead of per structure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from clinseg.data.dataset import load_dataset
from clinseg.data.loading import UNKNOWN, load_targets
from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.layouts import open_predictions
from clinseg.evaluation.metrics import METRIC_NAMES, structure_metrics
from clinseg.evaluation.regions import (
    Region,
    get_regions,
    region_rows,
    region_structures,
)
from clinseg.evaluation.summary import summarise
from clinseg.io.atomic import atomic_path, ensure_folder
from clinseg.io.image import read_geometry
from clinseg.progress import track

METRICS_COLUMNS = ("case", "structure", *METRIC_NAMES, "delineated")


def evaluate_predictions(
    pred_dir: str | Path, dataset_dir: str | Path, split: str = "test", tolerance_mm: float = 2.0,
    regions: str | Sequence[Region] | None = None, layout: str = "clinseg",
    names: str | Path | Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """The tidy metrics table for every reference case of ``split`` (columns :data:`METRICS_COLUMNS`).

    ``regions`` (a preset name such as ``"brats"`` or a table of :class:`Region`) gives one row per case and
    region, the ``structure`` column holding the region name, instead of one per case and structure.
    ``layout`` and ``names`` say how the predictions are stored (:func:`~clinseg.evaluation.layouts.
    open_predictions`: clinseg's masks, label maps, another tool's mask folders with a name map); only the
    structures the name map lists are scored.
    """
    pred_dir = Path(pred_dir)
    dataset = load_dataset(dataset_dir)
    records = dataset.cases(split)  # type: ignore[arg-type]
    if not records:
        raise DatasetError(f"{dataset.root}: no {split} cases to evaluate against")
    source, scored = open_predictions(pred_dir, dataset.spec, layout, names)
    members = None
    if regions is not None:
        members = region_structures(get_regions(regions), dataset.spec.label_values, str(dataset.root / "dataset.json"))
        unmapped = sorted({s for names_ in members.values() for s in names_} - set(scored))
        if unmapped:
            raise ConfigError(f"--regions needs {', '.join(unmapped)}, which --names does not map")
    rows = []
    for record in track(records, "evaluating", what="cases"):
        if not source.has_case(record.case_id):
            raise DatasetError(f"{source.where(record.case_id)}: no prediction for reference case {record.case_id!r}")
        geometry = read_geometry(record.images[0])
        target, annotated = load_targets(record, dataset.spec, geometry)
        if members is not None:
            rows.extend(region_rows(
                record.case_id, target, annotated, dataset.spec.structures, members,
                partial(source.mask, record.case_id, shape=geometry.shape),
                geometry.spacing_zyx, tolerance_mm))
            continue
        for n, name in enumerate(dataset.spec.structures):
            if name not in scored:
                continue
            row: dict[str, object] = {"case": record.case_id, "structure": name, "delineated": bool(annotated[n])}
            if annotated[n]:
                pred = source.mask(record.case_id, name, geometry.shape)
                known = target[n] != UNKNOWN  # the dataset's ignore label: scored nowhere
                ref = target[n] == 1
                if not known.all():
                    pred = np.logical_and(pred, known)
                row.update(structure_metrics(pred, ref, geometry.spacing_zyx, tolerance_mm))
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
    tolerance_mm: float = 2.0, regions: str | Sequence[Region] | None = None, layout: str = "clinseg",
    names: str | Path | Mapping[str, object] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate and write ``metrics.csv`` and ``summary.csv`` into ``out_dir``; returns both tables.

    ``regions``, ``layout``, ``names``: see :func:`evaluate_predictions`.
    """
    out_dir = ensure_folder(out_dir)  # a bad --out is an error before the metrics are computed
    metrics = evaluate_predictions(pred_dir, dataset_dir, split, tolerance_mm, regions, layout, names)
    summary = summarise(metrics)
    write_table(metrics, out_dir / "metrics.csv")
    write_table(summary, out_dir / "summary.csv")
    return metrics, summary
