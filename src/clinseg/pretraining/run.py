"""Set up and run one restoration pretraining (seed 002 §2.2): images, run folder, split, parts, resume, loop.

Self-supervised pretraining
---------------------------
The network learns to restore image patches distorted the Models Genesis way (local pixel shuffling, a
non-linear intensity curve, in- or out-painting; :mod:`clinseg.pretraining.distortions`): the input is the
distorted patch, the target the original one, the loss L1 (or MSE). No annotation is needed, so any set of
images can be used; the weights then initialise a segmentation network of the same architecture
(:func:`clinseg.pretraining.transfer.transfer_weights`, ``clinseg train --init RUN``), which seed 002 found
helps most when few images are annotated.

Usage::

    clinseg pretrain DATASET_OR_IMAGE_FOLDER --out runs/pretrain-2d                 # unet2d, [1, 64, 64]
    clinseg pretrain images/ --out runs/pretrain-3d --model unet3d --patch 32,32,32 --normalization percentile

    >>> state = pretrain("demo/CTBone", "runs/pretrain", PretrainConfig(iterations=500))   # doctest: +SKIP

The source is a dataset folder (its ``imagesTr`` only: test images, label maps and structure masks are
never read) or a plain folder of images (see :mod:`clinseg.pretraining.images`). Intensities are
normalised (``normalization``) and clipped to [0, 1], the range the distortions assume. A 2-D network
(``unet2d``) trains on slices, i.e. patches one voxel thick (``patch_size: [1, 64, 64]``), distorted in 2-D.

Run folder::

    RUN/config.yaml         resolved PretrainConfig
    RUN/pretrain.json       kind "restoration-pretraining", model, model_kwargs, in_channels, channel names,
                            normalization, patch_size, number of images, source: what ``train --init`` checks
    RUN/fingerprint.json    image file names and sizes (a resumed run refuses another image set)
    RUN/split.json          training and validation image ids
    RUN/metrics.jsonl       one record per iteration (loss; val_l1 and val_mse every val_every iterations)
    RUN/checkpoints/last.pt and best.pt   best = lowest validation loss on a fixed, seeded set of distorted
                            patches of the held-out images (the final weights when there is no validation)
    RUN/restoration.png     a few validation patches: distorted, original, restored by best.pt

Running the same command again resumes from ``last.pt`` exactly where it stopped, with the same rules as
``clinseg train`` (:mod:`clinseg.training.resume`): options given again that differ from the saved ones are
refused with both values named (``--force`` resumes with the saved configuration, recorded in
``RUN/history.json``); ``--iterations`` may extend a finished run, never go below what was trained.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from clinseg.data.samplers import PatchBatch
from clinseg.errors import CheckpointError, ConfigError, DatasetError
from clinseg.io.atomic import ensure_folder, write_bytes, write_text
from clinseg.models import create_model, size_divisors
from clinseg.pretraining.config import (
    PretrainConfig,
    load_pretrain_config,
    save_pretrain_config,
)
from clinseg.pretraining.images import (
    ImageSet,
    find_images,
    image_fingerprint,
    load_images,
)
from clinseg.pretraining.losses import RESTORATION_LOSSES, restoration_loss
from clinseg.pretraining.source import RestorationSource, validation_pairs
from clinseg.training.batches import batch_at
from clinseg.training.checkpoint import TrainState, load_checkpoint, restore
from clinseg.training.device import amp_dtype, configure_threads, select_device
from clinseg.training.loop import LoopParts, run_loop
from clinseg.training.metrics_log import MetricsLog
from clinseg.training.resume import ResumePolicy, plan_resume, record_resume
from clinseg.training.schedule import ScheduleSettings

__all__ = ["PRETRAIN_KIND", "choose_validation_images", "pretrain", "restoration_figure", "restoration_scores"]

log = logging.getLogger(__name__)

#: ``pretrain.json["kind"]`` of a restoration pretraining run.
PRETRAIN_KIND = "restoration-pretraining"
#: Examples shown in ``restoration.png``.
_PREVIEW_EXAMPLES = 4
#: The learning schedule of pretraining (seed 002 §2.2): Adam (built here) at a constant learning rate, no
#: warm-up, no gradient clipping.
_SCHEDULE = ScheduleSettings(optimizer="adam", decay="constant", warmup=0, grad_clip=0.0)


def choose_validation_images(ids: list[str], count: int, seed: int) -> list[str]:
    """Hold out ``count`` image ids (seeded), always leaving one for training; none with fewer than two."""
    if len(ids) < 2 or count < 1:
        return []
    shuffled = list(ids)
    np.random.default_rng(seed).shuffle(shuffled)
    chosen = sorted(shuffled[: min(count, len(ids) - 1)])
    if len(chosen) < count:
        log.warning("only %d of %d validation image(s) held out: %d image(s) in all", len(chosen), count, len(ids))
    return chosen


def restoration_scores(
    model: torch.nn.Module, distorted: np.ndarray, original: np.ndarray, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Mean L1 and MSE of the model's restorations of ``distorted`` ``(N, C, *P)`` against ``original``."""
    model.eval()
    sums = dict.fromkeys(RESTORATION_LOSSES, 0.0)
    with torch.inference_mode():
        for start in range(0, len(distorted), batch_size):
            x = torch.from_numpy(distorted[start:start + batch_size]).to(device)
            y = torch.from_numpy(original[start:start + batch_size]).to(device)
            out = model(x).float()
            for name, loss in RESTORATION_LOSSES.items():
                sums[name] += float(loss(out, y, torch.ones(1))) * len(x)
    return {name: total / len(distorted) for name, total in sums.items()}


