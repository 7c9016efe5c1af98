"""Study arms: how one method turns a training subset into test-set predictions.

An arm method is registered by name and receives an :class:`ArmContext`; it trains whatever it needs inside
``context.run_dir`` (resuming when interrupted) and writes test predictions as ``PRED/<case>/<structure>.nii.gz``
into ``context.predictions_dir``. The study evaluates them, so every method is scored the same way. A later
method (restoration pretraining, localise-to-segment …) plugs in as one module with one registration::

    @register_arm_method("two-stage")
    def two_stage(context: ArmContext) -> None: ...
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text
from clinseg.registry import Registry
from clinseg.training.config import TrainConfig


@dataclass(frozen=True)
class ArmContext:
    """What a method gets for one run.

    Attributes
    ----------
    dataset_dir : the study's dataset.
    test_images : folder of the test images (``imagesTs``).
    run_dir : the run folder (a normal clinseg run folder for single-network methods).
    predictions_dir : where test predictions must be written.
    config : training configuration with the subset, validation cases and seed of this run filled in.
    options : the arm's ``options`` from the study specification.
    largest_component : keep the largest component per structure (the study's setting).
    study_dir : the study folder (for what an arm shares between its runs, e.g. a pretraining run).
    arm : the arm's name.
    """

    dataset_dir: Path
    test_images: Path
    run_dir: Path
    predictions_dir: Path
    config: TrainConfig
    options: dict[str, Any] = field(default_factory=dict)
    largest_component: bool = True
    study_dir: Path | None = None
    arm: str = ""


ArmMethod = Callable[[ArmContext], None]
ARM_METHODS: Registry[ArmMethod] = Registry("study arm method")


def register_arm_method(name: str) -> Callable[[ArmMethod], ArmMethod]:
    """Decorator registering a study arm method under ``name``."""
    return ARM_METHODS.register(name)


class _CaseTimer:
    """Collects prediction seconds (and cascade voxel counts) per test case for ``measures.json``."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.seconds: list[float] = []
        self.voxel_fraction: list[float] = []

    def __call__(self, case: str, seconds: float) -> None:
        self.seconds.append(seconds)
        report = getattr(self.predictor, "last_report", None)
        if report is not None and report.voxels_total:
            self.voxel_fraction.append(report.voxels_segmented / report.voxels_total)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inference_seconds_per_case": round(float(np.mean(self.seconds)), 3)
                               if self.seconds else None}
        if self.voxel_fraction:
            out["voxels_segmented_fraction"] = round(float(np.mean(self.voxel_fraction)), 4)
        return out


def write_measures(context: ArmContext, networks: dict[str, Path], timer: _CaseTimer, **extra: Any) -> None:
    """``RUN/measures.json``: training measures of each network, inference time per test case, and the
    arm's ``extra`` entries."""
    from clinseg.training.measures import training_measures

    record = {"networks": {name: training_measures(path).to_dict() for name, path in networks.items()},
              **timer.summary(), **extra}
    write_text(context.run_dir / "measures.json", json.dumps(record, indent=2))


def _check_options(context: ArmContext, allowed: set[str]) -> None:
    unknown = sorted(set(context.options) - allowed)
    if unknown:
        raise ConfigError(f"arm {context.arm or context.run_dir.parent.name}: options {unknown} unknown; "
                          f"this method takes {sorted(allowed) or 'none'}")


@register_arm_method("segment")
@register_arm_method("baseline")
def segment(context: ArmContext) -> None:
    """Train one network on the subset (resuming if interrupted), then segment the test images."""
    _check_options(context, set())
    _train_and_predict(context, context.config)


def _train_and_predict(context: ArmContext, config: TrainConfig) -> None:
    from clinseg.inference.predictor import Predictor, predict_folder
    from clinseg.training.run import train

    train(context.dataset_dir, context.run_dir, config)
    predictor = Predictor.from_run(context.run_dir, "best", context.config.device)
    timer = _CaseTimer(predictor)
    predict_folder(predictor, context.test_images, context.predictions_dir,
                   largest_component=context.largest_component, on_case=timer)
    write_measures(context, {"network": context.run_dir}, timer)


