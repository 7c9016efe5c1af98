"""Set up and run one training: the run folder, the split, the parts, resume, then the loop.

Run folder::

    RUN/config.yaml         resolved configuration
    RUN/fingerprint.json    dataset fingerprint (a resumed run refuses changed data)
    RUN/validation.json     the passing checks of ``clinseg validate``, keyed by the fingerprint (preflight)
    RUN/history.json        extensions (a new iteration target) and forced resumes (:mod:`resume`)
    RUN/split.json          training and validation case ids
    RUN/metrics.jsonl       one record per iteration (loss, validation Dice every K iterations)
    RUN/checkpoints/last.pt and best.pt
    RUN/thresholds.json     per-class thresholds chosen on the validation cases (``calibrate: true``)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from clinseg.data.dataset import CaseRecord, Dataset, DatasetSpec, load_dataset
from clinseg.errors import CheckpointError, ConfigError, DatasetError
from clinseg.io.atomic import ensure_folder, write_text
from clinseg.losses import create_loss
from clinseg.losses.composite import deep_supervision
from clinseg.models import create_model, size_divisors
from clinseg.models.registry import describe_divisors
from clinseg.planning.plan import save_plan
from clinseg.training.batches import BatchStream, StreamSource, default_workers
from clinseg.training.calibration import (
    choose_thresholds,
    thresholds_iteration,
    write_thresholds,
)
from clinseg.training.checkpoint import TrainState, load_checkpoint, restore
from clinseg.training.config import TrainConfig, load_config, save_config
from clinseg.training.device import amp_dtype, configure_threads, select_device
from clinseg.training.fingerprint import dataset_fingerprint
from clinseg.training.label_view import (
    output_structures,
)
from clinseg.training.loop import LoopParts, run_loop
from clinseg.training.metrics_log import MetricsLog
from clinseg.training.preflight import check_for_training
from clinseg.training.resume import ResumePolicy, plan_resume, record_resume
from clinseg.training.run_data import build_run_data, run_plan
from clinseg.training.sampling import PatchSource
from clinseg.training.schedule import TimeBudget, build_optimizer, parse_duration
from clinseg.training.validation import validation_scores

log = logging.getLogger(__name__)


def choose_validation(dataset: Dataset, count: int, seed: int) -> list[str]:
    """Pick ``count`` validation cases among the training cases, complete ones first (seeded)."""
    rng = np.random.default_rng(seed)
    complete = [r.case_id for r in dataset.train if r.complete]
    partial = [r.case_id for r in dataset.train if not r.complete]
    rng.shuffle(complete)
    rng.shuffle(partial)
    chosen = (complete + partial)[:count]
    if count and len(dataset.train) - len(chosen) < 1:
        raise ConfigError(f"{dataset.root}: {len(dataset.train)} training case(s) leave none for training "
                          f"after holding out {count} for validation (set val_cases lower)")
    return sorted(chosen)


def _validation_ids(dataset: Dataset, cfg: TrainConfig) -> list[str]:
    """``cfg.val_ids`` when given (each must be a training case), else ``cfg.val_cases`` chosen (seeded)."""
    if not cfg.val_ids:
        return choose_validation(dataset, cfg.val_cases, cfg.seed)
    train_ids = {r.case_id for r in dataset.train}
    unknown = sorted(set(cfg.val_ids) - train_ids)
    if unknown:
        raise ConfigError(f"{dataset.root}: validation case(s) {unknown} are not training cases")
    return sorted(cfg.val_ids)


def _kept_structures(dataset: Dataset, cfg: TrainConfig, val_ids: list[str]) -> dict[str, frozenset[str]]:
    """Training case -> structures whose delineation is used (the case's own, cut to ``cfg.subset``)."""
    pool = {r.case_id: r.annotated for r in dataset.train if r.case_id not in val_ids}
    if not cfg.subset:
        return pool
    unknown = sorted(set(cfg.subset) - set(pool))
    if unknown:
        raise ConfigError(f"{dataset.root}: subset case(s) {unknown} are not training cases outside the "
                          "validation set")
    structures = set(dataset.spec.structures)
    kept = {}
    for case, names in cfg.subset.items():
        if not set(names) <= structures:
            raise ConfigError(f"{dataset.root}: subset of {case} names unknown structure(s) "
                              f"{sorted(set(names) - structures)}")
        missing = sorted(set(names) - pool[case])
        if missing:
            raise ConfigError(f"{dataset.root}: subset keeps {missing} in {case}, which does not delineate them")
        kept[case] = frozenset(names)
    return kept


def activation_of(cfg: TrainConfig) -> str:
    return "sigmoid" if cfg.label_mode == "multilabel" else "softmax"


#: Initial foreground probability of every sigmoid output (RetinaNet's prior, Lin et al. 2017): starting
#: at p = 0.5 costs hundreds of iterations just to learn that almost every voxel is background.
SIGMOID_PRIOR = 0.01


def init_output_prior(model: torch.nn.Module, outputs: int, prior: float = SIGMOID_PRIOR) -> bool:
    """Set the bias of the network's output heads (1x1 convolutions with ``outputs`` channels: the main head
    and any deep-supervision heads) to ``logit(prior)``; without such a head, the last convolution with
    ``outputs`` channels."""
    convs = [m for m in model.modules()
             if isinstance(m, (torch.nn.Conv3d, torch.nn.Conv2d)) and m.out_channels == outputs and m.bias is not None]
    heads = [m for m in convs if all(k == 1 for k in m.kernel_size)] or convs[-1:]
    if not heads:
        return False
    with torch.no_grad():
        for head in heads:
            head.bias.fill_(float(np.log(prior / (1 - prior))))
    return True


def build_model(cfg: TrainConfig, num_channels: int, num_structures: int) -> torch.nn.Module:
    """Create the configured network (seeded) and check the patch fits its size divisor."""
    torch.manual_seed(cfg.seed)
    inputs, outputs = cfg.network_channels(num_channels, num_structures)
    model = create_model(cfg.model, inputs, outputs, **cfg.model_kwargs)
    if cfg.label_mode == "multilabel":
        init_output_prior(model, outputs)
    divisors = size_divisors(model)
    if any(p % d for p, d in zip(cfg.patch_size, divisors)):
        raise ConfigError(f"patch_size {cfg.patch_size} must be a multiple of {describe_divisors(divisors)} "
                          f"for {cfg.model}")
    return model


def _initialise_from(model: torch.nn.Module, cfg: TrainConfig, run_dir: Path) -> None:
    """Copy the encoder-decoder weights of the pretraining run ``cfg.init`` (output head replaced) and
    record what was transferred in ``RUN/init.json``."""
    from clinseg.pretraining.transfer import transfer_weights

    report = transfer_weights(model, Path(cfg.init), model_name=cfg.model, model_kwargs=cfg.model_kwargs,
                              normalization=cfg.normalization)
    write_text(run_dir / "init.json", json.dumps(report.to_dict(), indent=2))
    log.info("initialised %d tensors from %s", len(report.transferred), cfg.init)


def _check_same_data(run_dir: Path, fingerprint: dict) -> None:
    """A run folder that already holds a run must have been trained on this dataset."""
    path = run_dir / "fingerprint.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if old and old != fingerprint:
        raise DatasetError(f"{run_dir}: this run was trained on other data ({old.get('name')}, "
                           f"{old.get('num_files')} files); use a new --out folder")


def _write_run_info(run_dir: Path, dataset: Dataset, outputs: tuple[str, ...]) -> None:
    """``RUN/run.json``: the dataset, its structures and relations, and the network's output classes (the
    structures, or the organs when bilateral pairs merge)."""
    values = dataset.spec.label_values
    info = {"dataset": str(dataset.root.resolve()), "outputs": list(outputs),
            "structures": list(dataset.spec.structures), "relations": dataset.spec.relations.to_json(),
            "label_values": {name: int(values[name]) for name in outputs if name in values}}
    write_text(run_dir / "run.json", json.dumps(info, indent=2))


# --- Channel selection (TrainConfig.channels) -------------------------------------------------------------
# Seed 001 §2.3.3 trains each modality-specific subnetwork on the cases that have its MR sequence and the
# whole network on the cases that have all of them.


def missing_channels(record: CaseRecord, spec: DatasetSpec) -> frozenset[int]:
    """Indices of the channels a case lacks: declared in ``dataset.json`` (``cases.<id>.missing_channels``,
    whose files hold zeros) or without an image file."""
    declared = set(spec.missing_channels.get(record.case_id, ()))
    return frozenset(i for i, (name, path) in enumerate(zip(spec.channels, record.images))
                     if name in declared or not path.is_file())


def _channel_validation(cfg: TrainConfig, kept_ids: set[str], subset: dict[str, list[str]]) -> list[str]:
    """The validation cases of a channel selection: the configured ones that have the channels; when none
    does, as many others outside the training subset (seeded), else none (the final weights are kept)."""
    val_ids = [c for c in cfg.val_ids if c in kept_ids]
    if val_ids or not cfg.val_ids or not subset:
        return val_ids
    pool = sorted(kept_ids - set(subset))
    rng = np.random.default_rng(cfg.seed)
    return sorted(rng.permutation(pool)[: len(cfg.val_ids)].tolist()) if pool else []


def select_channels(dataset: Dataset, channels: list[int]) -> Dataset:
    """``dataset`` seen through a channel selection: every record's images cut to ``channels`` (in that
    order), training cases lacking any of them left out. The spec is unchanged."""
    def cut(record: CaseRecord) -> CaseRecord:
        return dataclasses.replace(record, images=tuple(record.images[c] for c in channels))

    train = tuple(cut(r) for r in dataset.train if not missing_channels(r, dataset.spec) & set(channels))
    return dataclasses.replace(dataset, train=train, test=tuple(cut(r) for r in dataset.test))


# ----------------------------------------------------------------------------------------------------------


def _saved_iterations(run_dir: Path) -> int | None:
    """The iteration target of the run saved in ``run_dir`` (``None`` when it holds none)."""
    path = run_dir / "config.yaml"
    return load_config(path).iterations if path.is_file() else None


def train(
    dataset_dir: str | Path,
    run_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    iterations: int | None = None,
    on_iteration: Callable[[int], None] | None = None,
    skip_validation: bool = False,
    resume: ResumePolicy | None = None,
) -> TrainState:
    """Train (or resume) a run of ``config`` on the dataset at ``dataset_dir``; returns the final state.

    The dataset first passes the checks of ``clinseg validate`` (:mod:`clinseg.training.preflight`): errors
    refuse it, warnings are logged; ``skip_validation`` skips them (e.g. a study that validated its dataset
    once). A planned run (the default) then plans the dataset (``RUN/plan.json``; :mod:`clinseg.planning`)
    and preprocesses its cases into the shared cache (:mod:`clinseg.data.cache`). When ``run_dir`` already
    holds a run, its saved configuration and plan are used and training continues from
    ``checkpoints/last.pt`` exactly where it stopped; options of ``config`` that differ from the saved ones
    are refused unless ``resume.force`` (:mod:`clinseg.training.resume`: ``resume.explicit`` names the
    fields compared, default all of ``config``'s); ``iterations`` may extend the run, never shorten it below
    what was trained. With ``schedule.time`` the number of iterations is fixed from the measured speed
    (:class:`~clinseg.training.schedule.TimeBudget`).
    """
    dataset = load_dataset(dataset_dir)
    spec = dataset.spec
    cfg = config or TrainConfig()
    if iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=iterations)
    device = select_device(cfg.device)
    run_dir = ensure_folder(run_dir, "run folder")
    fingerprint = dataset_fingerprint(dataset)
    _check_same_data(run_dir, fingerprint)
    if not skip_validation:
        check_for_training(dataset, run_dir, fingerprint)
    plan = run_plan(dataset, cfg, device, run_dir)
    cfg = cfg.resolved(spec, device.type, plan)
    saved_iterations = _saved_iterations(run_dir)
    if cfg.schedule.time and iterations is None and saved_iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=saved_iterations)  # fixed by the budget when it started
    resumed = plan_resume(run_dir, cfg if config is not None else None, resume, iterations)
    if resumed is not None:
        log.info("resuming run in %s", run_dir)
        cfg = resumed.config
        record_resume(run_dir, resumed)
    save_config(cfg, run_dir / "config.yaml")
    if plan is not None:
        save_plan(plan, run_dir / "plan.json")
    write_text(run_dir / "fingerprint.json", json.dumps(fingerprint, indent=2))
    outputs = output_structures(cfg, spec)
    _write_run_info(run_dir, dataset, outputs)
    configure_threads(cfg.threads)
    if cfg.channels:  # only these channels, only the cases that have them (fingerprint: the whole dataset)
        dataset = select_channels(dataset, cfg.channels) if plan is None else _cases_with_channels(dataset, cfg.channels)
        kept_ids = {r.case_id for r in dataset.train}
        subset = {c: v for c, v in cfg.subset.items() if c in kept_ids}
        if cfg.subset and not subset:
            raise DatasetError(f"{dataset.root}: no case of the configured subset has channel(s) "
                               f"{[spec.channels[c] for c in cfg.channels]}")
        val_ids = _channel_validation(cfg, kept_ids, subset)
        cfg = dataclasses.replace(cfg, val_ids=val_ids, subset=subset,
                                  val_cases=0 if cfg.val_ids and not val_ids else cfg.val_cases)

    val_ids = _validation_ids(dataset, cfg)
    if cfg.calibrate and not val_ids:
        raise ConfigError("calibrate chooses thresholds on the validation cases: set val_cases >= 1")
    kept = _kept_structures(dataset, cfg, val_ids)
    train_records = [r for r in dataset.train if kept.get(r.case_id)]
    if not train_records:
        raise DatasetError(f"{dataset.root}: no training case has any delineation"
                           + (" in the configured subset" if cfg.subset else ""))
    write_text(run_dir / "split.json", json.dumps(
        {"train": [r.case_id for r in train_records], "validation": val_ids}, indent=2))
    sampler, val_cases = build_run_data(dataset, cfg, plan, train_records, kept, val_ids,
                                        np.random.default_rng(cfg.seed))

    model = build_model(cfg, spec.num_channels, len(outputs))
    last = run_dir / "checkpoints" / "last.pt"
    if cfg.init and not last.is_file():  # a resumed run restores its own weights below
        _initialise_from(model, cfg, run_dir)
    model = model.to(device)
    optimizer = build_optimizer(model, cfg.schedule, cfg.lr)
    state = TrainState()
    metrics = MetricsLog(run_dir / "metrics.jsonl")
    if last.is_file():
        state = restore(load_checkpoint(last, device), model, optimizer, last)
        if state.finished and state.iteration < cfg.iterations:
            state.finished = False  # extended run
        elif state.iteration >= cfg.iterations:
            state.finished = True  # an unfinished run whose end was moved to the iterations it has trained
        log.info("resumed at iteration %d", state.iteration)
    elif (run_dir / "checkpoints" / "best.pt").is_file():
        raise CheckpointError(f"{run_dir}: best.pt exists without last.pt; use a new --out folder")
    metrics.truncate_after(state.iteration)

    amp = amp_dtype(device, cfg.amp)
    workers = cfg.workers if cfg.workers >= 0 else (default_workers() if cfg.iterations >= 100 else 0)
    with BatchStream(sampler, cfg.batch_size, cfg.seed, state.iteration, workers=workers) as stream:
        source: PatchSource = StreamSource(stream, cfg.seed)
        validator = None
        if cfg.interactive:
            from clinseg.interactive.training import interactive_parts

            source, validator = interactive_parts(model, cfg, source, val_cases, spec, device, amp)
        elif val_cases:
            def validator(m: torch.nn.Module) -> dict[str, float]:
                return validation_scores(m, val_cases, outputs, patch_size=cfg.patch_size,
                                         activation=activation_of(cfg), overlap=cfg.overlap,
                                         threshold=cfg.threshold, device=device)

        loss = deep_supervision(create_loss(cfg.loss, **cfg.loss_kwargs))
        parts = LoopParts(model, optimizer, loss, source, validator, device, amp)
        if cfg.schedule.time and not (run_dir / "schedule.json").is_file():
            parts.budget = TimeBudget(parse_duration(cfg.schedule.time, "schedule.time"), cfg.val_every)

            def on_total(total: int) -> None:
                save_config(dataclasses.replace(cfg, iterations=total), run_dir / "config.yaml")
                parts.budget.record(run_dir, total)  # type: ignore[union-attr]

            parts.on_total = on_total
        state = run_loop(parts, cfg, state, run_dir, metrics, on_iteration)
        if parts.budget is not None and parts.budget.step_seconds is not None and state.finished:
            parts.budget.record(run_dir, state.iteration, finished=True)
    if cfg.calibrate and state.finished and thresholds_iteration(run_dir) != state.best_iteration:
        best = run_dir / "checkpoints" / "best.pt"
        restore(load_checkpoint(best, device), model, None, best)  # training is over: the best weights
        chosen = choose_thresholds(model, val_cases, outputs, patch_size=cfg.patch_size, overlap=cfg.overlap,
                                   default=cfg.threshold, device=device)
        write_thresholds(run_dir, chosen, state.best_iteration)
    return state


def _cases_with_channels(dataset: Dataset, channels: list[int]) -> Dataset:
    """``dataset`` without the training cases lacking one of ``channels`` (records keep every channel: the
    cache holds them all and the sampler selects)."""
    train = tuple(r for r in dataset.train if not missing_channels(r, dataset.spec) & set(channels))
    return dataclasses.replace(dataset, train=train)