def restoration_figure(distorted: np.ndarray, original: np.ndarray, restored: np.ndarray) -> Any:
    """One row per example: distorted | original | restored, channel 0, middle slice (matplotlib Figure).

    Arrays are ``(N, C, Z, Y, X)`` in [0, 1]; a patch one voxel thick shows that slice, a 3-D patch its
    middle Z slice.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def middle(patch: np.ndarray) -> np.ndarray:  # (C, Z, Y, X) -> 2-D
        volume = patch[0]
        thin = [a for a in range(3) if volume.shape[a] == 1]
        axis = thin[0] if thin else 0
        return np.take(volume, volume.shape[axis] // 2, axis=axis)

    rows = len(distorted)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.5 * rows), squeeze=False)
    for r in range(rows):
        for c, (title, batch) in enumerate((("distorted", distorted), ("original", original),
                                            ("restored", restored))):
            ax = axes[r, c]
            ax.imshow(middle(batch[r]), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    fig.tight_layout()
    return fig


def _save_preview(path: Path, model: torch.nn.Module, pairs: tuple[np.ndarray, np.ndarray],
                  device: torch.device) -> None:
    import matplotlib.pyplot as plt

    distorted, original = (a[:_PREVIEW_EXAMPLES] for a in pairs)
    model.eval()
    with torch.inference_mode():
        restored = model(torch.from_numpy(distorted).to(device)).float().cpu().numpy()
    fig = restoration_figure(distorted, original, np.clip(restored, 0.0, 1.0))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())


def build_restoration_model(cfg: PretrainConfig, channels: int) -> torch.nn.Module:
    """The configured network with ``channels`` inputs and as many linear outputs (seeded); checks the patch."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, channels, channels, **cfg.model_kwargs)
    divisors = size_divisors(model)
    if any(p % d for p, d in zip(cfg.patch_size, divisors)):
        raise ConfigError(f"patch_size {cfg.patch_size} must be a multiple of {list(divisors)} (Z, Y, X) "
                          f"for {cfg.model} (a 3-D network needs a 3-D patch, e.g. --patch 32,32,32)")
    return model