@register_arm_method("method")
def training_method(context: ArmContext) -> None:
    """Any training method of ``clinseg train --method NAME`` (option ``method``, its options in
    ``method_options``), predicted with the run folder's own predictor (cascade, 2D-3D, ...)."""
    from clinseg.inference.cascade import load_predictor
    from clinseg.inference.organs import (
        OrganPipeline,
        predict_organs_folder,
        uses_organs,
    )
    from clinseg.inference.predictor import predict_folder
    from clinseg.training.methods import run_method

    _check_options(context, {"method", "method_options"})
    if "method" not in context.options:
        raise ConfigError(f"arm {context.arm}: the 'method' arm needs the option method: NAME")
    run_method(str(context.options["method"]), context.dataset_dir, context.run_dir, context.config,
               **dict(context.options.get("method_options") or {}))
    if uses_organs(context.run_dir):  # merged bilateral organs (oar2d): split into the dataset's structures
        pipeline = OrganPipeline.from_runs([context.run_dir], "none", "best", context.config.device)
        timer = _CaseTimer(pipeline)
        predict_organs_folder(pipeline, context.test_images, context.predictions_dir, on_case=timer)
    else:
        predictor = load_predictor(context.run_dir, "best", context.config.device)
        timer = _CaseTimer(predictor)
        predict_folder(predictor, context.test_images, context.predictions_dir,
                       largest_component=context.largest_component, on_case=timer)
    networks = {p.parent.name if p.parent != context.run_dir else "network": p.parent
                for p in sorted(context.run_dir.glob("**/metrics.jsonl"))}
    write_measures(context, networks, timer)


@register_arm_method("vote")
def vote(context: ArmContext) -> None:
    """Hierarchical voting (seed 001 §2.2.4) of the test predictions of other arms on the same subset:
    options ``of`` (arm names, listed before this arm) and ``thresholds`` (``[T_tumour, T_core, T_enh]``
    or a preset name, default ``seed001``). Trains nothing; its inputs' runs must be finished."""
    from clinseg.data.dataset import load_dataset
    from clinseg.inference.voting import vote_folders

    _check_options(context, {"of", "thresholds"})
    arms = [str(a) for a in context.options.get("of") or []]
    if len(arms) < 2:
        raise ConfigError(f"arm {context.arm}: 'of' must name at least two arms to vote")
    runs = _finished_runs(context, arms)
    labels = dict(load_dataset(context.dataset_dir).spec.label_values)
    vote_folders([r / "predictions" for r in runs], context.predictions_dir,
                 context.options.get("thresholds", "seed001"), labels)
    write_text(context.run_dir / "measures.json", json.dumps({"voted": " + ".join(arms)}, indent=2))


def _finished_runs(context: ArmContext, arms: list[str]) -> list[Path]:
    """The runs of ``arms`` on this arm's subset; a :class:`ConfigError` when one is not finished."""
    runs = [context.run_dir.parent.parent / arm / context.run_dir.name for arm in arms]
    unfinished = [str(r) for r in runs if not (r / "done.json").is_file()]
    if unfinished:
        raise ConfigError(f"arm {context.arm}: runs {unfinished} are not finished; run them first (then "
                          "'clinseg study run --retry-failed')")
    return runs


@register_arm_method("anatomy")
def anatomy(context: ArmContext) -> None:
    """Seed 001's OAR pipeline (§4.2.2) on the networks of other arms on the same subset: their majority vote
    (option ``of``: e.g. the axial, coronal and sagittal oar2d arms; one arm = no vote), then the anatomy
    rules, some switched off with ``disable`` (rule names). Trains nothing."""
    from clinseg.inference.anatomy import AnatomySettings
    from clinseg.inference.organs import OrganPipeline, predict_organs_folder

    _check_options(context, {"of", "disable"})
    arms = [str(a) for a in context.options.get("of") or []]
    if not arms:
        raise ConfigError(f"arm {context.arm}: 'of' must name the arm(s) whose networks are post-processed")
    runs = _finished_runs(context, arms)
    settings = AnatomySettings(disabled=tuple(str(r) for r in context.options.get("disable") or ()))
    pipeline = OrganPipeline.from_runs(runs, "anatomy", "best", context.config.device, settings)
    timer = _CaseTimer(pipeline)
    predict_organs_folder(pipeline, context.test_images, context.predictions_dir, on_case=timer)
    write_text(context.run_dir / "measures.json", json.dumps({"post-processed": " + ".join(arms),
                                                               **timer.summary()}, indent=2))


@register_arm_method("interactive")
def interactive(context: ArmContext) -> None:
    """Seed 002's SegInter: a click-guided network (image + click maps), evaluated with ``clicks`` (default 1)
    simulated clicks per slice (slice-wise network) or per volume from the test reference."""
    from clinseg.interactive.network import InteractiveNetwork
    from clinseg.interactive.predict import predict_with_clicks
    from clinseg.training.run import train

    _check_options(context, {"clicks"})
    config = context.config
    if not config.interactive:
        config = dataclasses.replace(config, interactive={"eval_clicks": 1})
    train(context.dataset_dir, context.run_dir, config)
    network = InteractiveNetwork.from_run(context.run_dir, "best", config.device)
    timer = _CaseTimer(None)
    predict_with_clicks(network, context.test_images, context.dataset_dir, context.predictions_dir,
                        int(context.options.get("clicks", 1)), on_case=timer)
    write_measures(context, {"network": context.run_dir}, timer)


