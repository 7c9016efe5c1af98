"""Typed training configuration, named presets, and YAML in/out.

Every run folder holds ``config.yaml``: the configuration fully resolved (no "auto" left), so a run can
be repeated or resumed from its folder alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinseg.configfile import build_dataclass, read_mapping, write_dataclass
from clinseg.data.augmentation import AugmentationSettings
from clinseg.data.dataset import DatasetSpec
from clinseg.errors import ConfigError
from clinseg.planning.plan import Plan, PlanSettings
from clinseg.training.schedule import ScheduleSettings, base_lr

#: ``normalization`` value of a planned run: per channel as ``RUN/plan.json`` says.
PLANNED = "plan"
#: Per-case normalisation schemes (:func:`clinseg.data.loading.normalize_intensity`).
PER_CASE_SCHEMES = ("zscore", "percentile", "median", "none")
#: The typed sections of a configuration and their classes.
SECTIONS: dict[str, type] = {"plan": PlanSettings, "augmentation": AugmentationSettings,
                             "schedule": ScheduleSettings}


@dataclass
class TrainConfig:
    """Settings of one training run. Empty/zero values marked *auto* are resolved from the dataset/device.

    Attributes
    ----------
    model, model_kwargs : registered network name and its options (see ``clinseg.models.list_models``);
        *auto* = the plan's network (``dynunet`` with the planned widths, strides and deep supervision), or
        ``unet3d`` for an unplanned run.
    label_mode : *auto* from dataset.json; ``multilabel`` (sigmoids, masked BCE) or ``multiclass``.
    loss, loss_kwargs : registered loss; *auto* = ``masked_bce`` (multilabel) / ``marginal_ce_dice``.
    patch_size : training patch ``(Z, Y, X)`` voxels; *auto* = the plan's (fitted to the body box and the
        device), or for an unplanned run 64³ on CUDA, 32³ on the CPU.
    batch_size : patches per iteration; *auto* (0) = the plan's (2), 4 for an unplanned run (the seed
        study used 4).
    iterations : optimiser steps (the seed study used 15000).
    lr : learning rate; *auto* (0) = the optimiser's default (SGD 0.01, AdamW/Adam 1e-3).
    foreground_fraction : share of patches centred on a delineated structure.
    sampler, sampler_kwargs : training data source (``clinseg.training.sampling``): ``class-aware`` (whole
        volumes) or ``organ-crop`` (padded organ crops; options ``margin``, ``jitter: [low, high]``).
    val_cases : number of training cases held out for validation (complete cases preferred).
    val_ids : the validation cases by id (overrides ``val_cases``); studies fix them for every run.
    subset : training cases -> structures whose delineation is used (others count as not delineated,
        c_n = 0); empty = every training case with all its delineations. Written by ``clinseg study``.
    val_every : validate every this many iterations; the best validation Dice is kept as ``best.pt``.
    patience : stop after this many validations without improvement (0 = never stop early).
    checkpoint_every : save ``last.pt`` every this many iterations (and on Ctrl-C / SIGTERM).
    normalization : per-case intensity normalisation of an unplanned run (``zscore``, ``percentile``,
        ``median``, ``none``); a planned run normalises each channel as ``RUN/plan.json`` says (resolved to
        ``plan``; override with ``plan.normalization``).
    resample : divide the grid ``(Z, Y, X)`` by these factors for training and inference (``[3, 2, 2]`` is
        seed 003's localisation grid); empty = the images' own grid. Predictions return to the input grid.
    flip_axes : legacy batch flips along these array axes (0=Z, 1=Y, 2=X), without label swapping; empty =
        none. The ``augmentation`` section mirrors the plan's axes and swaps left/right labels instead.
    intensity_augment : legacy random intensity scale/shift per batch (see ``augmentation``).
    amp : ``auto`` | ``bf16`` | ``fp16`` | ``off`` for training (auto: CUDA only).
    device : ``auto`` | ``cpu`` | ``cuda``.
    threads : CPU threads (0 = all available cores).
    seed : seeds the patch sampler, the weights and augmentation.
    overlap, mirror_axes, threshold, largest_component, skip_background : inference settings used for
        validation and as defaults for ``clinseg predict``.
    calibrate : after training, choose each class's threshold on the validation cases (best pooled Dice with
        the best checkpoint; ``RUN/thresholds.json``, applied by ``clinseg predict``) instead of ``threshold``.
        For sigmoid outputs trained with a class weighting (the ``adaptive_target`` loss), whose 0.5 threshold
        over-segments small organs (:mod:`clinseg.training.calibration`).
    init : a ``clinseg pretrain`` run whose encoder-decoder weights initialise the network (the output
        head is replaced; see :mod:`clinseg.pretraining.transfer`); empty = random initialisation.
    features : folders of per-case feature maps (:mod:`clinseg.data.features`) appended to the image channels,
        e.g. the 2D networks' outputs read by the 3D network of a 2D-3D model (seed 001 §2.2.1).
    feature_channels : their total channel count (resolved from the folders).
    interactive : non-empty makes the run interactive (``--method interactive``, seed 002 §2.3): the network
        reads the image plus a foreground and a background click map and outputs one mask, the object the
        clicks designate; options are :class:`clinseg.interactive.guidance.ClickSettings` fields.
    channels : input channels the network reads, as indices into the dataset's channels (e.g. ``[2]``: T2
        alone); empty = all channels. When set, only these channels are loaded (in this order) and training
        cases lacking any of them (``missing_channels`` in ``dataset.json``, or no file) are left out of
        training and validation (a ``val_ids`` case lacking one is dropped; none left = ``val_cases`` chosen).
        Seed 001 §2.3.3 trains each modality-specific subnetwork on the cases that have its MR sequence, and
        the whole network on the cases that have all of them (``--method 2d``).
    unknowns : voxel-level labels (:mod:`clinseg.data.voxel_labels`): ``voxel`` = a class not delineated in a
        case is unknown except where the dataset's relations imply it (seed 001 §4.2.1.2), ``class`` = unknown
        everywhere in that case; empty = the per-case ``c_n`` of seed 000. The ``adaptive_target`` loss and the
        ``class-centred`` sampler need one of them.
    merge_bilateral : train each bilateral organ of the dataset's relations (``Eye_L`` + ``Eye_R``) as one
        class, as seed 001's OAR network does; predictions are split into sides again (``--method oar2d``).
    undelineated : ``masked`` (seed 000: a structure a case does not delineate has no loss, c_n = 0) or
        ``background`` (it counts as delineated and empty: the naive use of partial labels, for comparisons).
    workers : background processes preparing batches (-1 = auto: one per 4 cores, none for runs under 100
        iterations).
    plan : :class:`~clinseg.planning.plan.PlanSettings`: plan from the data (default) and overrides.
    augmentation : :class:`~clinseg.data.augmentation.AugmentationSettings` (on by default).
    schedule : :class:`~clinseg.training.schedule.ScheduleSettings`: optimiser, decay, warm-up, time budget.
    """

    model: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    label_mode: str = ""
    loss: str = ""
    loss_kwargs: dict[str, Any] = field(default_factory=lambda: {"dice_weight": 1.0})
    patch_size: list[int] = field(default_factory=list)
    batch_size: int = 0
    iterations: int = 15000
    lr: float = 0.0
    foreground_fraction: float = 0.5
    sampler: str = "class-aware"
    sampler_kwargs: dict[str, Any] = field(default_factory=dict)
    val_cases: int = 2
    val_ids: list[str] = field(default_factory=list)
    subset: dict[str, list[str]] = field(default_factory=dict)
    val_every: int = 250
    patience: int = 0
    checkpoint_every: int = 50
    normalization: str = "zscore"
    resample: list[float] = field(default_factory=list)
    flip_axes: list[int] = field(default_factory=list)
    intensity_augment: bool = False
    amp: str = "auto"
    device: str = "auto"
    threads: int = 0
    seed: int = 0
    overlap: float = 0.5
    mirror_axes: list[int] = field(default_factory=list)
    threshold: float = 0.5
    calibrate: bool = False
    largest_component: bool = False
    skip_background: float | None = None
    init: str = ""
    features: list[str] = field(default_factory=list)
    feature_channels: int = 0
    interactive: dict[str, Any] = field(default_factory=dict)
    channels: list[int] = field(default_factory=list)
    unknowns: str = ""
    merge_bilateral: bool = False
    undelineated: str = "masked"
    workers: int = -1
    plan: PlanSettings = field(default_factory=PlanSettings)
    augmentation: AugmentationSettings = field(default_factory=AugmentationSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)

    def network_channels(self, num_channels: int, num_structures: int) -> tuple[int, int]:
        """``(in, out)`` channels of the network: an interactive run adds two click-map inputs and has one
        output (the clicked object); otherwise one output per structure, plus background for multiclass."""
        inputs = (len(self.channels) or num_channels) + self.feature_channels  # channels: a selection
        if self.interactive:
            return inputs + 2, 1
        return inputs, num_structures + (1 if self.label_mode == "multiclass" else 0)

    def resolved(self, spec: DatasetSpec, device_type: str, plan: Plan | None = None) -> TrainConfig:
        """A copy with every *auto* value filled from the plan (when planned), the dataset spec and the device
        type: the network, patch and batch size and the normalisation come from ``plan``; without one, the
        unplanned defaults (``unet3d``, 32³ patches on the CPU and 64³ on CUDA, batches of 4, per-case z-score).
        """
        cfg = dataclasses.replace(self)
        cfg.label_mode = cfg.label_mode or ("multilabel" if cfg.interactive else spec.label_mode)
        if cfg.label_mode not in ("multilabel", "multiclass"):
            raise ConfigError(f"label_mode must be multilabel or multiclass, got {cfg.label_mode!r}")
        cfg.loss = cfg.loss or ("masked_bce" if cfg.label_mode == "multilabel" else "marginal_ce_dice")
        if plan is not None:
            if not cfg.model:
                cfg.model = plan.model
                cfg.model_kwargs = cfg.model_kwargs or dict(plan.model_kwargs)
            cfg.patch_size = cfg.patch_size or list(plan.patch_size)
            cfg.batch_size = cfg.batch_size or plan.batch_size
            cfg.normalization = PLANNED
        cfg.model = cfg.model or "unet3d"
        cfg.batch_size = cfg.batch_size or 4
        cfg.lr = base_lr(cfg.schedule, cfg.lr)
        if not cfg.patch_size:
            size = 64 if device_type == "cuda" else 32
            cfg.patch_size = [size, size, size]
        if cfg.device == "auto":
            cfg.device = device_type
        if any(c >= spec.num_channels for c in cfg.channels):
            raise ConfigError(f"channels {cfg.channels} name channels beyond the dataset's {spec.num_channels} "
                              f"({', '.join(spec.channels)})")
        if cfg.features:
            from clinseg.data.features import feature_channels

            cfg.feature_channels = feature_channels(cfg.features)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`ConfigError` on values that cannot work."""
        if len(self.patch_size) not in (0, 3) or any(p < 1 for p in self.patch_size) or (
                self.patch_size and sorted(self.patch_size)[1] < 4):
            raise ConfigError(f"patch_size must be three sizes >= 4, or [1, H, W]-like for a slice-wise network "
                              f"(one size 1), got {self.patch_size}")
        for name in ("iterations", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 0:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size} (0 = planned)")
        if not 0 <= self.foreground_fraction <= 1:
            raise ConfigError(f"foreground_fraction must be in [0, 1], got {self.foreground_fraction}")
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"overlap must be in [0, 1), got {self.overlap}")
        if any(c < 0 for c in self.channels) or len(set(self.channels)) != len(self.channels):
            raise ConfigError(f"channels must be distinct channel indices >= 0, got {self.channels}")
        if self.lr < 0:
            raise ConfigError(f"lr must be > 0 (0 = the optimiser's default), got {self.lr}")
        if self.undelineated not in ("masked", "background"):
            raise ConfigError(f"undelineated must be 'masked' or 'background', got {self.undelineated!r}")
        if self.normalization not in ("", PLANNED, *PER_CASE_SCHEMES):
            raise ConfigError(f"normalization must be one of {', '.join(PER_CASE_SCHEMES)} (or empty: planned), got "
                              f"{self.normalization!r}")
        self.plan.validate("plan")
        self.augmentation.validate("augmentation")
        self.schedule.validate("schedule")
        if self.unknowns not in ("", "class", "voxel"):
            raise ConfigError(f"unknowns must be 'voxel', 'class' or empty, got {self.unknowns!r}")
        if not self.unknowns and (self.loss == "adaptive_target" or self.sampler == "class-centred"):
            raise ConfigError("the adaptive_target loss and the class-centred sampler read voxel-level labels: set "
                              "unknowns to 'voxel' or 'class'")
        if (self.unknowns or self.merge_bilateral) and self.label_mode == "multiclass":
            raise ConfigError("voxel-level labels and merged bilateral organs need label_mode multilabel")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.calibrate and (self.label_mode == "multiclass" or self.interactive):
            raise ConfigError("calibrate chooses one threshold per sigmoid output: it needs label_mode multilabel "
                              "and a run that is not interactive")
        if self.interactive and self.label_mode == "multiclass":
            raise ConfigError("an interactive run segments one clicked object with a sigmoid: label_mode must "
                              "be multilabel")


