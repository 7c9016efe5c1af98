"""Study arms: how one method turns a training subset into test-set predictions.

An arm method is registered by name and receives an :class:`ArmContext`; it trains whatever it needs inside
``context.run_dir`` (resuming when interrupted) and writes test predictions as ``PRED/<case>/<structure>.nii.gz``
into ``context.predictions_dir``. The study evaluates them, so every method is scored the same way. A later
method (restoration pretraining, localise-to-segment …) plugs in as one module with one registration::

    @register_arm_method("two-stage", options={"margin"}, check=_check_two_stage)
    def two_stage(context: ArmContext) -> None: ...

The registration declares the method's options and, optionally, a ``check`` of them and the ``datasets`` it
reads besides the study's: ``clinseg study run`` checks every arm (:func:`check_arm`) and validates every
dataset before it writes anything, so a misspelt option fails at once, not when its cell runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text
from clinseg.registry import Registry
from clinseg.studies._options import check_keywords, earlier_arms, mapping_option
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
    skip_validation : skip the dataset checks of ``clinseg validate`` when training (a study validated its
        datasets once before its first cell).
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
    skip_validation: bool = False


@dataclass(frozen=True)
class ArmDraft:
    """An arm of a study spec as its method's check sees it, before anything runs.

    Attributes
    ----------
    name : the arm's name.
    options : the arm's ``options``.
    config : the arm's training configuration (the study's ``base`` with the arm's ``config``), validated.
    dataset_dir : the study's dataset.
    earlier : the names of the arms listed before this one (the arms whose runs it may read).
    """

    name: str
    options: dict[str, Any]
    config: TrainConfig
    dataset_dir: Path
    earlier: tuple[str, ...] = ()


ArmMethod = Callable[[ArmContext], None]
ARM_METHODS: Registry[ArmMethod] = Registry("study arm method")


@dataclass(frozen=True)
class ArmRules:
    """What a method declares when it registers: the option names it takes, a ``check`` of their values
    (raises :class:`ConfigError`) and the ``datasets`` it reads besides the study's (validated with it)."""

    options: frozenset[str] = frozenset()
    check: Callable[[ArmDraft], None] | None = None
    datasets: Callable[[ArmDraft], list[Path]] | None = None


_RULES: dict[str, ArmRules] = {}


def register_arm_method(name: str, *, options: Iterable[str] = (), check: Callable[[ArmDraft], None] | None = None,
                        datasets: Callable[[ArmDraft], list[Path]] | None = None) -> Callable[[ArmMethod], ArmMethod]:
    """Decorator registering a study arm method under ``name``.

    Parameters
    ----------
    name : the ``method`` of an arm in the study spec.
    options : the names of the options the method reads from the arm's ``options``; others are refused.
    check : raises :class:`ConfigError` on option values that cannot work (before the study starts).
    datasets : the dataset folders the method reads besides the study's own (validated with it).
    """
    register = ARM_METHODS.register(name)

    def decorator(method: ArmMethod) -> ArmMethod:
        register(method)
        _RULES[name] = ArmRules(frozenset(options), check, datasets)
        return method

    return decorator


def _rules(method: str) -> ArmRules:
    ARM_METHODS.get(method)  # an unknown method: ConfigError listing the known ones
    return _RULES.get(method, ArmRules())


def check_arm(method: str, draft: ArmDraft) -> None:
    """Raise :class:`ConfigError` when the arm cannot run: an unknown method, an option it does not take, or
    an option value its check refuses. The message names neither the spec nor the arm (the caller does)."""
    rules = _rules(method)
    unknown = sorted(set(draft.options) - rules.options)
    if unknown:
        raise ConfigError(f"options {unknown} unknown; method {method!r} takes {sorted(rules.options) or 'none'}")
    if rules.check is not None:
        rules.check(draft)


def arm_datasets(method: str, draft: ArmDraft) -> list[Path]:
    """The dataset folders the arm reads besides the study's own."""
    rules = _rules(method)
    return rules.datasets(draft) if rules.datasets is not None else []


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


def _check_options(context: ArmContext, method: str) -> None:
    """The arm's options against those ``method`` declared (an :class:`ArmContext` built without a study)."""
    allowed = _rules(method).options
    unknown = sorted(set(context.options) - allowed)
    if unknown:
        raise ConfigError(f"arm {context.arm or context.run_dir.parent.name}: options {unknown} unknown; "
                          f"this method takes {sorted(allowed) or 'none'}")


@register_arm_method("segment")
@register_arm_method("baseline")
def segment(context: ArmContext) -> None:
    """Train one network on the subset (resuming if interrupted), then segment the test images."""
    _check_options(context, "segment")
    _train_and_predict(context, context.config)


def _train_and_predict(context: ArmContext, config: TrainConfig) -> None:
    from clinseg.inference.predictor import Predictor, predict_folder
    from clinseg.training.run import train

    train(context.dataset_dir, context.run_dir, config, skip_validation=context.skip_validation)
    predictor = Predictor.from_run(context.run_dir, "best", context.config.device)
    timer = _CaseTimer(predictor)
    predict_folder(predictor, context.test_images, context.predictions_dir,
                   largest_component=context.largest_component, on_case=timer)
    write_measures(context, {"network": context.run_dir}, timer)


