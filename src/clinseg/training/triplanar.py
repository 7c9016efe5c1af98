"""``--method triplanar``: seed 004's triplanar network trained on voxel samples (§3.1-3.2).

Each training sample is one voxel with its three orthogonal ``patch x patch`` patches (zero outside the
volume); a mini-batch holds ``samples`` of them (the seed: 210), balanced over the tasks of a multi-task run
and, per task, over its classes and background (voxels with intensity > 0). The network classifies them with
its per-voxel path; validation and prediction run it fully convolutionally on whole volumes (its fully
connected layers are 1x1x1 convolutions), which gives the same values (``tests/models/test_triplanar.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clinseg.data.dataset import load_dataset
from clinseg.data.loading import CaseData
from clinseg.data.samplers import PatchBatch
from clinseg.data.task_sampler import TaskBalancedSampler
from clinseg.io.image import read_geometry
from clinseg.models.triplanar import triplanar_patches
from clinseg.training.config import TrainConfig, unplanned
from clinseg.training.methods import TRAIN_METHODS, validation_words
from clinseg.training.multitask import TASK_SEPARATOR, task_of
from clinseg.training.resume import ResumePolicy
from clinseg.training.run import train
from clinseg.training.sampling import SAMPLERS, PatchSource

__all__ = ["TriplanarVoxelSampler", "triplanar_config"]

#: Voxels per mini-batch in seed 004.
SEED_SAMPLES = 210


class TriplanarVoxelSampler:
    """Batches of voxel samples ``image (N, 1, 3, C, p, p)``, ``target (N, K, 1, 1, 1)``, ``annotated (N, K)``.

    The voxels are drawn by a :class:`TaskBalancedSampler` with one-voxel patches (tasks balanced, classes
    balanced within a task); ``rng`` is its generator (saved with the checkpoints).
    """

    def __init__(self, cases: Sequence[CaseData], tasks: Sequence[str], patch: int, rng: np.random.Generator) -> None:
        self.voxels = TaskBalancedSampler(cases, tasks, (1, 1, 1), rng)
        self.cases = list(cases)
        self.patch = int(patch)

    @property
    def rng(self) -> np.random.Generator:
        return self.voxels.rng

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self.voxels.rng = value

    def batch(self, batch_size: int) -> PatchBatch:
        locations = self.voxels.locations(batch_size)
        images = np.stack([triplanar_patches(self.cases[c].image, center, self.patch)[None]
                           for c, center in locations]).astype(np.float32, copy=False)
        target = np.stack([self.cases[c].target[(slice(None),) + tuple(slice(v, v + 1) for v in center)]
                           for c, center in locations])
        return PatchBatch(image=images, target=target, annotated=np.stack([self.cases[c].annotated
                                                                           for c, _ in locations]))


@SAMPLERS.register("triplanar-voxels")
def triplanar_voxels(train_cases: Sequence[CaseData], val: Sequence[CaseData], patch_size: Sequence[int],
                     foreground_fraction: float, rng: np.random.Generator, *,
                     patch: int = 51) -> tuple[PatchSource, list[CaseData]]:
    """Seed 004's voxel samples with their triplanar patches (``patch``: the network's patch size)."""
    tasks = [task_of(c.case_id) if TASK_SEPARATOR in c.case_id else "task" for c in train_cases]
    return TriplanarVoxelSampler(train_cases, tasks, patch, rng), list(val)


def triplanar_config(cfg: TrainConfig, dataset_dir: str | Path, samples: int = SEED_SAMPLES) -> TrainConfig:
    """``cfg`` with the triplanar network, voxel samples (``samples`` per batch) and, for validation and
    prediction, one window over the largest training image (the network sees whole images, as in the seed)."""
    dataset = load_dataset(dataset_dir)
    shapes = np.array([read_geometry(r.images[0]).shape for r in dataset.train])
    kwargs = dict(cfg.model_kwargs)
    return dataclasses.replace(unplanned(cfg), model="triplanar", model_kwargs=kwargs, batch_size=samples,
                               sampler="triplanar-voxels", sampler_kwargs={"patch": int(kwargs.get("patch", 51))},
                               patch_size=[int(s) for s in shapes.max(axis=0)], flip_axes=[])


@TRAIN_METHODS.register("triplanar")
def triplanar(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
              samples: int = SEED_SAMPLES, skip_validation: bool = False, resume: ResumePolicy | None = None) -> str:
    """Seed 004's triplanar network (any number of tasks: give several datasets to ``clinseg train``)."""
    state = train(dataset, out, triplanar_config(cfg, dataset, samples), iterations=iterations,
                  skip_validation=skip_validation, resume=resume)
    return f"triplanar: trained {state.iteration} iterations of {samples} voxels; {validation_words(state)}"
