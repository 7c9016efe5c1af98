"""Cross-task confusion of a network trained on several tasks at once (seed 004, Sec. 4).

One network segments the classes of several tasks (datasets); its output space is the union of every task's
classes with one shared background. The seed measures how often such a network labels a scan with a class of
*another* task:

    "For the network trained with three tasks, the median percentage of voxels per scan labelled with a
    class alien to the target (e.g. cortical grey matter identified in breast MR) was < 0.0005% for all
    tasks."

So for one scan of task ``T`` the confusion is ``100 * |union of the masks of the classes not in T| / |scan|``:

- the denominator is every voxel of the scan's grid (the seed says "voxels per scan", not a body mask);
- a voxel in several foreign classes counts once (the seed's softmax gives each voxel one label; clinseg's
  per-structure masks may overlap, so overlaps are merged, never double-counted);
- a voxel that carries a foreign label counts even if it also carries one of ``T``'s own labels: it is
  "labelled with a class alien to the target";
- the shared background is not a class here (there is no background mask), so it is never foreign.

The seed's figure is the per-task *median* over scans (:func:`summarise_confusion`).

Masks are ``(Z, Y, X)`` arrays, boolean or numeric (read as ``!= 0``); they are never modified.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.metrics import _as_bool
from clinseg.evaluation.plots import figure_png
from clinseg.io.atomic import write_bytes
from clinseg.io.image import read_geometry, read_image
from clinseg.training.multitask import union_classes

#: The seed's result: the per-task median confusion was below this percentage (seed 004, Sec. 4).
PAPER_MEDIAN_BOUND_PERCENT = 0.0005

#: Columns of :func:`confusion_table`, in this order.
CONFUSION_COLUMNS: tuple[str, ...] = (
    "case", "task", "confusion_percent", "confused_voxels", "n_voxels", "top_foreign_class", "top_foreign_percent",
)

#: Columns of :func:`summarise_confusion`, in this order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "task", "n_scans", "median_percent", "mean_percent", "max_percent", "n_scans_confused",
)


def cross_task_confusion(masks: Mapping[str, np.ndarray], own_classes: Collection[str]) -> float:
    """Percentage of the scan's voxels labelled with a class of another task.

    Parameters
    ----------
    masks : mapping of str to np.ndarray
        Predicted masks of all union classes for one scan, ``(Z, Y, X)``, one shape.
    own_classes : collection of str
        The classes of the scan's task. Masks of these classes are ignored; names without a mask are
        allowed (a task class that the network does not output cannot be confused).

    Returns
    -------
    float
        ``100 * |union of foreign masks| / (Z * Y * X)``, in [0, 100]; 0.0 without foreign classes.

    Raises
    ------
    ValueError
        If ``masks`` is empty or the masks are not 3-D or differ in shape.
    TypeError
        If ``own_classes`` is a string (a likely slip for a one-element list).

    Examples
    --------
    >>> brain = np.zeros((10, 10, 10), bool); brain[0, 0, :5] = True   # 5 voxels of a foreign class
    >>> breast = np.zeros((10, 10, 10), bool); breast[0, 0, 8] = True  # 1 more, in another one
    >>> cross_task_confusion({"brain": brain, "breast": breast, "artery": brain}, own_classes={"artery"})
    0.6
    """
    shape, foreign = _foreign_masks(masks, own_classes)
    n_voxels, confused, _ = _confusion_counts(foreign, shape)
    return 100.0 * confused / n_voxels if n_voxels else 0.0


def foreign_class_percent(masks: Mapping[str, np.ndarray], own_classes: Collection[str]) -> dict[str, float]:
    """Percentage of the scan's voxels in each foreign class (the breakdown of :func:`cross_task_confusion`).

    Same parameters as :func:`cross_task_confusion`. Returns one entry per foreign class, in the order of
    ``masks``; the values may sum to more than the confusion where foreign masks overlap.
    """
    shape, foreign = _foreign_masks(masks, own_classes)
    n_voxels, _, per_class = _confusion_counts(foreign, shape)
    return {name: 100.0 * count / n_voxels if n_voxels else 0.0 for name, count in per_class.items()}


def _foreign_masks(
    masks: Mapping[str, np.ndarray], own_classes: Collection[str]
) -> tuple[tuple[int, ...], list[tuple[str, np.ndarray]]]:
    """Check the masks (non-empty, 3-D, one shape); return the shape and the foreign masks as booleans."""
    if isinstance(own_classes, str):
        raise TypeError(f"own_classes must be a collection of class names, not the string {own_classes!r}")
    if not masks:
        raise ValueError("masks is empty: there is no voxel grid to count")
    shapes = {name: np.shape(mask) for name, mask in masks.items()}
    first = next(iter(shapes.values()))
    if len(first) != 3 or any(shape != first for shape in shapes.values()):
        raise ValueError(f"masks must be 3-D (Z, Y, X) arrays of one shape, got {shapes}")
    own = set(own_classes)
    return first, [(name, _as_bool(mask, name)) for name, mask in masks.items() if name not in own]


def _confusion_counts(
    foreign: Iterable[tuple[str, np.ndarray]], shape: tuple[int, ...]
) -> tuple[int, int, dict[str, int]]:
    """``(voxels in the grid, voxels in any foreign mask, voxels per foreign class)``.

    ``foreign`` yields ``(class, boolean mask of shape)``; it is consumed one mask at a time, so a lazy iterable
    that reads the masks from files holds at most two volumes in memory.
    """
    union = np.zeros(shape, bool)
    per_class: dict[str, int] = {}
    for name, mask in foreign:
        np.logical_or(union, mask, out=union)
        per_class[name] = int(np.count_nonzero(mask))
    return int(union.size), int(np.count_nonzero(union)), per_class


def confusion_table(
    pred_dir: str | Path, tasks: Mapping[str, Sequence[str]], case_task: Mapping[str, str]
) -> pd.DataFrame:
    """Cross-task confusion of every scan in ``case_task``, from prediction files.

    Parameters
    ----------
    pred_dir : path
        Predictions as clinseg writes them: ``pred_dir/<case>/<structure>.nii.gz``, one binary mask per class
        of the union of all tasks (:func:`clinseg.training.multitask.union_classes`).
    tasks : mapping of str to sequence of str
        Task name -> its classes (without the shared background), e.g.
        ``{"brain": ["white_matter", ...], "breast": ["pectoral_muscle"], "cardiac": ["coronary_artery"]}``.
    case_task : mapping of str to str
        Case id -> the task the scan belongs to. Only these cases are read; rows follow this order.

    Returns
    -------
    pandas.DataFrame
        One row per case, columns :data:`CONFUSION_COLUMNS`: ``confusion_percent`` as in
        :func:`cross_task_confusion`, ``confused_voxels`` and ``n_voxels`` (its numerator and denominator),
        ``top_foreign_class`` (the foreign class with most voxels, the first in union order on a tie; missing,
        ``pd.isna``, when no voxel is confused) and ``top_foreign_percent`` (its share of the scan, 0.0 then).

    Raises
    ------
    ConfigError
        If a case names a task not in ``tasks``.
    DatasetError
        If a case folder or class file is missing, or the masks of a case differ in shape; names the file.
    """
    pred_dir = Path(pred_dir)
    classes = union_classes(tasks.values())
    if not classes:
        raise ConfigError("tasks has no classes: nothing can be confused")
    rows = []
    for case, task in case_task.items():
        if task not in tasks:
            raise ConfigError(f"case {case!r} belongs to task {task!r}, which is not one of {sorted(tasks)}")
        case_dir = pred_dir / case
        if not case_dir.is_dir():
            raise DatasetError(f"{case_dir}: no prediction folder for case {case!r}")
        paths = {name: case_dir / f"{name}.nii.gz" for name in classes}
        for name, path in paths.items():
            if not path.is_file():
                raise DatasetError(f"{path}: prediction missing for case {case!r} structure {name!r}")
        shape = read_geometry(paths[classes[0]]).shape
        own = set(tasks[task])
        foreign = [name for name in classes if name not in own]
        # own-class files are only checked (header) for the grid; only foreign masks are read, one at a time
        for name in classes:
            if name in own and read_geometry(paths[name]).shape != shape:
                raise DatasetError(f"{paths[name]}: prediction shape differs from {paths[classes[0]].name} {shape}")
        n_voxels, confused, per_class = _confusion_counts(_read_masks(paths, foreign, shape), shape)
        top = max(per_class, key=per_class.__getitem__) if confused else None  # max keeps the first on a tie
        rows.append({
            "case": case,
            "task": task,
            "confusion_percent": 100.0 * confused / n_voxels,
            "confused_voxels": confused,
            "n_voxels": n_voxels,
            "top_foreign_class": top,
            "top_foreign_percent": 100.0 * per_class[top] / n_voxels if top is not None else 0.0,
        })
    return pd.DataFrame(rows, columns=list(CONFUSION_COLUMNS))


def _read_masks(paths: Mapping[str, Path], names: Sequence[str], shape: tuple[int, ...]) -> Iterator[tuple[str, np.ndarray]]:
    for name in names:
        array = read_image(paths[name]).array
        if array.shape != tuple(shape):
            raise DatasetError(f"{paths[name]}: prediction shape {array.shape} differs from the case's {tuple(shape)}")
        yield name, array > 0


def summarise_confusion(table: pd.DataFrame) -> pd.DataFrame:
    """Per-task statistics of a :func:`confusion_table`: the seed reports the median (Sec. 4).

    Returns one row per task in order of first appearance, columns :data:`SUMMARY_COLUMNS`: number of scans,
    median / mean / max of ``confusion_percent`` and the number of scans with any confused voxel.
    """
    rows = []
    for task, group in table.groupby("task", sort=False):
        values = group["confusion_percent"].to_numpy(dtype=float)
        rows.append({
            "task": task,
            "n_scans": int(values.size),
            "median_percent": float(np.median(values)),
            "mean_percent": float(np.mean(values)),
            "max_percent": float(np.max(values)),
            "n_scans_confused": int(np.count_nonzero(values > 0)),
        })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def confusion_figure(table: pd.DataFrame) -> Figure:
    """Box plot with the scans overlaid of ``confusion_percent`` per task, log-scale y axis.

    A log axis cannot show 0, so scans without confusion are drawn as hollow markers on a floor: the power of
    ten one decade below the smallest positive value, at most 1e-5 % (1e-6 % when no value is positive). The
    floor is a dashed line whose tick is labelled ``0``, and the legend says so. Boxes are drawn over the values
    with zeros moved to the floor, so a zero median or quartile lies on that line. The seed's result, median
    < 0.0005 %, is drawn as a dotted line.
    """
    tasks = list(dict.fromkeys(table["task"]))
    values = [table.loc[table["task"] == t, "confusion_percent"].to_numpy(dtype=float) for t in tasks]
    positive = np.concatenate([v[v > 0] for v in values]) if values else np.array([])
    floor = 10.0 ** (math.floor(math.log10(positive.min())) - 1) if positive.size else 1e-6
    floor = min(floor, 10.0 ** (math.floor(math.log10(PAPER_MEDIAN_BOUND_PERCENT)) - 1))  # 1e-5: below the bound
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(tasks) + 2), 3.8))
    ax.set_yscale("log")
    if tasks:
        ax.boxplot([np.maximum(v, floor) for v in values], showfliers=False)
        ax.set_xticks(range(1, len(tasks) + 1), tasks)
    rng = np.random.default_rng(0)
    for i, v in enumerate(values, start=1):
        x = i + rng.uniform(-0.15, 0.15, v.size)
        zero = v <= 0
        ax.scatter(x[~zero], v[~zero], s=12, color="C1", zorder=3)
        ax.scatter(x[zero], np.full(int(zero.sum()), floor), s=12, facecolors="none", edgecolors="C1", zorder=3,
                   label="0 % (drawn on the dashed line)" if i == 1 else None)
    top = max(float(positive.max()) if positive.size else floor, PAPER_MEDIAN_BOUND_PERCENT)
    ax.set_ylim(floor / 3, top * 3)
    ax.axhline(floor, color="0.5", ls="--", lw=0.8)
    ax.axhline(PAPER_MEDIAN_BOUND_PERCENT, color="C3", ls=":", lw=1.0, label=f"seed: median < {PAPER_MEDIAN_BOUND_PERCENT} %")
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "0" if math.isclose(v, floor) else f"$10^{{{round(math.log10(v))}}}$"))
    ax.set(ylabel="voxels in another task's class (%)", title="Cross-task confusion per scan")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion(table: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`confusion_figure` of ``table`` as a PNG to ``path`` (atomically); returns ``path``."""
    path = Path(path)
    write_bytes(path, figure_png(confusion_figure(table)))
    return path


