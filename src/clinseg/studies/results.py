"""Gather the finished runs of a study into one tidy table: ``STUDY/results.csv``.

One row per run, test case and structure, with the run's coordinates (``arm, mode, size, repeat, run``)
and its evaluation metrics (``dice, hd95, assd, surface_dice`` …). Unfinished and failed runs are left out
(and counted), so a report can be made while a study is still running.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinseg.data.dataset import load_dataset
from clinseg.data.loading import load_targets
from clinseg.errors import DatasetError
from clinseg.evaluation.evaluate import write_table
from clinseg.io.image import read_geometry
from clinseg.studies.plan import StudyPlan

log = logging.getLogger(__name__)

RUN_COLUMNS = ("arm", "mode", "size", "repeat", "run")


def collect_results(plan: StudyPlan) -> pd.DataFrame:
    """The tidy results of every finished run of ``plan`` (raises when no run has finished)."""
    tables = []
    for key in plan.runs:
        if plan.status(key) != "done":
            continue
        path = plan.run_dir(key) / "evaluation" / "metrics.csv"
        if not path.is_file():
            raise DatasetError(f"{path}: missing although the run is marked done")
        metrics = pd.read_csv(path)
        seconds = json.loads((plan.run_dir(key) / "done.json").read_text(encoding="utf-8")).get("seconds")
        head = pd.DataFrame({"arm": key.arm, "mode": key.mode, "size": key.size, "repeat": key.repeat,
                             "run": key.name, "run_seconds": seconds}, index=metrics.index)
        tables.append(pd.concat([head, metrics], axis=1))
    if not tables:
        raise DatasetError(f"{plan.study_dir}: no finished run yet; run 'clinseg study run' first")
    return pd.concat(tables, ignore_index=True)


def _flat_measures(run_dir: Path) -> dict[str, Any]:
    """``measures.json`` flattened: ``<network>_<measure>`` columns plus the inference figures."""
    path = run_dir / "measures.json"
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    flat: dict[str, Any] = {k: v for k, v in raw.items() if k != "networks"}
    for network, values in raw.get("networks", {}).items():
        flat.update({f"{network}_{k}": v for k, v in values.items()})
    networks = raw.get("networks", {}).values()
    if networks:
        flat["train_seconds"] = round(sum(v["seconds"] for v in networks), 2)
        flat["train_seconds_to_best"] = round(sum(v["seconds_to_best"] for v in networks), 2)
        flat["converged"] = all(v["converged"] for v in networks)
    return flat


def run_table(plan: StudyPlan) -> pd.DataFrame:
    """One row per planned run: coordinates, status, seconds, labelled cases, and the run's measures
    (training time per network, time to the best validation, convergence, inference time per case)."""
    rows = []
    for key in plan.runs:
        status = plan.status(key)
        seconds = None
        if status == "done":
            seconds = json.loads((plan.run_dir(key) / "done.json").read_text(encoding="utf-8")).get("seconds")
        subset = plan.subset(key) if plan.subset_path(key).is_file() else None
        rows.append({"arm": key.arm, "mode": key.mode, "size": key.size, "repeat": key.repeat,
                     "run": key.name, "status": status, "seconds": seconds,
                     "labelled_cases": len(subset.labelled_cases) if subset else None,
                     **(_flat_measures(plan.run_dir(key)) if status == "done" else {})})
    return pd.DataFrame(rows)


def structure_table(plan: StudyPlan) -> pd.DataFrame:
    """Per structure: mean percentage of the test volumes it occupies (seed 003's "foreground %")."""
    dataset = load_dataset(plan.spec.dataset)
    fractions: dict[str, list[float]] = {s: [] for s in dataset.spec.structures}
    for record in dataset.test:
        geometry = read_geometry(record.images[0])
        target, annotated = load_targets(record, dataset.spec, geometry)
        for n, name in enumerate(dataset.spec.structures):
            if annotated[n]:
                fractions[name].append(100.0 * float(target[n].mean()))
    return pd.DataFrame([{"structure": s, "foreground_percent": float(np.mean(v)) if v else np.nan,
                          "test_cases": len(v)} for s, v in fractions.items()])


def write_results(plan: StudyPlan) -> Path:
    """Write ``STUDY/results.csv``, ``runs.csv`` and ``structures.csv``; returns the results path."""
    results = collect_results(plan)
    path = plan.study_dir / "results.csv"
    write_table(results, path)
    write_table(run_table(plan), plan.study_dir / "runs.csv")
    if not (plan.study_dir / "structures.csv").is_file():
        write_table(structure_table(plan), plan.study_dir / "structures.csv")
    log.info("results of %d run(s) -> %s", results["run"].nunique(), path)
    return path