def _check_training_method(draft: ArmDraft) -> None:
    if "method" not in draft.options:
        raise ConfigError("the 'method' arm needs the option method: NAME")
    check_method_options(str(draft.options["method"]), mapping_option(draft.options, "method_options"))


def check_method_options(name: str, options: dict[str, Any]) -> None:
    """The training method ``name`` exists and takes ``options`` (``skip_validation`` and ``resume`` are the
    study's to set)."""
    from clinseg.training.methods import TRAIN_METHODS

    reserved = sorted(set(options) & {"skip_validation", "resume"})
    if reserved:
        raise ConfigError(f"method_options may not set {reserved}: the study sets them")
    check_keywords(TRAIN_METHODS.get(name), f"training method {name!r}", 4, options)


@register_arm_method("method", options={"method", "method_options"}, check=_check_training_method)
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

    _check_options(context, "method")
    if "method" not in context.options:
        raise ConfigError(f"arm {context.arm}: the 'method' arm needs the option method: NAME")
    run_method(str(context.options["method"]), context.dataset_dir, context.run_dir, context.config,
               skip_validation=context.skip_validation, **dict(context.options.get("method_options") or {}))
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


def _check_vote(draft: ArmDraft) -> None:
    from clinseg.inference.voting import check_thresholds

    if len(earlier_arms(draft.options, "of", draft.name, draft.earlier)) < 2:
        raise ConfigError("'of' must name at least two arms to vote")
    check_thresholds(draft.options.get("thresholds", "seed001"))


@register_arm_method("vote", options={"of", "thresholds"}, check=_check_vote)
def vote(context: ArmContext) -> None:
    """Hierarchical voting (seed 001 §2.2.4) of the test predictions of other arms on the same subset:
    options ``of`` (arm names, listed before this arm) and ``thresholds`` (``[T_tumour, T_core, T_enh]``
    or a preset name, default ``seed001``). Trains nothing; its inputs' runs must be finished."""
    from clinseg.data.dataset import load_dataset
    from clinseg.inference.voting import vote_folders

    _check_options(context, "vote")
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


def _check_anatomy(draft: ArmDraft) -> None:
    from clinseg.inference.anatomy import list_rules

    if not earlier_arms(draft.options, "of", draft.name, draft.earlier):
        raise ConfigError("'of' must name the arm(s) whose networks are post-processed")
    unknown = sorted({str(r) for r in draft.options.get("disable") or ()} - set(list_rules()))
    if unknown:
        raise ConfigError(f"'disable' names unknown anatomy rule(s) {unknown}; known: {', '.join(list_rules())}")


@register_arm_method("anatomy", options={"of", "disable"}, check=_check_anatomy)
def anatomy(context: ArmContext) -> None:
    """Seed 001's OAR pipeline (§4.2.2) on the networks of other arms on the same subset: their majority vote
    (option ``of``: e.g. the axial, coronal and sagittal oar2d arms; one arm = no vote), then the anatomy
    rules, some switched off with ``disable`` (rule names). Trains nothing."""
    from clinseg.inference.anatomy import AnatomySettings
    from clinseg.inference.organs import OrganPipeline, predict_organs_folder

    _check_options(context, "anatomy")
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


def _check_interactive(draft: ArmDraft) -> None:
    clicks = draft.options.get("clicks", 1)
    if not isinstance(clicks, int) or isinstance(clicks, bool) or clicks < 1:
        raise ConfigError(f"clicks must be an integer >= 1, got {clicks!r}")


@register_arm_method("interactive", options={"clicks"}, check=_check_interactive)
def interactive(context: ArmContext) -> None:
    """Seed 002's SegInter: a click-guided network (image + click maps), evaluated with ``clicks`` (default 1)
    simulated clicks per slice (slice-wise network) or per volume from the test reference."""
    from clinseg.interactive.network import InteractiveNetwork
    from clinseg.interactive.predict import predict_with_clicks
    from clinseg.training.run import train

    _check_options(context, "interactive")
    config = context.config
    if not config.interactive:
        config = dataclasses.replace(config, interactive={"eval_clicks": 1})
    train(context.dataset_dir, context.run_dir, config, skip_validation=context.skip_validation)
    network = InteractiveNetwork.from_run(context.run_dir, "best", config.device)
    timer = _CaseTimer(None)
    predict_with_clicks(network, context.test_images, context.dataset_dir, context.predictions_dir,
                        int(context.options.get("clicks", 1)), on_case=timer)
    write_measures(context, {"network": context.run_dir}, timer)


def _check_pretrained(draft: ArmDraft) -> None:
    from clinseg.pretraining.config import pretrain_config_from_dict

    pretrain_config_from_dict(mapping_option(draft.options, "pretrain"), "pretrain options")


@register_arm_method("pretrained", options={"pretrain"}, check=_check_pretrained)
def pretrained(context: ArmContext) -> None:
    """Seed 002's SegPretrained: restoration pretraining on every training image of the dataset (labels never
    read), once per arm and shared by its runs (``STUDY/pretrain/<arm>``), then the baseline training
    initialised from it. Option ``pretrain``: :class:`~clinseg.pretraining.config.PretrainConfig` fields."""
    _check_options(context, "pretrained")
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


from clinseg.studies import localise_arms as _localise_arms  # noqa: F401  (registers "two-stage", seed 003)
from clinseg.studies import multitask_arm as _multitask_arm  # noqa: F401  (registers "multitask", seed 004)
