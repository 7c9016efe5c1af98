"""The learning schedule: optimiser, learning-rate decay with warm-up, and training for a wall-clock budget.

* ``adamw`` (the default): AdamW (learning rate 1e-3, weight decay 1e-4) with nnU-Net's polynomial decay
  ``lr * (1 - i / n) ** 0.9`` (or ``cosine``);
* ``sgd``: nnU-Net's SGD (momentum 0.99, Nesterov, learning rate 0.01; set ``weight_decay: 3e-5`` as nnU-Net).
  On a CPU budget it learns too slowly: on OpenKBP its validation Dice was still 0.00 after 250 iterations,
  where AdamW's was 0.21 (docs/benchmarks.md);
* ``adam`` with ``constant``: the seed studies' setting.

Every decay starts with a linear warm-up (at most a tenth of the run), which keeps the first steps of a
freshly initialised network with momentum 0.99 from diverging.

``time: 30m`` trains for a wall-clock budget: the first :data:`MEASURED_STEPS` steps (inside the warm-up,
whose learning rate does not depend on the run's length) and one validation are timed, then the number of
iterations is fixed so that steps and validations fill the budget, and the decay is fitted to it
(:class:`TimeBudget`). The run records what it measured and chose (``RUN/schedule.json``).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text

OPTIMIZERS = ("sgd", "adamw", "adam")
DECAYS = ("poly", "cosine", "constant")
#: Default learning rate of each optimiser (nnU-Net's 0.01 for SGD).
DEFAULT_LR = {"sgd": 0.01, "adamw": 1e-3, "adam": 1e-3}
#: Steps timed before a time budget fixes the number of iterations.
MEASURED_STEPS = 10


@dataclass
class ScheduleSettings:
    """The ``schedule:`` section of a training configuration.

    Attributes
    ----------
    optimizer : ``adamw`` (default), ``sgd`` (nnU-Net's) or ``adam``.
    decay : ``poly`` (exponent 0.9), ``cosine`` or ``constant``.
    warmup : iterations of linear warm-up (at most a tenth of the run is used).
    momentum : SGD momentum (Nesterov).
    weight_decay : decoupled for AdamW, L2 for SGD and Adam.
    grad_clip : clip the gradient norm to this (0 = no clipping; nnU-Net clips at 12).
    time : wall-clock budget (``30m``, ``1h30m``, ``90s``); empty = ``iterations`` steps.
    """

    optimizer: str = "adamw"
    decay: str = "poly"
    warmup: int = 50
    momentum: float = 0.99
    weight_decay: float = 1e-4
    grad_clip: float = 12.0
    time: str = ""

    def validate(self, source: str = "schedule") -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"{source}: optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.decay not in DECAYS:
            raise ConfigError(f"{source}: decay must be one of {', '.join(DECAYS)}, got {self.decay!r}")
        if self.warmup < 0 or self.grad_clip < 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError(f"{source}: warmup, grad_clip and weight_decay must be >= 0 and momentum in [0, 1)")
        if self.time:
            parse_duration(self.time, source)


def parse_duration(text: str, source: str = "time") -> float:
    """Seconds of ``30m``, ``1h30m``, ``90s``, ``2h`` or a plain number of seconds."""
    value = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", value)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != value.replace(" ", ""):
            raise ConfigError(f"{source}: a duration such as 30m, 1h30m or 90s, got {text!r}")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{source}: the duration must be positive, got {text!r}")
    return seconds


def base_lr(settings: ScheduleSettings, lr: float) -> float:
    """``lr`` when set (> 0), else the optimiser's default."""
    return lr if lr > 0 else DEFAULT_LR[settings.optimizer]


def build_optimizer(model: torch.nn.Module, settings: ScheduleSettings, lr: float) -> torch.optim.Optimizer:
    """The configured optimiser over ``model``'s parameters at learning rate ``lr``."""
    params = model.parameters()
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=settings.momentum, nesterov=settings.momentum > 0,
                               weight_decay=settings.weight_decay)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=settings.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=settings.weight_decay)


def lr_factor(iteration: int, total: int, settings: ScheduleSettings) -> float:
    """The learning-rate multiplier for step ``iteration`` (0-based) of ``total``."""
    warmup = min(settings.warmup, total // 10)
    if iteration < warmup:
        return (iteration + 1) / warmup
    if settings.decay == "constant" or total <= warmup:
        return 1.0
    progress = min(max((iteration - warmup) / max(total - warmup, 1), 0.0), 1.0)
    if settings.decay == "poly":
        return (1.0 - progress) ** 0.9
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class TimeBudget:
    """Fix a run's number of iterations from its measured speed so that it ends within ``seconds``.

    The loop calls :meth:`observe` after each step with the iteration reached. The first two steps are not
    measured (they pay for lazy initialisation); after :data:`MEASURED_STEPS` more, the total is fixed from
    the wall time per iteration (steps, logs, checkpoints) plus the share of a validation per iteration, one
    validation kept for the end. When a fifth of the run is done the total is corrected from the speed over
    that longer window, validations included (a shared machine's speed drifts), and again halfway through
    what is left, each time, until fewer than ``2 * MEASURED_STEPS`` iterations remain; the decay follows the
    corrected length from there.
    """

    def __init__(self, seconds: float, val_every: int, validation_seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.val_every = val_every
        self.validation_seconds = validation_seconds
        self.started = time.perf_counter()
        self.step_seconds: float | None = None
        self._mark: tuple[int, float] | None = None
        self._recheck: int | None = None
        self.corrected = False

    def _fit(self, iteration: int, per_iteration: float, now: float) -> int:
        left = self.seconds - (now - self.started) - self.validation_seconds  # one validation kept for the end
        return max(iteration + 1, iteration + int(left / max(per_iteration, 1e-9)))

    def refit(self, iteration: int) -> int:
        """The total from the measured step time and the current validation time (after timing one)."""
        per_iteration = (self.step_seconds or 0.0) + self.validation_seconds / max(self.val_every, 1)
        return self._fit(iteration, per_iteration, time.perf_counter())

    def observe(self, iteration: int, first: int) -> int | None:
        """The (new) total number of iterations when it is fixed or corrected at ``iteration``, else ``None``
        (``first``: the iteration the loop started from)."""
        now = time.perf_counter()
        if self._mark is None:
            if iteration - first >= 2:
                self._mark = (iteration, now)
            return None
        done = iteration - self._mark[0]
        if self.step_seconds is None:
            if done < MEASURED_STEPS:
                return None
            self.step_seconds = (now - self._mark[1]) / done
            total = self.refit(iteration)
            self._recheck = iteration + max((total - iteration) // 5, MEASURED_STEPS)
            return total
        if self._recheck is not None and iteration >= self._recheck:
            self.corrected = True
            total = self._fit(iteration, (now - self._mark[1]) / done, now)
            left = total - iteration
            self._recheck = iteration + left // 2 if left > 2 * MEASURED_STEPS else None
            return total
        return None

    def record(self, run_dir: Path, iterations: int, finished: bool = False) -> None:
        """Write what was measured and chosen to ``RUN/schedule.json`` (with ``finished``: also the seconds
        the training took, from the start of the budget to the last step)."""
        record = {"budget_seconds": self.seconds, "step_seconds": self.step_seconds,
                  "validation_seconds": self.validation_seconds, "val_every": self.val_every,
                  "iterations": iterations}
        if finished:
            record["elapsed_seconds"] = time.perf_counter() - self.started
        write_text(run_dir / "schedule.json", json.dumps(record, indent=2))