#: Named presets: the paper settings are named, not copy-pasted numbers.
PRESETS: dict[str, dict[str, Any]] = {
    # Seed 000 (Sec. 4): resfcn3d, masked BCE only, batches of four 64³ patches, Adam 1e-3, 15000 iterations,
    # no augmentation, images as they are (per-case z-score, no resampling).
    "oar-2019": {
        "model": "resfcn3d",
        "loss": "masked_bce",
        "loss_kwargs": {"dice_weight": 0.0},
        "patch_size": [64, 64, 64],
        "batch_size": 4,
        "iterations": 15000,
        "lr": 1e-3,
        "flip_axes": [],
        "intensity_augment": False,
        "plan": {"enabled": False},
        "augmentation": {"enabled": False},
        "schedule": {"optimizer": "adam", "decay": "constant", "warmup": 0, "weight_decay": 0.0, "grad_clip": 0.0},
    },
    # Seed 003's single-stage baseline (and the base of its two networks): Dice + cross-entropy, GroupNorm,
    # Adam 1e-4, >= 80% of patches containing foreground, validation Dice each "epoch" (here every 100
    # iterations) with the best checkpoint kept, patience 20 epochs.
    "localise-2021": {
        "model": "unet3d",
        "model_kwargs": {"norm": "group"},
        "loss": "masked_bce",
        "loss_kwargs": {"dice_weight": 1.0},
        "lr": 1e-4,
        "schedule": {"optimizer": "adam", "decay": "constant", "warmup": 0, "weight_decay": 0.0},
        "foreground_fraction": 0.8,
        "val_every": 100,
        "patience": 20,
        "iterations": 20000,
    },
    # The embedded demo on 2 CPU cores (a few minutes of training). Small patches: with 48³ patches the
    # brainstem lies in almost every patch and takes over the shared features, so the other organs stay
    # unlearned for a long time; with 32³ patches each organ gets patches of its own. Not planned, without
    # augmentation and with a constant Adam 1e-3, as before plans: planned, the demo fell from a mean Dice of
    # 0.50 to 0.34 (default augmentation and AdamW decay: optic nerves, chiasm and pituitary unlearned) and
    # 0.36 (without them: right-side structures confused with the left); docs/benchmarks.md.
    "cpu-demo": {
        "model": "unet3d",
        "patch_size": [32, 32, 32],
        "batch_size": 4,
        "iterations": 2000,
        "val_every": 250,
        "foreground_fraction": 0.67,
        "loss_kwargs": {"dice_weight": 1.0},
        "lr": 1e-3,
        "plan": {"enabled": False},
        "augmentation": {"enabled": False},
        "schedule": {"optimizer": "adam", "decay": "constant", "warmup": 0, "weight_decay": 0.0},
    },
}