def write_confusion(pred_dir: str | Path, dataset_dir: str | Path, out: str | Path, split: str = "test") -> pd.DataFrame:
    """``clinseg evaluate --confusion``: the cross-task confusion of the predictions of one dataset's scans.

    The dataset's structures are the scans' own classes; every other class the predictions hold (a
    multi-task network writes all of its classes) is foreign. Writes ``OUT/confusion.csv`` (per scan),
    ``OUT/confusion_summary.csv`` and ``OUT/confusion.png``; returns the summary.
    """
    from clinseg.data.dataset import load_dataset
    from clinseg.evaluation.evaluate import write_table
    from clinseg.io.image import strip_ending

    dataset = load_dataset(dataset_dir)
    own = list(dataset.spec.structures)
    cases = [r.case_id for r in dataset.cases(split) if (Path(pred_dir) / r.case_id).is_dir()]  # type: ignore[arg-type]
    if not cases:
        raise DatasetError(f"{pred_dir}: no prediction folder of a {split} case of {dataset.root}")
    predicted = {strip_ending(f.name) for c in cases for f in (Path(pred_dir) / c).iterdir()}
    tasks = {dataset.spec.name: own, "other tasks": sorted(predicted - set(own))}
    table = confusion_table(pred_dir, tasks, {c: dataset.spec.name for c in cases})
    summary = summarise_confusion(table)
    out = Path(out)
    write_table(table, out / "confusion.csv")
    write_table(summary, out / "confusion_summary.csv")
    plot_confusion(table, out / "confusion.png")
    return summary