@register_arm_method("pretrained")
def pretrained(context: ArmContext) -> None:
    """Seed 002's SegPretrained: restoration pretraining on every training image of the dataset (labels never
    read), once per arm and shared by its runs (``STUDY/pretrain/<arm>``), then the baseline training
    initialised from it. Option ``pretrain``: :class:`~clinseg.pretraining.config.PretrainConfig` fields."""
    _check_options(context, {"pretrain"})
    pretrain_dir = shared_pretraining(context)
    _train_and_predict(context, dataclasses.replace(context.config, init=str(pretrain_dir)))


def shared_pretraining(context: ArmContext) -> Path:
    """Pretrain (or resume, or reuse) the arm's restoration run; one process at a time holds a file lock, so
    parallel runs of the arm wait for one pretraining instead of racing."""
    import fcntl

    from clinseg.pretraining.config import pretrain_config_from_dict
    from clinseg.pretraining.run import pretrain

    if context.study_dir is None:
        raise ConfigError("the pretrained arm needs the study folder to keep its pretraining run")
    folder = context.study_dir / "pretrain" / (context.arm or context.run_dir.parent.name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    config = pretrain_config_from_dict(dict(context.options.get("pretrain", {})), "pretrain options")
    if not config.device or config.device == "auto":
        config = dataclasses.replace(config, device=context.config.device)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pretrain(context.dataset_dir, folder, config)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


def _two_stage_options(context: ArmContext) -> Any:
    from clinseg.training.two_stage import TwoStageOptions

    allowed = {"margin", "jitter", "lowres"}
    _check_options(context, allowed | {"organ_from"})
    return TwoStageOptions(**{k: v for k, v in context.options.items() if k in allowed})


@register_arm_method("two-stage")
def two_stage(context: ArmContext) -> None:
    """Seed 003's cascade: localisation network on the low-resolution grid + organ network on crops."""
    from clinseg.inference.cascade import CascadePredictor
    from clinseg.inference.predictor import predict_folder
    from clinseg.training.two_stage import train_two_stage

    train_two_stage(context.dataset_dir, context.run_dir, context.config, _two_stage_options(context))
    predictor = CascadePredictor.from_run(context.run_dir, "best", context.config.device)
    timer = _CaseTimer(predictor)
    predict_folder(predictor, context.test_images, context.predictions_dir,
                   largest_component=context.largest_component, on_case=timer)
    write_measures(context, {"localiser": context.run_dir / "localiser", "organ": context.run_dir / "organ"}, timer)


@register_arm_method("gt-localised")
def gt_localised(context: ArmContext) -> None:
    """The organ network on crops around the *reference* organs: the ceiling of localisation (seed 003).

    Option ``organ_from: ARM`` reuses the organ network of that (two-stage) arm's run on the same subset
    when it is finished, instead of training an identical one.
    """
    from clinseg.data.crop import bounding_box
    from clinseg.data.dataset import load_dataset
    from clinseg.data.loading import load_targets
    from clinseg.inference.cascade import CascadePredictor
    from clinseg.inference.predictor import Predictor, predict_folder
    from clinseg.io.image import read_geometry
    from clinseg.training.two_stage import train_two_stage

    organ_dir = context.run_dir / "organ"
    source = context.options.get("organ_from")
    shared = context.run_dir.parent.parent / str(source) / context.run_dir.name / "organ" if source else None
    if shared is not None and (shared / "checkpoints" / "best.pt").is_file() and \
            (shared.parent / "done.json").is_file():
        organ_dir = shared
    else:
        train_two_stage(context.dataset_dir, context.run_dir, context.config, _two_stage_options(context),
                        stages=("organ",))
    organ = Predictor.from_run(organ_dir, "best", context.config.device)
    predictor = CascadePredictor(None, organ, _two_stage_options(context).margin)
    dataset = load_dataset(context.dataset_dir)

    def reference_boxes(case: str) -> dict[str, Any]:
        record = dataset.case(case)
        target, annotated = load_targets(record, dataset.spec, read_geometry(record.images[0]))
        return {"boxes": {n: bounding_box(target[n]) if annotated[n] else None for n in range(len(target))}}

    timer = _CaseTimer(predictor)
    predict_folder(predictor, context.test_images, context.predictions_dir, case_options=reference_boxes,
                   largest_component=context.largest_component, on_case=timer)
    write_measures(context, {"organ": organ_dir}, timer)
from clinseg.studies import multitask_arm as _multitask_arm  # noqa: F401  (registers "multitask", seed 004)
