"""Per-class thresholds chosen on the validation cases after training (``calibrate: true``).

A sigmoid trained with a class weighting does not output calibrated probabilities: the adaptive target-weight
loss of seed 001 (§4.2.1.2) gives a class's few positive voxels the share ``t_c`` of its loss, so at the 0.5
threshold the network calls a margin around every small organ positive (the lens study of
``docs/studies.md`` Finding 7 measured precision 0.08-0.26 at sensitivity ~1). Seed 004 (Sec. 4) chooses
its operating point as the threshold with the best Dice; here it is chosen per class on the *validation*
cases, never on the test cases, with the best checkpoint, and the counts pooled over those cases
(:func:`clinseg.evaluation.operating_point.best_dice_threshold_pooled`) on :data:`CALIBRATION_THRESHOLDS`.

``RUN/thresholds.json`` records, per output class, the chosen threshold and the validation Dice at it and at
the configured threshold; :class:`clinseg.inference.predictor.Predictor` applies it. A class no validation
case delineates (or whose delineations are empty) keeps the configured threshold. The file names the
checkpoint iteration it was chosen for, so an extended run that finds a better checkpoint chooses again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from clinseg.data.loading import CaseData
from clinseg.errors import CheckpointError
from clinseg.evaluation.operating_point import (
    DEFAULT_THRESHOLDS,
    best_dice_threshold_pooled,
)
from clinseg.inference.sliding_window import predict_probabilities
from clinseg.io.atomic import write_text
from clinseg.progress import track

__all__ = ["CALIBRATION_THRESHOLDS", "THRESHOLDS_FILE", "choose_thresholds", "read_thresholds", "write_thresholds"]

log = logging.getLogger(__name__)

#: The file of a run folder that holds the chosen thresholds.
THRESHOLDS_FILE = "thresholds.json"

#: The sweep: 0.01-0.99 in steps of 0.01, refined to steps of 0.001 below 0.01 and above 0.99. The adaptive
#: target weight pushes small organs' best thresholds to the top of the 0.01 grid (the lens study's chiasm
#: and pituitary chose 0.98-0.99 on it), where a saturated sigmoid still separates a margin.
CALIBRATION_THRESHOLDS: np.ndarray = np.unique(np.round(np.concatenate(
    [np.arange(1, 10) / 1000, DEFAULT_THRESHOLDS, 1 - np.arange(1, 10) / 1000]), 3))


def choose_thresholds(
    model: torch.nn.Module,
    cases: Sequence[CaseData],
    outputs: Sequence[str],
    *,
    patch_size: Sequence[int],
    overlap: float,
    default: float,
    device: torch.device,
) -> dict[str, dict[str, float | int]]:
    """Per output class: ``threshold`` (best pooled validation Dice on :data:`CALIBRATION_THRESHOLDS`, or
    ``default``), ``dice`` at it, ``dice_default`` at ``default``, and ``cases`` (validation cases that
    delineate it, non-empty).

    ``cases`` are validation cases in the output classes (binary targets, ``annotated`` per class, as
    :func:`clinseg.training.label_view.validation_view` gives them); sigmoid outputs only.
    """
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in outputs}
    was_training = model.training
    for case in track(list(cases), "choosing thresholds"):
        probs = predict_probabilities(model, case.image, tuple(patch_size), overlap=overlap,
                                      activation="sigmoid", device=device)
        for n, name in enumerate(outputs):
            if case.annotated[n] and case.target[n].any():
                pairs[name].append((probs[n], case.target[n] > 0))
    model.train(was_training)
    chosen: dict[str, dict[str, float | int]] = {}
    for name, cases_of in pairs.items():
        if not cases_of:
            chosen[name] = {"threshold": default, "dice": float("nan"), "dice_default": float("nan"), "cases": 0}
            continue
        point = best_dice_threshold_pooled(cases_of, CALIBRATION_THRESHOLDS)
        chosen[name] = {"threshold": point.threshold, "dice": round(point.dice, 4),
                        "dice_default": round(best_dice_threshold_pooled(cases_of, [default]).dice, 4),
                        "cases": len(cases_of)}
    return chosen


def write_thresholds(run_dir: Path, chosen: dict[str, dict[str, float | int]], iteration: int) -> None:
    """Write ``RUN/thresholds.json`` atomically, for the best checkpoint of ``iteration``."""
    record = {"checkpoint": "best", "iteration": iteration, "classes": chosen}
    write_text(run_dir / THRESHOLDS_FILE, json.dumps(record, indent=2, allow_nan=True) + "\n")
    summary = ", ".join(f"{name} {v['threshold']:.2f}" for name, v in chosen.items() if v["cases"])
    log.info("thresholds chosen on the validation cases: %s", summary or "none (no delineated class)")


def read_thresholds(run_dir: Path, outputs: Sequence[str]) -> tuple[float, ...] | None:
    """The thresholds of ``RUN/thresholds.json`` in ``outputs`` order; ``None`` when the run has none."""
    path = Path(run_dir) / THRESHOLDS_FILE
    if not path.is_file():
        return None
    try:
        classes = json.loads(path.read_text(encoding="utf-8"))["classes"]
        values = tuple(float(classes[name]["threshold"]) for name in outputs)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable thresholds ({type(exc).__name__}: {exc}); delete the file "
                              "to predict at the configured threshold") from exc
    if not all(0 < v < 1 for v in values):
        raise CheckpointError(f"{path}: thresholds must lie in (0, 1), got {list(values)}")
    return values


def thresholds_iteration(run_dir: Path) -> int | None:
    """The checkpoint iteration ``RUN/thresholds.json`` was chosen for (``None``: no or unreadable file)."""
    try:
        return int(json.loads((Path(run_dir) / THRESHOLDS_FILE).read_text(encoding="utf-8"))["iteration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
