"""Train the two networks of localise-to-segment (seed 003) into one run folder.

::

    RUN/cascade.json     method, margin, fallback: what ``clinseg predict RUN`` needs to run the cascade
    RUN/localiser/       a normal run on the low-resolution grid (``resample``, default 1/3 depth, 1/2 plane)
    RUN/organ/           a normal run on padded organ crops (``sampler: organ-crop``)

Both networks start from the same base configuration (e.g. the ``localise-2021`` preset) and are trained
independently, "without regard to the output of any particular localisation network" (seed 003). Each
resumes on its own when interrupted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clinseg.data.crop_sampler import DEFAULT_MARGIN
from clinseg.data.resize import LOWRES_FACTORS
from clinseg.inference.cascade import write_cascade_info
from clinseg.training.checkpoint import TrainState
from clinseg.training.config import TrainConfig, unplanned
from clinseg.training.preflight import check_dataset_for_training
from clinseg.training.resume import ResumePolicy
from clinseg.training.run import train


@dataclass(frozen=True)
class TwoStageOptions:
    """margin: context voxels per side (seed 003: 15); jitter: ``[low, high]`` margin range for the organ
    network's training crops (None = fixed margin, as in the seed); lowres: grid divisors ``(Z, Y, X)``;
    fallback: a single-stage run used for organs the localiser misses (None = report "not found")."""

    margin: int = DEFAULT_MARGIN
    jitter: Sequence[int] | None = None
    lowres: Sequence[float] = LOWRES_FACTORS
    fallback: str | None = None


def stage_configs(base: TrainConfig, options: TwoStageOptions) -> tuple[TrainConfig, TrainConfig]:
    """The localiser's and the organ network's configurations derived from ``base``."""
    base = unplanned(base)
    localiser = dataclasses.replace(base, resample=list(base.resample or options.lowres), sampler="class-aware",
                                    sampler_kwargs={})
    kwargs: dict = {"margin": options.margin}
    if options.jitter is not None:
        kwargs["jitter"] = list(options.jitter)
    organ = dataclasses.replace(base, resample=[], sampler="organ-crop", sampler_kwargs=kwargs)
    return localiser, organ


def train_two_stage(dataset_dir: str | Path, run_dir: str | Path, base: TrainConfig | None = None,
                    options: TwoStageOptions | None = None, *, iterations: int | None = None,
                    stages: Sequence[str] = ("localiser", "organ"), skip_validation: bool = False,
                    resume: ResumePolicy | None = None) -> dict[str, TrainState]:
    """Train the localisation and organ networks (or only ``stages``); returns their final states.

    The dataset passes the checks of ``clinseg validate`` once, before both (unless ``skip_validation``);
    ``resume`` applies to each network's folder (:func:`clinseg.training.run.train`)."""
    run_dir = Path(run_dir)
    options = options or TwoStageOptions()
    localiser, organ = stage_configs(base or TrainConfig(), options)
    if not skip_validation:
        check_dataset_for_training(dataset_dir, run_dir)
    states = {}
    for name, cfg in (("localiser", localiser), ("organ", organ)):
        if name in stages:
            states[name] = train(dataset_dir, run_dir / name, cfg, iterations=iterations, skip_validation=True,
                                 resume=resume)
    write_cascade_info(run_dir, options.margin, options.fallback)
    return states
