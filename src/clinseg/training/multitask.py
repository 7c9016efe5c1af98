"""One network for several tasks (seed 004): the union of several datasets as one training dataset.

``clinseg train DATASET_A DATASET_B ... --out RUN`` trains one network on every dataset at once. The
datasets (tasks) may differ in modality, spacing and labels; the network's output space is the union of
their classes with one shared background (seed 004 §3.2: "background classes of the target tasks were
merged into one class"). A class a dataset cannot contain (another task's class) is, by ``foreign``:

* ``absent`` (default): known absent, delineated as empty in every case of the dataset (``absent`` in the
  union's ``dataset.json``), so it is learned as negative there. This is seed 004's training: categorical
  cross-entropy over the union with one merged background trains every voxel of a task's image as one of
  its classes or background, i.e. against every other task's classes, which keeps the cross-task
  confusion low (< 0.0005 % in the seed).
* ``unknown``: *not delineated*, exactly like a missing delineation: no loss comes from it (``c_n = 0`` for
  sigmoids, the marginal softmax for exclusive classes). Nothing then teaches a sigmoid output to stay off
  another task's images: on the phantom study it labelled ~10 % of each head MRI with abdominal and bone
  classes (docs/studies.md, Finding 8).

The union is written once as a dataset folder, ``RUN/tasks/``, that links to the original files:

* ``imagesTr/<task>__<case>_0000.nii.gz`` -> the task's image (symbolic link, or a copy where links fail);
* ``structuresTr/<task>__<case>/<class>.nii.gz``: each delineated class as a mask (linked when the task
  stores masks, written from the label map otherwise, since label values collide between tasks);
* ``dataset.json`` with the union classes and per case its ``task``; ``RUN/tasks.json`` lists the tasks,
  their dataset folders and classes.

A class name shared by two datasets is one class (two head datasets that both delineate the brainstem teach
one brainstem output). All tasks must have the same number of image channels (seed 004: one each).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clinseg.data.dataset import Dataset, load_dataset
from clinseg.errors import ConfigError, DatasetError
from clinseg.io.atomic import write_text
from clinseg.io.image import read_image, write_image
from clinseg.progress import track
from clinseg.training.config import TrainConfig, unplanned

__all__ = ["TASK_SEPARATOR", "Task", "multitask_config", "read_tasks", "task_of", "union_classes", "write_union"]

#: How a task's cases treat the other tasks' classes (see the module docstring).
FOREIGN_CLASSES = ("absent", "unknown")
#: Joins a task name and a case id in the union's case ids: ``HeadOAR__head_000``.
TASK_SEPARATOR = "__"
TASKS_FILE = "tasks.json"


@dataclass(frozen=True)
class Task:
    """One dataset of a multi-task run: its name, folder and classes (in its own order)."""

    name: str
    dataset: Path
    classes: tuple[str, ...]


def task_of(case_id: str) -> str:
    """The task a union case id belongs to (``HeadOAR__head_000`` -> ``HeadOAR``)."""
    if TASK_SEPARATOR not in case_id:
        raise DatasetError(f"case {case_id!r} is not a multi-task case id (<task>{TASK_SEPARATOR}<case>)")
    return case_id.split(TASK_SEPARATOR, 1)[0]


def union_classes(class_lists: Iterable[Sequence[str]]) -> tuple[str, ...]:
    """The union of the tasks' classes (one list per task), in task order then class order, each once:
    the multi-task network's outputs (no background)."""
    return tuple(dict.fromkeys(name for classes in class_lists for name in classes))


def _tasks(datasets: Sequence[Dataset]) -> list[Task]:
    names: list[str] = []
    for dataset in datasets:
        name = dataset.spec.name.replace(TASK_SEPARATOR, "_") or dataset.root.name
        while name in names:  # the same dataset name twice (two copies): number them
            name = f"{name}_{len(names)}"
        names.append(name)
    return [Task(n, d.root.resolve(), d.spec.structures) for n, d in zip(names, datasets)]


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(source.resolve(), target)
    except OSError:  # file systems without symbolic links
        shutil.copy2(source, target)


def _check_compatible(datasets: Sequence[Dataset]) -> None:
    channels = {len(d.spec.channels) for d in datasets}
    if len(channels) > 1:
        counts = ", ".join(f"{d.root} ({len(d.spec.channels)})" for d in datasets)
        raise DatasetError(f"multi-task training needs the same number of image channels in every dataset: {counts}")
    modes = {d.spec.label_mode for d in datasets}
    if len(modes) > 1:
        raise DatasetError("multi-task training needs datasets of one label mode (multilabel or multiclass): "
                           + ", ".join(f"{d.root} ({d.spec.label_mode})" for d in datasets))
    if len({d.root.resolve() for d in datasets}) < len(datasets):
        raise ConfigError("a dataset is given twice")


