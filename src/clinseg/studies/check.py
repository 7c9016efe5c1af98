"""Check a whole study before anything is written: every arm against the registries and the dataset, and
every dataset the study reads with the checks of ``clinseg validate``.

A study runs for hours and its cells in other processes; an arm that cannot run must fail when the study
starts, with the spec file and the arm in the message, not in its first cell after subsets and
``failed.json`` files were written. :func:`check_study` builds each arm's training configuration as its
cells will (``base`` + the arm's ``config``, resolved against the dataset), looks up its network, loss and
sampler with their options, and asks the arm's method to check its options
(:func:`clinseg.studies.arms.check_arm`). :func:`validate_datasets` then reads every dataset once, so that
the cells can train with ``skip_validation``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clinseg.data.dataset import Dataset
from clinseg.errors import ConfigError, DatasetError
from clinseg.studies._options import check_keywords
from clinseg.studies.arms import ArmDraft, arm_datasets, check_arm
from clinseg.studies.spec import StudySpec
from clinseg.training.config import TrainConfig
from clinseg.training.preflight import refusal

log = logging.getLogger(__name__)

#: Positional arguments a sampler builder takes before its options (train, val, patch size, fraction, rng).
_SAMPLER_ARGUMENTS = 5


def check_train_config(config: TrainConfig) -> None:
    """The configuration's network, loss and sampler are registered and take their options.

    ``config`` is resolved (:meth:`TrainConfig.resolved`), so that an automatic loss is named. Raises
    :class:`ConfigError` naming what is unknown and what is known.
    """
    import clinseg.losses  # noqa: F401  (importing registers the losses)
    import clinseg.models  # noqa: F401  (importing registers the networks)
    import clinseg.training.methods  # noqa: F401  (registers every method's sampler)
    from clinseg.losses.registry import LOSSES
    from clinseg.models.registry import MODELS
    from clinseg.training.sampling import SAMPLERS

    check_keywords(MODELS.get(config.model), f"model {config.model!r}", 2, config.model_kwargs)
    check_keywords(LOSSES.get(config.loss), f"loss {config.loss!r}", 0, config.loss_kwargs)
    check_keywords(SAMPLERS.get(config.sampler), f"sampler {config.sampler!r}", _SAMPLER_ARGUMENTS,
                   config.sampler_kwargs)


def check_study(spec: StudySpec, dataset: Dataset) -> list[Path]:
    """Check every arm of ``spec`` as its cells will run on ``dataset``; return the datasets the study reads
    (its own first, then those of arms such as ``multitask``).

    Raises :class:`ConfigError` ``SPEC_FILE: arm 'NAME': problem`` for the first arm that cannot run: an
    unknown method, network, loss or sampler, options they do not take, a configuration value that cannot
    work (also against the dataset: channels, label mode), or an option value the method refuses.
    """
    folders = [spec.dataset]
    for index, arm in enumerate(spec.arms):
        source = spec.arm_source(arm)
        config = spec.train_config(arm)  # names the spec and the arm itself
        try:
            check_train_config(config.resolved(dataset.spec, "cpu"))
            draft = ArmDraft(arm.name, arm.options, config, spec.dataset, tuple(a.name for a in spec.arms[:index]))
            check_arm(arm.method, draft)
            folders += [f for f in arm_datasets(arm.method, draft) if f not in folders]
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return folders


def validate_datasets(folders: list[Path], *, progress: bool = True) -> None:
    """Run the checks of ``clinseg validate`` on each dataset once: errors raise
    :class:`~clinseg.errors.DatasetError` listing them (:func:`clinseg.training.preflight.refusal`, as
    training does), warnings are logged one by one and counted."""
    from clinseg.data.validate import validate_dataset

    for folder in folders:
        report = validate_dataset(folder, progress=progress)
        if report.errors:
            raise DatasetError(refusal(folder, report.errors, "study"))
        for problem in report.warnings:
            log.warning("dataset warning (%s): %s", problem.case or "-", problem.message)
        if report.warnings:
            log.warning("the study trains on %s despite %d warning(s) of 'clinseg validate' (listed above)",
                        folder, len(report.warnings))
