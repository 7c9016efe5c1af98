"""The training loop, composed of parts passed in: sampler, model, loss, optimiser, validator, checkpointing.

Nothing here knows about files or datasets beyond the run folder it writes checkpoints and logs to, so
variants (other samplers, losses, networks) plug in without subclassing a trainer.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

import numpy as np
import torch

from clinseg.data.augment import random_flip, random_intensity
from clinseg.losses.registry import LossFn
from clinseg.progress import TextProgress, make_progress
from clinseg.training.checkpoint import TrainState, save_checkpoint
from clinseg.training.config import TrainConfig
from clinseg.training.device import autocast
from clinseg.training.metrics_log import MetricsLog
from clinseg.training.sampling import PatchSource
from clinseg.training.schedule import TimeBudget, lr_factor, set_lr

log = logging.getLogger(__name__)
Validator = Callable[[torch.nn.Module], dict[str, float]]


@dataclass
class LoopParts:
    """What the loop composes."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    sampler: PatchSource
    validator: Validator | None
    device: torch.device
    amp: torch.dtype | None = None
    #: The validator's score that selects ``best.pt`` and drives early stopping, and its direction.
    #: ``state.best_score`` holds it signed so that higher is better (a minimised L1 is stored negated).
    monitor: str = "dice"
    higher_is_better: bool = True
    #: Fixes the number of iterations from the measured speed (``schedule.time``); ``on_total(n)`` is told.
    budget: TimeBudget | None = None
    on_total: Callable[[int], None] | None = None


