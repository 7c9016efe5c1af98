"""Study arm ``multitask`` (seed 004): the study's dataset trained jointly with other datasets.

A multi-task study compares, per task, a network trained on that task alone (a ``baseline`` arm) with one
network trained on several tasks at once; run one study per task dataset, each with a ``multitask`` arm that
names the other datasets. The joint network sees the study's subset of its dataset (case ids mapped into the
union) and every training case of the others; it predicts the study's test images (writing all union
classes: only the dataset's own are scored) and records the cross-task confusion of those predictions in
``measures.json``.

Options: ``with`` (other dataset folders, absolute or relative to the folder holding the study's dataset),
``method`` (``single`` or ``triplanar``) and ``method_options``, ``per_task_budget`` (default true: the
configured iterations are multiplied by the number of tasks, seed 004's "25000 mini-batches per task", so
each task gets the budget of a single-task network), ``foreign_classes`` (``absent``, the default, or
``unknown``: how a task's images treat the other tasks' classes; see :mod:`clinseg.training.multitask`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from clinseg.errors import ConfigError
from clinseg.studies._options import mapping_option
from clinseg.studies.arms import (
    ArmContext,
    ArmDraft,
    _CaseTimer,
    _check_options,
    check_method_options,
    register_arm_method,
    write_measures,
)

_OPTIONS = {"with", "method", "method_options", "per_task_budget", "foreign_classes"}


def _other_datasets(options: dict[str, Any], dataset_dir: Path) -> list[Path]:
    """The ``with`` folders, relative ones to the folder that holds the study's dataset."""
    names = options.get("with") or []
    if not isinstance(names, list) or not names:
        raise ConfigError("'with' must list the other datasets of the joint network")
    base = dataset_dir.parent
    return [Path(n) if Path(n).is_absolute() else (base / n).resolve() for n in map(str, names)]


def _datasets(draft: ArmDraft) -> list[Path]:
    return _other_datasets(draft.options, draft.dataset_dir)


def _check(draft: ArmDraft) -> None:
    from clinseg.training.multitask import FOREIGN_CLASSES

    for folder in _datasets(draft):
        if not (folder / "dataset.json").is_file():
            raise ConfigError(f"'with' dataset {folder} has no dataset.json")
    check_method_options(str(draft.options.get("method", "single")), mapping_option(draft.options, "method_options"))
    foreign = draft.options.get("foreign_classes", "absent")
    if foreign not in FOREIGN_CLASSES:
        raise ConfigError(f"foreign_classes must be one of {', '.join(FOREIGN_CLASSES)}, got {foreign!r}")
    if not isinstance(draft.options.get("per_task_budget", True), bool):
        raise ConfigError(f"per_task_budget must be true or false, got {draft.options['per_task_budget']!r}")


@register_arm_method("multitask", options=_OPTIONS, check=_check, datasets=_datasets)
def multitask(context: ArmContext) -> None:
    """Train one network on the study's dataset and the ``with`` datasets, then segment the test images."""
    from clinseg.evaluation.multitask import cross_task_confusion
    from clinseg.inference.cascade import load_predictor
    from clinseg.inference.predictor import predict_folder
    from clinseg.io.image import read_image, strip_ending
    from clinseg.training.methods import run_method
    from clinseg.training.multitask import TASK_SEPARATOR, multitask_config, write_union

    _check_options(context, "multitask")
    try:
        others = _other_datasets(context.options, context.dataset_dir)
    except ConfigError as exc:
        raise ConfigError(f"arm {context.arm}: {exc}") from None
    union_dir = context.run_dir / "tasks"
    tasks = write_union([context.dataset_dir, *others], union_dir,
                        str(context.options.get("foreign_classes", "absent")))
    own = tasks[0].name
    cfg = context.config
    cfg = dataclasses.replace(
        cfg, subset={f"{own}{TASK_SEPARATOR}{c}": v for c, v in cfg.subset.items()},
        val_ids=[f"{own}{TASK_SEPARATOR}{c}" for c in cfg.val_ids],
        iterations=cfg.iterations * (len(tasks) if context.options.get("per_task_budget", True) else 1))
    cfg = multitask_config(cfg, union_dir, tasks)
    if cfg.subset:  # the other tasks train on all their cases outside validation
        from clinseg.data.dataset import load_dataset

        union = load_dataset(union_dir)
        cfg.subset.update({r.case_id: sorted(r.annotated) for r in union.train
                           if not r.case_id.startswith(own + TASK_SEPARATOR) and r.annotated
                           and r.case_id not in cfg.val_ids})
    method = str(context.options.get("method", "single"))
    run_method(method, union_dir, context.run_dir, cfg, skip_validation=context.skip_validation,
               **dict(context.options.get("method_options") or {}))
    predictor = load_predictor(context.run_dir, "best", context.config.device)
    timer = _CaseTimer(predictor)
    cases = predict_folder(predictor, context.test_images, context.predictions_dir,
                           largest_component=context.largest_component, on_case=timer)
    confusion = []
    for case in cases:
        folder = context.predictions_dir / case
        masks = {strip_ending(f.name): read_image(f).array for f in sorted(folder.iterdir())}
        confusion.append(cross_task_confusion(masks, tasks[0].classes))
    write_measures(context, {"network": context.run_dir}, timer, tasks=[t.name for t in tasks],
                   cross_task_confusion_percent=confusion)
