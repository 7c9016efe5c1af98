"""The data of a training run: its plan, its cases (cached and preprocessed, or loaded as they are), the
patch sampler with its augmentation, and the validation cases.

A planned run (``plan.enabled``, the default) reads its cases from the preprocessed-case cache
(:mod:`clinseg.data.cache`): cropped to the body, resampled to the plan's spacing, normalised per channel.
With the default ``class-aware`` sampler the patches are read from the cache one at a time
(:class:`~clinseg.data.cached_sampler.CachedPatchSampler`, memory independent of the number of cases) and
augmented with context for rotations and scaling. The other samplers (organ crops, class-centred, task-
balanced, mixed supervision) need whole cases in memory: they get the cached cases loaded, and the
augmentation without its spatial part (intensities and mirroring), applied to their patches.

An unplanned run (``plan.enabled: false``) loads each case as it is, normalised per case
(``normalization``), optionally resized by ``resample``, as clinseg did before plans.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from clinseg.data.augmentation import Augmenter
from clinseg.data.cache import build_cache, cache_root
from clinseg.data.cached_sampler import CachedPatchSampler
from clinseg.data.dataset import CaseRecord, Dataset
from clinseg.data.features import read_case
from clinseg.data.intensity import ChannelNorm
from clinseg.data.laterality import swap_permutation
from clinseg.data.loading import CaseData, keep_structures, load_case
from clinseg.data.resize import resample_case
from clinseg.data.samplers import PatchBatch
from clinseg.errors import ConfigError
from clinseg.planning.fingerprint import DatasetFingerprint, fingerprint_dataset
from clinseg.planning.plan import Plan, load_plan
from clinseg.planning.rules import DeviceBudget, make_plan
from clinseg.progress import track
from clinseg.training.config import TrainConfig
from clinseg.training.label_view import training_view, validation_view
from clinseg.training.sampling import PatchSource, build_source

log = logging.getLogger(__name__)


def dataset_files_key(dataset: Dataset) -> str:
    """A hash of ``dataset.json`` and of the path, size and modification time of every case file: the key of
    the dataset's fingerprint and cache (an edited file, even of the same size, changes it)."""
    digest = hashlib.sha256((dataset.root / "dataset.json").read_bytes())
    for record in dataset.cases():
        paths = [*record.images, *record.structure_files.values()]
        if record.label_map is not None:
            paths.append(record.label_map)
        for path in paths:
            stat = path.stat() if path.exists() else None
            digest.update(f"{path.relative_to(dataset.root)}:{stat.st_size if stat else -1}:"
                          f"{stat.st_mtime_ns if stat else -1}\n".encode())
    return digest.hexdigest()


def device_budget(device: torch.device) -> DeviceBudget:
    """The planner's budget for ``device`` (a GPU's memory read from the card)."""
    if device.type == "cuda":
        memory = torch.cuda.get_device_properties(device).total_memory / 2**30
        return DeviceBudget.for_device("cuda", memory)
    return DeviceBudget.for_device("cpu")


def fingerprint_of(dataset: Dataset, key: str | None = None) -> DatasetFingerprint:
    """The dataset's fingerprint, cached under the cache root by its files key."""
    key = key or dataset_files_key(dataset)
    folder = cache_root() / "fingerprints" / f"{key[:24]}"
    return fingerprint_dataset(dataset, key, cache_dir=folder)


def _channel_norms(schemes: Sequence[str], fingerprint: DatasetFingerprint) -> list[ChannelNorm]:
    if len(schemes) != len(fingerprint.channels):
        raise ConfigError(f"plan.normalization gives {len(schemes)} scheme(s) for {len(fingerprint.channels)} "
                          "channel(s)")
    norms = []
    for scheme, stats in zip(schemes, fingerprint.channels):
        if scheme == "ct":
            norms.append(ChannelNorm("ct", (stats.percentile_00_5, stats.percentile_99_5), stats.clipped_mean,
                                     stats.clipped_std))
        else:
            norms.append(ChannelNorm(scheme))
    return norms