def write_union(dataset_dirs: Sequence[str | Path], folder: str | Path, foreign: str = "absent") -> list[Task]:
    """Write (or reuse) the union dataset of ``dataset_dirs`` into ``folder``; returns the tasks.

    ``foreign`` says how each task's cases treat the other tasks' classes: ``absent`` (learned as negative,
    seed 004) or ``unknown`` (no loss). An existing union written from the same datasets the same way is kept
    (a resumed run trains on the same files); any other is an error.
    """
    if len(dataset_dirs) < 2:
        raise ConfigError("multi-task training needs at least two datasets")
    if foreign not in FOREIGN_CLASSES:
        raise ConfigError(f"foreign classes must be one of {', '.join(FOREIGN_CLASSES)}, got {foreign!r}")
    datasets = [load_dataset(d) for d in dataset_dirs]
    _check_compatible(datasets)
    tasks = _tasks(datasets)
    folder = Path(folder)
    record = {"tasks": [{"name": t.name, "dataset": str(t.dataset), "classes": list(t.classes)} for t in tasks],
              "foreign": foreign}
    if (folder / "dataset.json").is_file():
        saved_record = _read_record(folder.parent)
        if _tasks_of(saved_record) != tasks:
            raise DatasetError(f"{folder}: a multi-task union of other datasets; use a new --out folder")
        saved = saved_record.get("foreign", "unknown")  # unions from before the option left them unknown
        if saved != foreign:
            raise ConfigError(f"{folder}: a multi-task union with foreign classes {saved!r}, not {foreign!r}; "
                              "use a new --out folder")
        return tasks
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    classes = union_classes(t.classes for t in tasks)
    cases: dict[str, dict] = {}
    for task, dataset in zip(tasks, datasets):
        for record_ in track(list(dataset.train), f"linking {task.name}"):
            case = f"{task.name}{TASK_SEPARATOR}{record_.case_id}"
            for c, image in enumerate(record_.images):
                _link(image, tmp / "imagesTr" / f"{case}_{c:04d}{dataset.spec.file_ending}")
            labels = None
            for name in sorted(record_.annotated):
                target = tmp / "structuresTr" / case / f"{name}{dataset.spec.file_ending}"
                if name in record_.structure_files:
                    _link(record_.structure_files[name], target)
                else:
                    labels = labels or read_image(record_.label_map)  # type: ignore[arg-type]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_image((labels.array == dataset.spec.label_values[name]).astype(np.uint8),
                                labels.geometry, target)
            cases[case] = {"task": task.name, "weak_labels": dict(record_.weak_labels)}
            if foreign == "absent":
                cases[case]["absent"] = [c for c in classes if c not in task.classes]
    spec = {
        "name": "+".join(t.name for t in tasks),
        "description": "clinseg multi-task union of " + ", ".join(str(t.dataset) for t in tasks),
        "channel_names": {str(i): "/".join(dict.fromkeys(d.spec.channels[i] for d in datasets))
                          for i in range(len(datasets[0].spec.channels))},
        "labels": {name: i + 1 for i, name in enumerate(classes)},
        "label_mode": datasets[0].spec.label_mode,
        "file_ending": datasets[0].spec.file_ending,
        "numTraining": len(cases),
        "cases": cases,
    }
    write_text(tmp / "dataset.json", json.dumps(spec, indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    write_text(folder.parent / TASKS_FILE, json.dumps(record, indent=2))
    return tasks


def _read_record(run_dir: str | Path) -> dict:
    """``RUN/tasks.json`` as written by :func:`write_union`; empty for a single-dataset run."""
    path = Path(run_dir) / TASKS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _tasks_of(record: dict) -> list[Task]:
    return [Task(t["name"], Path(t["dataset"]), tuple(t["classes"])) for t in record.get("tasks", [])]


def read_tasks(run_dir: str | Path) -> list[Task]:
    """The tasks of a multi-task run (``RUN/tasks.json``); empty for a single-dataset run."""
    return _tasks_of(_read_record(run_dir))


def multitask_config(cfg: TrainConfig, union_dir: str | Path, tasks: Sequence[Task]) -> TrainConfig:
    """``cfg`` for the union: ``val_cases`` validation cases *per task* (seeded; so every task is validated;
    a task with cases in ``cfg.val_ids`` keeps those) and, unless another sampler is configured, batches
    balanced over tasks (``task-balanced``)."""
    union = load_dataset(union_dir)
    rng = np.random.default_rng(cfg.seed)
    val_ids: list[str] = list(cfg.val_ids)
    if cfg.val_cases:
        for task in tasks:
            if any(task_of(v) == task.name for v in val_ids):
                continue
            ids = sorted(r.case_id for r in union.train if task_of(r.case_id) == task.name)
            if len(ids) <= cfg.val_cases:
                raise ConfigError(f"task {task.name}: {len(ids)} training case(s) leave none for training after "
                                  f"holding out {cfg.val_cases} per task for validation (set val_cases lower)")
            val_ids += sorted(rng.permutation(ids)[: cfg.val_cases].tolist())
    sampler = "task-balanced" if cfg.sampler == "class-aware" else cfg.sampler
    return dataclasses.replace(unplanned(cfg), val_ids=val_ids, sampler=sampler,
                               sampler_kwargs={} if sampler != cfg.sampler else cfg.sampler_kwargs)
