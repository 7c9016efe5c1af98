"""Training methods by name (``clinseg train --method NAME``): what a run folder holds and how it is made.

``single`` trains one network (the default); ``two-stage`` trains seed 003's localisation and organ networks
into one folder, which ``clinseg predict`` then runs as a cascade; ``interactive`` trains a network guided by
clicks (seed 002), which ``clinseg predict --clicks`` and ``clinseg interact`` apply. A method takes the dataset, the run
folder, the base configuration and its own options, and returns a one-line summary.

Every method also takes ``skip_validation`` (skip the checks of ``clinseg validate`` before training; a
method that trains several networks runs them once) and ``resume`` (how an existing run folder is resumed,
:class:`~clinseg.training.resume.ResumePolicy`), and passes them on to :func:`clinseg.training.run.train`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from clinseg.errors import ConfigError
from clinseg.registry import Registry
from clinseg.training.checkpoint import TrainState
from clinseg.training.config import TrainConfig, unplanned
from clinseg.training.resume import ResumePolicy

TrainMethod = Callable[..., str]
TRAIN_METHODS: Registry[TrainMethod] = Registry("training method")


def validation_words(state: TrainState, iteration: bool = True) -> str:
    """``best validation Dice 0.812 (iteration 600)`` (without the iteration when not ``iteration``), or
    what stands in for it when the run had no validation score (``val_cases: 0``: ``best.pt`` holds the final
    weights), never "-inf"."""
    if state.best_score == -math.inf:
        return ("no validation score (no validation cases: best.pt holds the final weights)" if iteration
                else "no validation score")
    return f"best validation Dice {state.best_score:.3f}" + (f" (iteration {state.best_iteration})" if iteration
                                                                else "")


def stages_summary(states: Mapping[str, TrainState]) -> str:
    """One summary for the networks of a method: ``name: N iterations, best validation Dice …; …``."""
    return "; ".join(f"{name}: {s.iteration} iterations, {validation_words(s, iteration=False)}"
                     for name, s in states.items())


@TRAIN_METHODS.register("single")
def single(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
           skip_validation: bool = False, resume: ResumePolicy | None = None) -> str:
    """One network on the whole images."""
    from clinseg.training.run import train

    state = train(dataset, out, cfg, iterations=iterations, skip_validation=skip_validation, resume=resume)
    return f"trained {state.iteration} iterations; {validation_words(state)}"


@TRAIN_METHODS.register("two-stage")
def two_stage(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
              margin: int | None = None, jitter: list[int] | None = None, fallback: str | None = None,
              skip_validation: bool = False, resume: ResumePolicy | None = None) -> str:
    """Low-resolution localisation network + organ network on padded crops (seed 003)."""
    from clinseg.training.two_stage import TwoStageOptions, train_two_stage

    options = TwoStageOptions(**({"margin": margin} if margin is not None else {}), jitter=jitter,
                              fallback=str(Path(fallback).resolve()) if fallback else None)
    states = train_two_stage(dataset, out, cfg, options, iterations=iterations, skip_validation=skip_validation,
                             resume=resume)
    return stages_summary(states)


@TRAIN_METHODS.register("interactive")
def interactive(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
                skip_validation: bool = False, resume: ResumePolicy | None = None) -> str:
    """One network guided by foreground/background clicks (seed 002 §2.3): the image plus two click maps in,
    the clicked object out; trained with simulated clicks, validated with one click per slice or volume."""
    import dataclasses

    if not cfg.interactive:
        cfg = dataclasses.replace(cfg, interactive={"eval_clicks": 1})
    cfg = unplanned(cfg)
    return single(dataset, out, cfg, iterations, skip_validation=skip_validation,
                  resume=resume) + " (validated with simulated clicks)"


@TRAIN_METHODS.register("2d-3d")
def two_d_three_d(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
                  model2d: str = "unet2d", size2d: int = 64, model2d_kwargs: dict | None = None,
                  config2d: dict | None = None, skip_validation: bool = False,
                  resume: ResumePolicy | None = None) -> str:
    """Seed 001's 2D-3D model: axial, coronal and sagittal 2D networks whose outputs feed a 3D network."""
    from clinseg.training.two_d_three_d import train_2d3d

    states = train_2d3d(dataset, out, cfg, iterations=iterations, model2d=model2d, size2d=size2d,
                        model2d_kwargs=model2d_kwargs, config2d=config2d, skip_validation=skip_validation,
                        resume=resume)
    return stages_summary(states)


def run_method(name: str, dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
               skip_validation: bool = False, resume: ResumePolicy | None = None, **options: Any) -> str:
    """Run the registered method ``name``; options it does not take are a :class:`ConfigError`.

    ``skip_validation`` and ``resume`` go to every method (see the module docstring).
    """
    method = TRAIN_METHODS.get(name)
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return method(dataset, out, cfg, iterations, skip_validation=skip_validation, resume=resume, **given)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ConfigError(f"method {name!r} takes no option(s) {sorted(given)}") from None
        raise


from clinseg.training import mixed as _mixed  # noqa: F401  (registers "mixed", seed 001 ch. 3)
from clinseg.training import modality as _modality  # noqa: F401  (registers "2d", seed 001 §2.2.2)
from clinseg.training import oar2d as _oar2d  # noqa: F401  (registers "oar2d", seed 001 ch. 4)
from clinseg.training import triplanar as _triplanar  # noqa: F401  (registers "triplanar", seed 004)