def make_run_plan(dataset: Dataset, cfg: TrainConfig, device: torch.device) -> Plan:
    """Plan ``dataset`` for ``device`` and apply the overrides of ``cfg.plan``."""
    key = dataset_files_key(dataset)
    fingerprint = fingerprint_of(dataset, key)
    plan = make_plan(fingerprint, dataset.spec, device_budget(device))
    settings = cfg.plan
    overrides: dict = {"spacing": list(settings.spacing) or None, "crop_to_body": settings.crop_to_body,
                       "mirror_axes": settings.mirror_axes, "largest_component": settings.largest_component}
    plan = plan.with_overrides(overrides)
    if settings.normalization:
        plan = dataclasses.replace(plan, normalization=_channel_norms(settings.normalization, fingerprint))
    unknown = sorted(set(plan.largest_component) - set(dataset.spec.structures))
    if unknown:
        raise ConfigError(f"plan.largest_component names unknown structure(s) {unknown}")
    return plan


def run_plan(dataset: Dataset, cfg: TrainConfig, device: torch.device, run_dir: Path) -> Plan | None:
    """The run's plan: ``RUN/plan.json`` when the run has one (a resumed run keeps its plan), else a new plan
    (``None`` when ``cfg.plan.enabled`` is false, and for interactive runs, feature maps, ``resample`` and
    runs initialised from another run, which work on the images' own grid)."""
    if not cfg.plan.enabled:
        return None
    if cfg.interactive or cfg.features or cfg.resample or cfg.init:
        log.info("interactive runs, feature maps, resample and --init (the pretrained network's grid and "
                 "normalisation) work on the images' own grid: this run is not planned")
        return None
    saved = run_dir / "plan.json"
    if saved.is_file() and (run_dir / "config.yaml").is_file():
        return load_plan(saved)
    return make_run_plan(dataset, cfg, device)


def augmenter_for(cfg: TrainConfig, plan: Plan | None, structures: Sequence[str], spatial: bool) -> Augmenter:
    """The run's augmentation: mirroring the plan's axes (left/right labels swapped), spatial transforms only
    when the sampler reads context for them (``spatial``)."""
    settings = cfg.augmentation
    if not spatial:
        settings = dataclasses.replace(settings, rotation_p=0.0, scale_p=0.0, elastic_p=0.0)
    if any(p == 1 for p in cfg.patch_size):  # slice-wise patches: no mirroring across slices
        settings = dataclasses.replace(settings, rotation_p=0.0, scale_p=0.0, elastic_p=0.0)
    mirror = list(plan.mirror_axes) if plan is not None else []
    pairs = [tuple(p) for p in plan.lateral_pairs] if plan is not None else []
    swap = swap_permutation(structures, pairs)  # type: ignore[arg-type]
    return Augmenter(settings, cfg.patch_size, mirror, plan.lr_axis if plan is not None else None, swap)


class AugmentedSource:
    """Any patch source with the (non-spatial) augmentation applied to each of its patches."""

    def __init__(self, base: PatchSource, augmenter: Augmenter) -> None:
        self.base = base
        self.augmenter = augmenter

    @property
    def rng(self) -> np.random.Generator:
        return self.base.rng

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self.base.rng = value

    def batch(self, batch_size: int) -> PatchBatch:
        batch = self.base.batch(batch_size)
        if batch.image.ndim != 5 or batch.target.ndim != 5 or \
                batch.target.shape[1] != len(self.augmenter.swap or [0] * batch.target.shape[1]):
            return batch  # not (B, C, Z, Y, X) patches of the run's classes (e.g. triplanar voxel samples)
        out = [self.augmenter(i, t, a, self.rng) for i, t, a in zip(batch.image, batch.target, batch.annotated)]
        return dataclasses.replace(batch, image=np.stack([o[0] for o in out]), target=np.stack([o[1] for o in out]),
                                   annotated=np.stack([o[2] for o in out]))