class _StopRequest:
    """Ctrl-C / SIGTERM handler: the first signal asks the loop to stop after the current iteration (so
    the checkpoint is exact); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self)
            except ValueError:  # not the main thread: signals stay with the caller
                pass

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _batch_tensors(parts: LoopParts, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                 dict[str, torch.Tensor]]:
    batch = parts.sampler.batch(cfg.batch_size)
    image, target = batch.image, batch.target
    if cfg.flip_axes:
        image, target = random_flip(image, target, cfg.flip_axes, parts.sampler.rng)
    if cfg.intensity_augment:
        image = random_intensity(image, parts.sampler.rng)
    to = parts.device
    extras = {} if batch.image_labels is None else {"image_labels": torch.from_numpy(batch.image_labels).to(to)}
    return (
        torch.from_numpy(np.ascontiguousarray(image)).to(to, non_blocking=True),
        torch.from_numpy(np.ascontiguousarray(target)).to(to, non_blocking=True),
        torch.from_numpy(batch.annotated).to(to),
        extras,
    )


def train_step(parts: LoopParts, cfg: TrainConfig, total: int | None = None, iteration: int = 0) -> float:
    """One optimiser step on one sampled batch; returns the loss value.

    The network returns logits, or :class:`~clinseg.models.outputs.NetworkOutputs` with training-only heads;
    the loss gets either (losses of such networks accept them), plus the batch's ``image_labels`` when the
    sampler gives image-level labels.
    """
    image, target, annotated, extras = _batch_tensors(parts, cfg)
    set_lr(parts.optimizer, cfg.lr * lr_factor(iteration, total or cfg.iterations, cfg.schedule))
    parts.optimizer.zero_grad(set_to_none=True)
    with autocast(parts.device, parts.amp):
        outputs = parts.model(image)
    loss = parts.loss_fn(outputs.float(), target, annotated, **extras)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training loss became {loss.item()} (lower the learning rate?)")
    loss.backward()
    if cfg.schedule.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), cfg.schedule.grad_clip)
    parts.optimizer.step()
    return float(loss.detach())


def run_loop(
    parts: LoopParts,
    cfg: TrainConfig,
    state: TrainState,
    run_dir: Path,
    metrics: MetricsLog,
    on_iteration: Callable[[int], None] | None = None,
) -> TrainState:
    """Train from ``state.iteration`` to ``cfg.iterations`` (or early stop), checkpointing as it goes.

    ``last.pt`` is written every ``cfg.checkpoint_every`` iterations, at the end, and when the run is
    interrupted (Ctrl-C or SIGTERM), after the current iteration; ``best.pt`` whenever validation Dice
    improves. ``on_iteration`` is called after each completed iteration (tests use it to interrupt).
    """
    ckpt_dir = run_dir / "checkpoints"

    def save_last() -> None:
        save_checkpoint(ckpt_dir / "last.pt", parts.model, parts.optimizer, state)

    total = cfg.iterations
    first = state.iteration
    report = TextProgress(total, state.iteration)

    stop = _StopRequest()
    stop.install()
    parts.model.train()
    losses: list[float] = []
    at_boundary = True  # False while an optimiser step is half done: never checkpoint that
    try:
        with make_progress() as progress:
            task = progress.add_task("training", total=total, completed=state.iteration, status="")
            while state.iteration < total and not state.finished:
                start = time.perf_counter()
                at_boundary = False
                loss = train_step(parts, cfg, total, state.iteration)
                state.iteration += 1
                at_boundary = True
                losses.append(loss)
                seconds = time.perf_counter() - start
                record: dict[str, float | int] = {"iteration": state.iteration, "loss": loss, "seconds": seconds}
                if parts.budget is not None:
                    fixed = parts.budget.observe(state.iteration, first)
                    if fixed is not None:
                        total = _fix_total(parts, state, fixed, record)
                        progress.update(task, total=total)
                        report.total = total
                if parts.validator is not None and (
                    state.iteration % cfg.val_every == 0 or state.iteration == total
                ):
                    scores = parts.validator(parts.model)
                    parts.model.train()
                    record.update({f"val_{k}": v for k, v in scores.items()})
                    score = scores[parts.monitor] if parts.higher_is_better else -scores[parts.monitor]
                    if not math.isnan(score) and score > state.best_score:
                        state.best_score, state.best_iteration, state.bad_validations = score, state.iteration, 0
                        save_checkpoint(ckpt_dir / "best.pt", parts.model, None, state)
                    else:
                        state.bad_validations += 1
                    if cfg.patience and state.bad_validations >= cfg.patience:
                        log.info("early stop at iteration %d (best %.4f at %d)", state.iteration,
                                 state.best_score, state.best_iteration)
                        state.finished = True
                metrics.append(record)
                if state.iteration >= total:
                    state.finished = True
                if state.finished or state.iteration % cfg.checkpoint_every == 0:
                    save_last()
                best = (f" best val {parts.monitor} {abs(state.best_score):.3f}"
                        if state.best_score > -math.inf else "")
                status = f"loss {np.mean(losses[-20:]):.4f}{best}"
                progress.update(task, completed=state.iteration, status=status)
                report.update(state.iteration, status)
                if on_iteration is not None:
                    on_iteration(state.iteration)
                if stop.requested:
                    raise KeyboardInterrupt
    except Exception as exc:
        if not stop.requested:
            raise
        # A failure after a stop request is the stop reaching a helper first (a batch worker killed by the
        # same signal): the user asked to stop, so stop as asked instead of reporting a failed run.
        log.debug("after the stop request: %r", exc)
        _interrupted(at_boundary, save_last, state)
    except KeyboardInterrupt:
        _interrupted(at_boundary, save_last, state)
    finally:
        stop.restore()
    if parts.validator is None:  # without validation the final weights are the best we have
        save_checkpoint(ckpt_dir / "best.pt", parts.model, None, state)
    return state


def _interrupted(at_boundary: bool, save_last: Callable[[], None], state: TrainState) -> NoReturn:
    """Save what can be resumed exactly and re-raise as ``KeyboardInterrupt``."""
    if at_boundary:
        save_last()
        log.warning("interrupted at iteration %d; checkpoint saved, run again to resume", state.iteration)
    else:
        log.warning("interrupted inside an iteration; resume restarts from the last periodic checkpoint")
    raise KeyboardInterrupt


def _fix_total(parts: LoopParts, state: TrainState, fixed: int, record: dict) -> int:
    """Fix (or correct) the run's length from the time budget and tell ``parts.on_total``. When it is first
    fixed, one validation is timed (its share of the budget) and the total recomputed with it."""
    budget = parts.budget
    assert budget is not None
    if parts.validator is not None and not budget.corrected:
        start = time.perf_counter()
        scores = parts.validator(parts.model)
        parts.model.train()
        budget.validation_seconds = time.perf_counter() - start
        record.update({f"val_{k}": v for k, v in scores.items()})
        fixed = budget.refit(state.iteration)
    log.info("time budget %.0f s: %.2f s per step, %.1f s per validation -> %d iterations%s", budget.seconds,
             budget.step_seconds or 0.0, budget.validation_seconds, fixed, " (corrected)" if budget.corrected else "")
    if parts.on_total is not None:
        parts.on_total(fixed)
    return fixed
