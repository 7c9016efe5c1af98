"""Execute one run of a study: the arm's method on its subset, then the evaluation; status files.

A run is finished when ``done.json`` exists; it is then never recomputed. A run that raised writes
``failed.json`` (the error and traceback) and is retried only on request. A run that was interrupted (Ctrl-C:
``KeyboardInterrupt`` passes through) has neither and resumes from its last checkpoint. This function is what
every executor (local processes, Ray, this process) calls with only the study folder and the run's key. The
study validated its datasets before its first run (:func:`clinseg.studies.plan.prepare_study`), so runs
train with ``skip_validation``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from clinseg.data.dataset import load_dataset
from clinseg.errors import ConfigError
from clinseg.evaluation.evaluate import evaluate_to_folder
from clinseg.io.atomic import write_text
from clinseg.studies.arms import ARM_METHODS, ArmContext
from clinseg.studies.plan import RunKey, StudyPlan, open_study, subset_seed
from clinseg.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What an executor learns about a run: ``status`` is ``done``, ``failed`` or ``skipped``."""

    key: RunKey
    status: str
    seconds: float = 0.0
    error: str = ""


def run_config(plan: StudyPlan, key: RunKey, device: str | None = None, threads: int | None = None) -> TrainConfig:
    """The training configuration of one run: the arm's config with subset, validation and seed set."""
    arm = plan.spec.arm(key.arm)
    cfg = plan.spec.train_config(arm)
    subset = plan.subset(key)
    cfg = dataclasses.replace(
        cfg,
        subset={case: list(kept) for case, kept in subset.cases.items() if kept},
        val_ids=list(plan.val_ids),
        seed=subset_seed(plan.spec.seed, key.mode, key.size, key.repeat),
    )
    if device is not None:
        cfg.device = device
    if threads is not None:
        cfg.threads = threads
    return cfg


def execute_run(study_dir: str | Path, key: RunKey, *, device: str | None = None,
                threads: int | None = None, retry_failed: bool = False) -> RunOutcome:
    """Run ``key`` of the study in ``study_dir`` unless it is done (or failed and not retried).

    Never raises for a failure of the run itself: the error is written to ``failed.json`` and returned.
    """
    os.environ.setdefault("CLINSEG_PROGRESS", "0")  # workers must not draw progress bars over the table
    plan = open_study(study_dir)
    status = plan.status(key)
    if status == "done" or (status == "failed" and not retry_failed):
        return RunOutcome(key, "skipped")
    run_dir = plan.run_dir(key)
    (run_dir / "failed.json").unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        arm = plan.spec.arm(key.arm)
        dataset = load_dataset(plan.spec.dataset)
        if not dataset.test:
            raise ConfigError(f"{dataset.root}: no test cases")
        context = ArmContext(
            dataset_dir=plan.spec.dataset,
            test_images=dataset.test[0].images[0].parent,
            run_dir=run_dir,
            predictions_dir=run_dir / "predictions",
            config=run_config(plan, key, device, threads),
            options=arm.options,
            largest_component=plan.spec.largest_component,
            study_dir=plan.study_dir,
            arm=key.arm,
            skip_validation=True,
        )
        ARM_METHODS.get(arm.method)(context)
        evaluate_to_folder(context.predictions_dir, plan.spec.dataset, run_dir / "evaluation",
                           regions=plan.spec.regions)
        seconds = time.perf_counter() - start
        write_text(run_dir / "done.json", json.dumps(
            {"run": key.name, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
             "host": os.uname().nodename}, indent=2))
        return RunOutcome(key, "done", seconds)
    except Exception as exc:  # noqa: BLE001 - reported in failed.json and the table; Ctrl-C is not caught
        seconds = time.perf_counter() - start
        message = f"{type(exc).__name__}: {exc}"
        log.error("run %s failed: %s", key.name, message)
        write_text(run_dir / "failed.json", json.dumps(
            {"run": key.name, "error": message, "traceback": traceback.format_exc(),
             "seconds": round(seconds, 1)}, indent=2))
        return RunOutcome(key, "failed", seconds, message)
