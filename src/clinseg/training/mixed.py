"""Mixed supervision (seed 001 chapter 3): ``clinseg train DATASET --out RUN --method mixed``.

A 2D U-Net with image-level classification branches (``mixed_unet``) trained on axial slices of three kinds:
annotated tumour slices, tumour-free slices and slices only known to contain tumour (``sampler: mixed``),
with ``loss: mixed_supervision``. The run is a normal run folder: ``clinseg predict RUN`` segments with the
U-Net alone (the branches only exist in training mode).

Which cases are weakly annotated is a training-configuration choice: a training case (outside validation)
whose delineations the run does not use (not in ``TrainConfig.subset``, or kept with no structure; without a
subset: a case with no delineation at all) and for which ``dataset.json`` states something usable at slice
level (``weak_slices``, or a case-level ``weak_labels`` entry that is false). Its slice labels come from
``dataset.json`` only, never from a label map the run is not allowed to use.

Settings taken from the thesis (seed 001): batches of k = 4 annotated, m = 2 tumour-free and n = 4 weakly
annotated images (lines 1839-1845); ``a = 0.7`` for one class, ``0.3`` for several (line 1837); target weights
``t_0 = 0.7`` and the remaining 0.3 shared equally by the classes (0.1 each for three; lines 1848-1857).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinseg.data.dataset import Dataset, load_dataset
from clinseg.errors import ConfigError
from clinseg.io.image import read_geometry
from clinseg.training.config import TrainConfig, unplanned
from clinseg.training.methods import TRAIN_METHODS, validation_words
from clinseg.training.resume import ResumePolicy

log = logging.getLogger(__name__)

#: Images per batch: annotated positives, negatives, weakly annotated positives (seed 001 lines 1839-1845).
BATCH_COMPOSITION: dict[str, int] = {"k": 4, "m": 2, "n": 4}
#: Target weight of background in the segmentation loss (seed 001 line 1848); the classes share the rest.
BACKGROUND_TARGET_WEIGHT = 0.7


def weak_case_ids(dataset: Dataset, cfg: TrainConfig, val_ids: Sequence[str]) -> list[str]:
    """Training cases the run treats as weakly annotated (see the module docstring), sorted."""
    spec = dataset.spec
    out = []
    for record in dataset.train:
        case = record.case_id
        if case in val_ids:
            continue
        used = bool(cfg.subset.get(case)) if cfg.subset else bool(record.annotated)
        stated = case in spec.weak_slices or any(v is False for v in record.weak_labels.values())
        if not used and stated:
            out.append(case)
    return out


def partially_delineated(dataset: Dataset, cfg: TrainConfig, val_ids: Sequence[str]) -> bool:
    """Whether some training case the run segments delineates some structures but not all."""
    every = set(dataset.spec.structures)
    if cfg.subset:
        return any(names and set(names) != every for names in cfg.subset.values())
    return any(r.annotated and not r.complete for r in dataset.train if r.case_id not in val_ids)


def slice_patch(dataset: Dataset, divisor: int) -> list[int]:
    """``[1, H, W]``: the largest axial slice of the training cases, rounded up to ``divisor``."""
    sizes = [read_geometry(r.images[0]).shape for r in dataset.train]
    return [1] + [int(math.ceil(max(s[axis] for s in sizes) / divisor) * divisor) for axis in (1, 2)]


def mixed_config(dataset_dir: str | Path, cfg: TrainConfig, *, k: int | None = None, m: int | None = None,
                 n: int | None = None, alpha: float | None = None) -> TrainConfig:
    """``cfg`` made a mixed-supervision run: model, sampler, loss, slice patch and batch size.

    Settings the user already gave for ``mixed_unet`` / ``sampler: mixed`` / ``loss: mixed_supervision`` are
    kept; ``k``, ``m``, ``n``, ``alpha`` override them.
    """
    if cfg.resample:
        raise ConfigError("method mixed: resample is not supported (slice labels index the original slices)")
    dataset = load_dataset(dataset_dir)
    spec = dataset.spec
    if cfg.val_ids:
        val_ids = sorted(cfg.val_ids)
    else:
        from clinseg.training.run import choose_validation

        val_ids = choose_validation(dataset, cfg.val_cases, cfg.seed)
    label_mode = cfg.label_mode or spec.label_mode
    classes = spec.num_structures

    model_kwargs: dict[str, Any] = dict(cfg.model_kwargs) if cfg.model == "mixed_unet" else {}
    features = model_kwargs.get("features", (16, 32, 64, 128))
    pool = int(model_kwargs.get("pool", 8))
    patch = list(cfg.patch_size) if cfg.patch_size and cfg.patch_size[0] == 1 else \
        slice_patch(dataset, max(2 ** (len(features) - 1), pool))
    model_kwargs.setdefault("num_image_classes", classes)
    model_kwargs.setdefault("grid", [max(1, patch[1] // pool), max(1, patch[2] // pool)])

    sampler_kwargs: dict[str, Any] = {**BATCH_COMPOSITION, **(cfg.sampler_kwargs if cfg.sampler == "mixed" else {})}
    sampler_kwargs.update({key: v for key, v in (("k", k), ("m", m), ("n", n)) if v is not None})
    sampler_kwargs.update(dataset=str(Path(dataset_dir).resolve()), normalization=cfg.normalization,
                          weak_cases=weak_case_ids(dataset, cfg, val_ids))

    loss_kwargs: dict[str, Any] = dict(cfg.loss_kwargs) if cfg.loss == "mixed_supervision" else {}
    loss_kwargs.setdefault("alpha", 0.7 if classes == 1 else 0.3)
    if alpha is not None:
        loss_kwargs["alpha"] = alpha
    if label_mode == "multiclass":
        # target_weighted_ce reads a class that is not delineated as background: partial cases need the marginal CE
        loss_kwargs.setdefault("seg_loss", "marginal_ce_dice" if partially_delineated(dataset, cfg, val_ids)
                               else "target_weighted_ce")
        if loss_kwargs["seg_loss"] == "target_weighted_ce":
            weights = [BACKGROUND_TARGET_WEIGHT] + [(1 - BACKGROUND_TARGET_WEIGHT) / classes] * classes
            loss_kwargs.setdefault("seg_kwargs", {"target_weights": weights})
    else:
        loss_kwargs.setdefault("seg_loss", "masked_bce")
    return dataclasses.replace(
        unplanned(cfg), model="mixed_unet", model_kwargs=model_kwargs, sampler="mixed", sampler_kwargs=sampler_kwargs,
        loss="mixed_supervision", loss_kwargs=loss_kwargs, patch_size=patch, val_ids=val_ids,
        batch_size=int(sampler_kwargs["k"]) + int(sampler_kwargs["m"]) + int(sampler_kwargs["n"]))


@TRAIN_METHODS.register("mixed")
def mixed(dataset: Path, out: Path, cfg: TrainConfig, iterations: int | None = None, *, k: int | None = None,
          m: int | None = None, n: int | None = None, alpha: float | None = None, skip_validation: bool = False,
          resume: ResumePolicy | None = None) -> str:
    """U-Net + image-level classification branches on annotated, tumour-free and weakly annotated slices
    (seed 001 chapter 3); predicted like any run. A resumed run compares the derived configuration with its
    saved one (:func:`clinseg.training.run.train`)."""
    from clinseg.training.run import train

    run_cfg = mixed_config(dataset, cfg, k=k, m=m, n=n, alpha=alpha)
    log.info("mixed supervision: %d weakly annotated case(s)", len(run_cfg.sampler_kwargs["weak_cases"]))
    state = train(dataset, out, run_cfg, iterations=iterations, skip_validation=skip_validation, resume=resume)
    weak = len(run_cfg.sampler_kwargs.get("weak_cases", ()))
    return f"trained {state.iteration} iterations with {weak} weakly annotated case(s); {validation_words(state)}"