def config_from_dict(values: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build a config from a mapping; ``preset: NAME`` applies a preset first. Unknown keys are errors."""
    values = dict(values or {})
    preset = values.pop("preset", None)
    merged: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"{source}: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        merged.update(PRESETS[preset])
    for key, value in values.items():  # a section merges option by option with the preset's
        if key in SECTIONS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    for key, cls in SECTIONS.items():
        if isinstance(merged.get(key), dict):
            merged[key] = build_dataclass(cls, merged[key], f"{source}: {key}")
        elif key in merged and merged[key] is not None and not isinstance(merged[key], cls):
            raise ConfigError(f"{source}: {key} must be a mapping of options, got {merged[key]!r}")
    cfg = build_dataclass(TrainConfig, merged, source)
    cfg.validate()
    return cfg


def given_fields(values: dict[str, Any]) -> frozenset[str]:
    """The :class:`TrainConfig` fields a config mapping sets: its keys, a ``preset:``'s fields in its place.

    ``clinseg train`` compares only these with a run it resumes (:mod:`clinseg.training.resume`).
    """
    fields = set(values) - {"preset"}
    if values.get("preset") in PRESETS:
        fields |= set(PRESETS[values["preset"]])
    return frozenset(fields)


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML config file (a mapping of :class:`TrainConfig` fields, optionally ``preset:``)."""
    return config_from_dict(read_mapping(path), str(path))


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the config as YAML atomically."""
    write_dataclass(cfg, path)


def unplanned(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with planning switched off: each image's own grid, no crop, per-case normalisation.

    For the methods whose networks or predictors work on the images' own grid: slice-wise and triplanar
    networks (their planes are the image's axes), feature maps stored per input voxel (2D-3D), organ crops
    and click maps placed on the input grid (two-stage, interactive), and multi-task unions whose tasks have
    different modalities (one channel's statistics would mix CT and MR). Augmentation and the schedule still
    apply.
    """
    return dataclasses.replace(cfg, plan=dataclasses.replace(cfg.plan, enabled=False))
