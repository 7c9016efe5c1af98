"""Training data sources by name: which patches a run trains on, and what it validates on.

``TrainConfig.sampler`` names one (``sampler_kwargs`` are its options). A source returns the patch sampler
and the validation cases, because both follow from the same choice: a network trained on organ crops is
validated on organ crops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from clinseg.data.centred_sampler import ClassCentredSampler
from clinseg.data.crop_sampler import DEFAULT_MARGIN, OrganCropSampler, organ_crops
from clinseg.data.loading import CaseData
from clinseg.data.samplers import ClassAwarePatchSampler, PatchBatch
from clinseg.data.task_sampler import TaskBalancedSampler
from clinseg.errors import ConfigError
from clinseg.registry import Registry


class PatchSource(Protocol):
    """What the loop needs from a sampler: batches, and the generator its checkpoints save."""

    rng: np.random.Generator

    def batch(self, batch_size: int) -> PatchBatch: ...


SourceBuilder = Callable[..., tuple[PatchSource, list[CaseData]]]
SAMPLERS: Registry[SourceBuilder] = Registry("sampler")


@SAMPLERS.register("class-aware")
def class_aware(train: Sequence[CaseData], val: Sequence[CaseData], patch_size: Sequence[int],
                foreground_fraction: float, rng: np.random.Generator) -> tuple[PatchSource, list[CaseData]]:
    """Whole volumes, structure-balanced foreground oversampling (seed 000); validation on whole volumes."""
    return ClassAwarePatchSampler(train, patch_size, foreground_fraction, rng), list(val)


@SAMPLERS.register("organ-crop")
def organ_crop(train: Sequence[CaseData], val: Sequence[CaseData], patch_size: Sequence[int],
               foreground_fraction: float, rng: np.random.Generator, *, margin: int = DEFAULT_MARGIN,
               jitter: Sequence[int] | None = None) -> tuple[PatchSource, list[CaseData]]:
    """Padded organ crops (seed 003's organ network), optionally with a jittered margin; validation on
    ground-truth crops with the fixed ``margin``."""
    return (OrganCropSampler(train, patch_size, foreground_fraction, rng, margin=margin, jitter=jitter),
            organ_crops(val, margin))


@SAMPLERS.register("class-centred")
def class_centred(train: Sequence[CaseData], val: Sequence[CaseData], patch_size: Sequence[int],
                  foreground_fraction: float, rng: np.random.Generator, *, two_sided: Sequence[int] = (),
                  rest: str = "largest") -> tuple[PatchSource, list[CaseData]]:
    """Seed 001's OAR batches: one patch centred on each class, the rest on the largest class (``rest:
    random``: anywhere); labels bit-packed, voxel-level unknowns (needs ``unknowns``); ``two_sided``: the
    classes with two boxes per case (bilateral organs). ``foreground_fraction`` does not apply."""
    return ClassCentredSampler(train, patch_size, rng, two_sided=two_sided, rest=rest), list(val)  # type: ignore[arg-type]


@SAMPLERS.register("task-balanced")
def task_balanced(train: Sequence[CaseData], val: Sequence[CaseData], patch_size: Sequence[int],
                  foreground_fraction: float, rng: np.random.Generator) -> tuple[PatchSource, list[CaseData]]:
    """Multi-task runs (seed 004): equal patches per task in each batch, per task balanced over its classes
    and background; the task of a case comes from its union id (``<task>__<case>``)."""
    from clinseg.training.multitask import task_of

    return TaskBalancedSampler(train, [task_of(c.case_id) for c in train], patch_size, rng), list(val)


def build_source(name: str, options: dict[str, Any], train: Sequence[CaseData], val: Sequence[CaseData],
                 patch_size: Sequence[int], foreground_fraction: float,
                 rng: np.random.Generator) -> tuple[PatchSource, list[CaseData]]:
    """Build the registered source ``name`` (unknown options are a :class:`ConfigError`)."""
    builder = SAMPLERS.get(name)
    try:
        return builder(train, val, patch_size, foreground_fraction, rng, **options)
    except TypeError as exc:
        raise ConfigError(f"sampler {name!r}: invalid options {sorted(options)} ({exc})") from exc
    except ValueError as exc:
        raise ConfigError(f"sampler {name!r}: {exc}") from exc


from clinseg.training import mixed_source as _mixed_source  # noqa: F401  (sampler "mixed", seed 001 ch. 3)