def _prepare_run_dir(run_dir: Path, cfg: PretrainConfig, asked: bool, fingerprint: dict, iterations: int | None,
                     policy: ResumePolicy | None) -> PretrainConfig:
    """Create the folder, or check that it is a pretraining run of these images whose options match what was
    asked (``asked``: ``cfg`` is what the caller asked for, not a default); returns the config to use."""
    config_path = run_dir / "config.yaml"
    if config_path.is_file():
        if not (run_dir / "pretrain.json").is_file():
            raise CheckpointError(f"{run_dir}: not a pretraining run folder (no pretrain.json); use a new --out")
        old_path = run_dir / "fingerprint.json"
        old = json.loads(old_path.read_text(encoding="utf-8")) if old_path.is_file() else {}
        if old and old.get("images") != fingerprint["images"]:
            before, now = {tuple(f) for f in old.get("images", [])}, {tuple(f) for f in fingerprint["images"]}
            raise DatasetError(f"{run_dir}: this run was pretrained on other images ({len(before - now)} file(s) "
                               f"gone or changed, {len(now - before)} new); use a new --out folder")
    resumed = plan_resume(run_dir, cfg if asked else None, policy, iterations, load=load_pretrain_config)
    if resumed is not None:
        log.info("resuming pretraining run in %s", run_dir)
        record_resume(run_dir, resumed)
        cfg = resumed.config
    ensure_folder(run_dir, "run folder")
    save_pretrain_config(cfg, config_path)
    write_text(run_dir / "fingerprint.json", json.dumps(fingerprint, indent=2))
    return cfg


class _SeededSource:
    """The restoration source as the loop's sampler, batch ``i`` drawn with the generator reseeded from
    ``(seed, i)`` (:func:`clinseg.training.batches.batch_at`), as training does: a resumed run draws exactly
    the patches, distortions and flips (drawn from :attr:`rng` after the batch) of an uninterrupted one, and
    the checkpoint needs no generator state. A precomputed pool is drawn once with the run's seed."""

    def __init__(self, source: RestorationSource, seed: int, iteration: int) -> None:
        self.source, self.seed, self.iteration = source, seed, iteration

    @property
    def rng(self) -> np.random.Generator:
        return self.source.rng

    def batch(self, batch_size: int) -> PatchBatch:
        batch = batch_at(self.source, batch_size, self.seed, self.iteration)
        self.iteration += 1
        return batch


def _loop_settings(cfg: PretrainConfig) -> SimpleNamespace:
    """``cfg`` as the training loop reads a configuration (duck-typed): its fields and :data:`_SCHEDULE`."""
    return SimpleNamespace(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}, schedule=_SCHEDULE)


def _pretrain_info(cfg: PretrainConfig, images: ImageSet, split: dict[str, list[str]]) -> dict[str, Any]:
    """What ``pretrain.json`` records: the settings a segmentation run must share to take the weights."""
    return {
        "kind": PRETRAIN_KIND,
        "model": cfg.model,
        "model_kwargs": cfg.model_kwargs,
        "in_channels": images.num_channels,
        "channel_names": list(images.channel_names) if images.channel_names else None,
        "normalization": cfg.normalization,
        "patch_size": list(cfg.patch_size),
        "loss": cfg.loss,
        "distortions": dataclasses.asdict(cfg.distortion_config()),
        "num_images": len(images.images),
        "num_train": len(split["train"]),
        "num_validation": len(split["validation"]),
        "source": str(images.root.resolve()),
        "source_kind": images.kind,
    }


