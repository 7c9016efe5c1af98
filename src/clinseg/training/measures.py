"""Training measures read from a run's ``metrics.jsonl``: time to convergence and convergence itself.

Seed 003 reports "time for each of the training runs to converge" and a convergence rate, "convergence
[being] defined as the model having at least 0.1 dice on the validation set after 20 epochs". Here an epoch
is one validation interval (``val_every`` iterations).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clinseg.training.metrics_log import MetricsLog

#: Seed 003's convergence rule: validation Dice >= 0.1 after 20 epochs.
CONVERGED_DICE = 0.1
CONVERGED_AFTER = 20


@dataclass(frozen=True)
class TrainingMeasures:
    """``seconds`` of optimisation in all; ``seconds_to_best`` until the best validation Dice; ``converged``
    per seed 003 (judged at the last validation when the run had fewer than 20)."""

    iterations: int
    seconds: float
    best_dice: float
    best_iteration: int
    seconds_to_best: float
    validations: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_measures(run_dir: str | Path, after: int = CONVERGED_AFTER,
                      threshold: float = CONVERGED_DICE) -> TrainingMeasures:
    """Measures of the run in ``run_dir`` (an empty log gives zeros and ``converged=False``)."""
    records = MetricsLog(Path(run_dir) / "metrics.jsonl").read()
    elapsed, best, best_it, to_best, count, judged = 0.0, float("-inf"), 0, 0.0, 0, None
    for record in records:
        elapsed += float(record.get("seconds", 0.0))
        if "val_dice" not in record:
            continue
        count += 1
        if record["val_dice"] > best:
            best, best_it, to_best = float(record["val_dice"]), int(record["iteration"]), elapsed
        if count == after:
            judged = best
    if judged is None:
        judged = best
    iterations = int(records[-1]["iteration"]) if records else 0
    return TrainingMeasures(iterations, round(elapsed, 2), max(best, 0.0) if count else 0.0, best_it,
                            round(to_best, 2), count, bool(count and judged >= threshold))
