"""Gather the finished runs of a study into one tidy table: ``STUDY/results.csv``.

One row per run, test case and structure, with the run's coordinates (``arm, mode, size, repeat, run``)
and its evaluation metrics (``dice, hd95, assd, surface_dice`` …). Unfinished and failed runs are left out
(and counted), so a report can be made while a study is still running.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from clinseg.errors import DatasetError
from clinseg.evaluation.evaluate import write_table
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


def run_table(plan: StudyPlan) -> pd.DataFrame:
    """One row per planned run: coordinates, status, seconds, labelled cases and references per structure."""
    rows = []
    for key in plan.runs:
        status = plan.status(key)
        seconds = None
        if status == "done":
            seconds = json.loads((plan.run_dir(key) / "done.json").read_text(encoding="utf-8")).get("seconds")
        subset = plan.subset(key) if plan.subset_path(key).is_file() else None
        rows.append({"arm": key.arm, "mode": key.mode, "size": key.size, "repeat": key.repeat,
                     "run": key.name, "status": status, "seconds": seconds,
                     "labelled_cases": len(subset.labelled_cases) if subset else None})
    return pd.DataFrame(rows)


def write_results(plan: StudyPlan) -> Path:
    """Write ``STUDY/results.csv`` and ``STUDY/runs.csv``; returns the results path."""
    results = collect_results(plan)
    path = plan.study_dir / "results.csv"
    write_table(results, path)
    write_table(run_table(plan), plan.study_dir / "runs.csv")
    log.info("results of %d run(s) -> %s", results["run"].nunique(), path)
    return path
