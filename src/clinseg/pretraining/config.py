"""Typed configuration of a restoration pretraining run (seed 002 §2.2), and YAML in/out.

Every pretraining run folder holds ``config.yaml`` with these settings (device resolved), so a run can be
resumed from its folder alone. The attribute names that :func:`clinseg.training.loop.run_loop` reads
(``iterations``, ``val_every``, ``patience``, ``checkpoint_every``, ``batch_size``, ``flip_axes``,
``intensity_augment``) are the training config's, so the same loop drives both kinds of runs.

Example
-------
>>> cfg = pretrain_config_from_dict({"model": "unet3d", "patch_size": [32, 32, 32], "loss": "mse"})
>>> cfg.distortion_config().paint_rate
0.9
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinseg.configfile import build_dataclass, read_mapping, write_dataclass
from clinseg.errors import ConfigError
from clinseg.pretraining.distortions import DistortionConfig
from clinseg.pretraining.losses import RESTORATION_LOSSES

__all__ = ["NORMALIZATIONS", "PretrainConfig", "load_pretrain_config", "pretrain_config_from_dict",
           "save_pretrain_config"]

#: The intensity normalisations of :func:`clinseg.data.loading.normalize_intensity`.
NORMALIZATIONS: tuple[str, ...] = ("none", "percentile", "zscore")


@dataclass
class PretrainConfig:
    """Settings of one restoration pretraining run.

    Attributes
    ----------
    model : registered network name (``unet2d`` = 2D U-Net on axial slices, ``unet3d``, ``dynunet`` …);
        the same network, with the same ``model_kwargs``, must be used for the segmentation training that
        takes over the weights (:func:`clinseg.pretraining.transfer.transfer_weights` checks it).
    model_kwargs : options of the network builder (``features``, ``norm`` …).
    patch_size : patch ``(Z, Y, X)`` in voxels. A patch one voxel thick along one axis is a 2-D slice
        (``[1, 64, 64]`` = axial slices, for ``unet2d``); the distortions are then drawn in 2-D. Seed 002
        used 96 x 96 slices.
    batch_size : patches per optimiser step.
    iterations : optimiser steps.
    lr : Adam learning rate.
    loss : ``l1`` (seed 002 §2.2, "simple L1 loss") or ``mse`` (Models Genesis' own choice).
    normalization : per-image intensity normalisation before pretraining, one of ``none``, ``percentile``
        (0.5th..99.5th percentile -> 0..1) or ``zscore``. Afterwards intensities are **clipped to [0, 1]**,
        because the Models Genesis distortions assume that range (the Bézier curve maps [0, 1] onto itself,
        painting fills with U[0, 1) noise). The ``ct-bone`` phantom's images are already in [0, 1] (seed 002
        §2.4 clips HU to [-1024, 3000] and scales), so ``none`` suits them; ``percentile`` suits other data.
        ``zscore`` would keep only the band between the mean and one standard deviation above it: avoid it.
    distortions : :class:`~clinseg.pretraining.distortions.DistortionConfig` fields overriding the Models
        Genesis defaults, e.g. ``{"paint_rate": 0.5}``.
    val_cases : images held out to measure the restoration loss; ``best.pt`` is the lowest validation loss.
        At least one image always stays for training; with fewer than two images there is no validation.
    val_patches : size of the fixed, seeded set of distorted validation patches, drawn once from the
        held-out images (the same patches at every validation, so losses are comparable).
    val_every : validate every this many iterations (and at the last one).
    patience : stop after this many validations without improvement (0 = never stop early).
    checkpoint_every : save ``last.pt`` every this many iterations (and on Ctrl-C / SIGTERM).
    seed : seeds the weights, the patch positions and the distortions.
    device : ``auto`` | ``cpu`` | ``cuda[:N]`` (written resolved into the run folder).
    threads : CPU threads (0 = all available cores).
    amp : ``auto`` | ``bf16`` | ``fp16`` | ``off`` mixed precision for training steps.
    flip_axes : random flips of input *and* target along these array axes (0=Z, 1=Y, 2=X); Models Genesis
        flips pairs (``flip_rate = 0.4``), seed 002 does not mention it, so none by default.
    intensity_augment : must stay False: the loop would scale the distorted input but not the target.
    precompute : 0 = distort patches on the fly (a new pair every time); N > 0 = draw a pool of N
        distorted/original pairs once and cycle through it (seed 002 "pregenerated" its pixel-shuffled data
        to save time). The pool holds ``2 * N * C * prod(patch_size)`` float32 values in memory.
    """

    model: str = "unet2d"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    patch_size: list[int] = field(default_factory=lambda: [1, 64, 64])
    batch_size: int = 16
    iterations: int = 2000
    lr: float = 1e-3
    loss: str = "l1"
    normalization: str = "none"
    distortions: dict[str, Any] = field(default_factory=dict)
    val_cases: int = 2
    val_patches: int = 32
    val_every: int = 100
    patience: int = 0
    checkpoint_every: int = 50
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    amp: str = "auto"
    flip_axes: list[int] = field(default_factory=list)
    intensity_augment: bool = False
    precompute: int = 0

    def distortion_config(self) -> DistortionConfig:
        """The distortions: Models Genesis defaults overridden by :attr:`distortions`."""
        return build_dataclass(DistortionConfig, dict(self.distortions), "distortions")

    def validate(self) -> None:
        """Raise :class:`ConfigError` on values that cannot work."""
        size = self.patch_size
        if len(size) != 3 or any(not isinstance(p, int) or p < 1 for p in size):
            raise ConfigError(f"patch_size must be three positive sizes (Z, Y, X), got {size}")
        if sum(p == 1 for p in size) > 1 or any(1 < p < 4 for p in size):
            raise ConfigError(f"patch_size {size}: at most one axis may be 1 voxel thick (a 2-D slice) and "
                              "the others need >= 4 voxels")
        for name in ("batch_size", "iterations", "val_every", "checkpoint_every", "val_patches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("val_cases", "patience", "precompute", "threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.loss not in RESTORATION_LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(RESTORATION_LOSSES)}, got {self.loss!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, "
                              f"got {self.normalization!r}")
        if any(a not in (0, 1, 2) for a in self.flip_axes):
            raise ConfigError(f"flip_axes must be array axes 0, 1, 2, got {self.flip_axes}")
        if self.intensity_augment:
            raise ConfigError("intensity_augment must be false for restoration pretraining (it would change "
                              "the input but not the restoration target)")
        self.distortion_config()


def pretrain_config_from_dict(values: dict[str, Any] | None, source: str = "config") -> PretrainConfig:
    """Build and validate a config from a mapping of :class:`PretrainConfig` fields; unknown keys are errors."""
    cfg = build_dataclass(PretrainConfig, dict(values or {}), source)
    try:
        cfg.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return cfg


def load_pretrain_config(path: str | Path) -> PretrainConfig:
    """Read a YAML file holding a mapping of :class:`PretrainConfig` fields."""
    return pretrain_config_from_dict(read_mapping(path), str(path))


def save_pretrain_config(cfg: PretrainConfig, path: str | Path) -> None:
    """Write the config as YAML atomically."""
    write_dataclass(cfg, path)
