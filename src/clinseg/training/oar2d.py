"""Seed 001's OAR model (chapter 4): a 2D U-Net with one binary output per organ, trained on axial, coronal
or sagittal slices with voxel-level unknowns, the adaptive target-weight loss and class-centred batches.

``clinseg train DATASET --out RUN --method oar2d --plane axial`` fills in what the method fixes and keeps
the rest of the configuration (iterations, batch size, learning rate …):

* classes: the dataset's organs, bilateral pairs merged (``relations.bilateral`` in dataset.json); a
  prediction is split into left and right again (``clinseg predict``, :mod:`clinseg.inference.anatomy`);
* labels: voxel-level 1 / 0 / unknown from the dataset's relations (``unknowns: voxel``; ``class`` for
  seed 000's per-class masking, the comparison of the study);
* loss ``adaptive_target`` (positive share ``t_c``), sampler ``class-centred`` (two boxes per bilateral
  organ), network ``unet2d`` on ``plane`` slices of ``size`` x ``size`` voxels (the seed: 230 x 230 patches
  of 320 x 365 slices, batches of 10 for 8 classes).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from clinseg.data.dataset import DatasetSpec, read_spec
from clinseg.errors import ConfigError
from clinseg.models.unet2d import PLANE_AXES
from clinseg.training.config import TrainConfig, unplanned
from clinseg.training.methods import TRAIN_METHODS, validation_words
from clinseg.training.resume import ResumePolicy
from clinseg.training.run import train

__all__ = ["oar2d_config"]

#: In-plane patch size (voxels) when the configuration gives none.
DEFAULT_SIZE = 96


def oar2d_config(cfg: TrainConfig, spec: DatasetSpec, plane: str = "axial", size: int | None = None) -> TrainConfig:
    """``cfg`` with the settings of seed 001's OAR model for ``plane`` slices.

    The patch is ``size`` x ``size`` voxels in the plane (default: the in-plane size of ``cfg.patch_size``
    when it is a slice patch, else :data:`DEFAULT_SIZE`); ``cfg.unknowns`` is kept when set, else ``voxel``.
    """
    if plane not in PLANE_AXES:
        raise ConfigError(f"plane must be one of {', '.join(PLANE_AXES)}, got {plane!r}")
    if spec.label_mode != "multilabel":
        raise ConfigError(f"{spec.name}: the OAR model needs a multilabel dataset (non-exclusive organs)")
    if size is None:
        thin = cfg.patch_size and cfg.patch_size.count(1) == 1
        size = max(p for p in cfg.patch_size) if thin else DEFAULT_SIZE
    organs = spec.relations.entities(spec.structures)
    two_sided = [k for k, name in enumerate(organs) if name in spec.relations.bilateral]
    loss_kwargs = cfg.loss_kwargs if cfg.loss == "adaptive_target" else {}
    return dataclasses.replace(
        unplanned(cfg), model="unet2d", model_kwargs={**cfg.model_kwargs, "plane": plane},
        patch_size=[1 if axis == PLANE_AXES[plane] else size for axis in range(3)], label_mode="multilabel",
        loss="adaptive_target", loss_kwargs=loss_kwargs, sampler="class-centred",
        sampler_kwargs={"two_sided": two_sided, **{k: v for k, v in cfg.sampler_kwargs.items() if k == "rest"}},
        unknowns=cfg.unknowns or "voxel", merge_bilateral=True)


@TRAIN_METHODS.register("oar2d")
def oar2d(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *,
          plane: str = "axial", size: int | None = None, skip_validation: bool = False,
          resume: ResumePolicy | None = None) -> str:
    """Seed 001's OAR model on ``plane`` slices (organs merged, voxel-level unknowns, class-centred batches)."""
    state = train(dataset, out, oar2d_config(cfg, read_spec(dataset), plane, size), iterations=iterations,
                  skip_validation=skip_validation, resume=resume)
    return f"{plane}: trained {state.iteration} iterations; {validation_words(state)}"