def _as_background(cases: list[CaseData]) -> list[CaseData]:
    """Every structure counted as delineated (empty where it was not): the naive use of partial labels."""
    return [dataclasses.replace(c, annotated=np.ones_like(c.annotated)) for c in cases]


def load_unplanned(records: Sequence[CaseRecord], dataset: Dataset, cfg: TrainConfig) -> list[CaseData]:
    """Cases as they are: normalised per case, feature maps appended, resized by ``cfg.resample``."""
    out = []
    for r in track(list(records), "loading cases"):
        case = load_case(r, dataset.spec, normalization=cfg.normalization)  # type: ignore[arg-type]
        if cfg.features:
            extra = read_case(cfg.features, case.case_id, case.image.shape[1:])
            case = dataclasses.replace(case, image=np.concatenate([case.image, extra]))
        out.append(resample_case(case, cfg.resample) if cfg.resample else case)
    return out


def _cached_sampler_fits(cfg: TrainConfig) -> bool:
    """Whether the run can read its patches from the cache one at a time (the default path)."""
    return (cfg.sampler == "class-aware" and not cfg.unknowns and not cfg.merge_bilateral and not cfg.features
            and not cfg.resample and not cfg.interactive)


def build_run_data(dataset: Dataset, cfg: TrainConfig, plan: Plan | None, train_records: Sequence[CaseRecord],
                   kept: dict[str, frozenset[str]], val_ids: Sequence[str],
                   rng: np.random.Generator) -> tuple[PatchSource, list[CaseData]]:
    """The run's patch source (augmented) and validation cases."""
    spec = dataset.spec
    val_records = [dataset.case(c) for c in val_ids]
    structures = spec.structures
    if plan is not None:
        if cfg.features or cfg.resample:
            raise ConfigError("a planned run resamples to the plan's spacing: features and resample need "
                              "plan: {enabled: false}")
        entries = build_cache(dataset, list(train_records) + val_records, dataset_files_key(dataset),
                              plan.preprocessing())

        def select(case: CaseData) -> CaseData:
            return dataclasses.replace(case, image=case.image[cfg.channels]) if cfg.channels else case

        val_cases = validation_view([select(entries[c].load()) for c in val_ids], cfg, spec)
        if _cached_sampler_fits(cfg):
            masks = [np.array([s in kept[r.case_id] for s in structures]) for r in train_records]
            augmenter = augmenter_for(cfg, plan, structures, spatial=True)
            sampler = CachedPatchSampler([entries[r.case_id] for r in train_records], cfg.patch_size,
                                         cfg.foreground_fraction, rng, augmenter, keep=masks,
                                         absent_as_background=cfg.undelineated == "background",
                                         channels=cfg.channels or None)
            return sampler, val_cases
        train_cases = [keep_structures(select(entries[r.case_id].load()), structures, kept[r.case_id])
                       for r in track(list(train_records), "loading cases")]
    else:
        train_cases = [keep_structures(c, structures, kept[c.case_id]) for c in load_unplanned(train_records, dataset, cfg)]
        val_cases = validation_view(load_unplanned(val_records, dataset, cfg), cfg, spec)
    if cfg.undelineated == "background":
        train_cases = _as_background(train_cases)
    train_cases = training_view(train_cases, cfg, spec)
    sampler, val_cases = build_source(cfg.sampler, cfg.sampler_kwargs, train_cases, val_cases, cfg.patch_size,
                                      cfg.foreground_fraction, rng)
    if cfg.augmentation.enabled:
        outputs = spec.relations.entities(structures) if cfg.merge_bilateral else structures
        sampler = AugmentedSource(sampler, augmenter_for(cfg, plan, outputs, spatial=False))
    return sampler, val_cases