def pretrain(
    source: str | Path,
    run_dir: str | Path,
    config: PretrainConfig | None = None,
    iterations: int | None = None,
    *,
    resume: ResumePolicy | None = None,
) -> TrainState:
    """Pretrain (or resume) a restoration network on the images of ``source``; returns the final state.

    Parameters
    ----------
    source : dataset folder (``imagesTr`` only) or plain folder of images.
    run_dir : the run folder (created). An existing pretraining run of the same images is resumed with its
        saved configuration; options of ``config`` that differ from the saved ones are refused unless
        ``resume.force`` (:mod:`clinseg.training.resume`; ``resume.explicit`` names the fields compared,
        default all of ``config``'s; ``None`` as ``config`` resumes as saved).
    config : settings (default :class:`PretrainConfig`).
    iterations : overrides ``config.iterations``; on resume it may extend a finished run, never go below the
        iterations trained.
    resume : how to treat differing options of a run being resumed.

    Raises
    ------
    DatasetError
        No usable images, inconsistent channels, or a resumed run whose images changed.
    ConfigError, CheckpointError
        Invalid settings, options that differ from those of the run being resumed, fewer iterations than it
        trained; a run folder that is not a pretraining run.
    """
    cfg = dataclasses.replace(config or PretrainConfig())
    if iterations is not None:
        cfg.iterations = iterations
    cfg.validate()
    device = select_device(cfg.device)
    if cfg.device == "auto":
        cfg.device = device.type
    images = find_images(source)
    run_dir = Path(run_dir)
    cfg = _prepare_run_dir(run_dir, cfg, config is not None, image_fingerprint(images), iterations, resume)
    configure_threads(cfg.threads)

    val_ids = choose_validation_images(images.ids(), cfg.val_cases, cfg.seed)
    split = {"train": [i for i in images.ids() if i not in val_ids], "validation": val_ids}
    write_text(run_dir / "split.json", json.dumps(split, indent=2))
    write_text(run_dir / "pretrain.json", json.dumps(_pretrain_info(cfg, images, split), indent=2))

    norm = cfg.normalization
    train_images = load_images([g for g in images.images if g.image_id in split["train"]], norm)
    val_images = load_images([g for g in images.images if g.image_id in val_ids], norm)
    distortions = cfg.distortion_config()
    sampler = RestorationSource(train_images, cfg.patch_size, np.random.default_rng(cfg.seed), distortions,
                                precompute=cfg.precompute)
    model = build_restoration_model(cfg, images.num_channels).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    state = TrainState()
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.pt"
    metrics = MetricsLog(run_dir / "metrics.jsonl")
    if last.is_file():
        state = restore(load_checkpoint(last, device), model, optimizer, last)
        if sampler.pool is not None:  # one batch per iteration: the pool position follows from the iteration
            sampler.position = state.iteration * cfg.batch_size % len(sampler.pool[0])
        if state.finished and state.iteration < cfg.iterations:
            state.finished = False  # extended run
        log.info("resumed at iteration %d", state.iteration)
    elif (ckpt_dir / "best.pt").is_file():
        raise CheckpointError(f"{run_dir}: best.pt exists without last.pt; use a new --out folder")
    metrics.truncate_after(state.iteration)

    # A fixed, seeded set of distorted validation patches (seed + 1: independent of the training draws).
    val_pairs = (validation_pairs(val_images, cfg.patch_size, cfg.val_patches, cfg.seed + 1, distortions)
                 if val_images else None)
    validator = None
    if val_pairs is not None:
        def validator(m: torch.nn.Module) -> dict[str, float]:
            return restoration_scores(m, val_pairs[0], val_pairs[1], device, cfg.batch_size)

    source = _SeededSource(sampler, cfg.seed, state.iteration)
    parts = LoopParts(model, optimizer, restoration_loss(cfg.loss), source, validator, device,
                      amp_dtype(device, cfg.amp), monitor=cfg.loss, higher_is_better=False)
    state = run_loop(parts, _loop_settings(cfg), state, run_dir, metrics)  # type: ignore[arg-type]

    model.load_state_dict(load_checkpoint(ckpt_dir / "best.pt", device)["model"])
    preview = val_pairs or validation_pairs(train_images, cfg.patch_size, _PREVIEW_EXAMPLES, cfg.seed + 2,
                                            distortions)
    _save_preview(run_dir / "restoration.png", model, preview, device)
    return state
