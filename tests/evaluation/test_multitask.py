"""Multi-task evaluation (seed 004): cross-task confusion and the best-Dice operating point, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.multitask import (
    confusion_table,
    cross_task_confusion,
    foreign_class_percent,
    plot_confusion,
    summarise_confusion,
)
from clinseg.evaluation.operating_point import (
    apply_threshold,
    best_dice_threshold,
    best_dice_threshold_pooled,
    plot_precision_recall,
)
from clinseg.io import Geometry, write_image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _mask(shape: tuple[int, int, int], flat_indices: list[int]) -> np.ndarray:
    mask = np.zeros(int(np.prod(shape)), bool)
    mask[flat_indices] = True
    return mask.reshape(shape)


# --- cross-task confusion -------------------------------------------------------------------------------------


def test_confusion_counts_overlapping_foreign_voxels_once_and_ignores_own_classes() -> None:
    shape = (10, 10, 10)  # 1000 voxels
    masks = {
        "own": _mask(shape, list(range(100))),          # 100 own voxels, overlapping both foreign classes
        "alien_a": _mask(shape, [0, 1, 2, 3, 4]),        # 5 voxels
        "alien_b": _mask(shape, [2, 3, 4, 500]),         # 4 voxels, 3 of them also in alien_a
    }
    before = {k: v.copy() for k, v in masks.items()}
    # union of the foreign masks: {0, 1, 2, 3, 4, 500} = 6 voxels of 1000 -> 0.6 %
    assert cross_task_confusion(masks, own_classes=["own"]) == pytest.approx(0.6)
    assert foreign_class_percent(masks, own_classes={"own"}) == pytest.approx({"alien_a": 0.5, "alien_b": 0.4})
    # seen from the task owning both alien classes, only "own" is foreign: 100 voxels -> 10 %
    assert cross_task_confusion(masks, own_classes=["alien_a", "alien_b"]) == pytest.approx(10.0)
    assert all(np.array_equal(masks[k], before[k]) for k in masks)


def test_confusion_of_empty_prediction_and_without_foreign_classes_is_zero() -> None:
    empty = {name: np.zeros((4, 4, 4), np.uint8) for name in ("own", "alien")}
    assert cross_task_confusion(empty, own_classes=["own"]) == 0.0
    only_own = {"own": np.ones((4, 4, 4), bool)}
    assert cross_task_confusion(only_own, own_classes=["own", "not_output"]) == 0.0
    assert foreign_class_percent(only_own, own_classes=["own"]) == {}


def test_confusion_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one shape"):
        cross_task_confusion({"a": np.zeros((2, 2, 2)), "b": np.zeros((2, 2, 3))}, ["a"])
    with pytest.raises(ValueError, match="empty"):
        cross_task_confusion({}, ["a"])
    with pytest.raises(TypeError, match="not the string"):
        cross_task_confusion({"a": np.zeros((2, 2, 2))}, "a")


TASKS = {"brain": ["wm", "gm"], "breast": ["pectoral"]}
SHAPE = (2, 5, 10)  # 100 voxels: a voxel is 1 %


def _write_case(pred: Path, case: str, voxels: dict[str, list[int]]) -> None:
    geometry = Geometry(spacing=(1.0, 1.0, 2.0), shape=SHAPE)
    for name in ("wm", "gm", "pectoral"):
        write_image(_mask(SHAPE, voxels.get(name, [])), geometry, pred / case / f"{name}.nii.gz")


@pytest.fixture
def pred_dir(tmp_path: Path) -> Path:
    pred = tmp_path / "pred"
    _write_case(pred, "brain_1", {"wm": list(range(40)), "gm": list(range(40, 70))})                  # 0 %
    _write_case(pred, "brain_2", {"wm": list(range(40)), "pectoral": [0, 99]})                        # 2 %
    _write_case(pred, "breast_1", {"pectoral": list(range(20)), "wm": [50, 51, 52], "gm": [52]})     # 3 %
    _write_case(pred, "breast_2", {"pectoral": list(range(20)), "gm": [10]})                          # 1 %
    return pred


CASE_TASK = {"brain_1": "brain", "brain_2": "brain", "breast_1": "breast", "breast_2": "breast"}


def test_confusion_table_and_summary_from_files(pred_dir: Path) -> None:
    table = confusion_table(pred_dir, TASKS, CASE_TASK)
    assert list(table.case) == list(CASE_TASK)
    assert list(table.task) == ["brain", "brain", "breast", "breast"]
    assert table.confusion_percent.tolist() == pytest.approx([0.0, 2.0, 3.0, 1.0])
    assert table.confused_voxels.tolist() == [0, 2, 3, 1]
    assert table.n_voxels.tolist() == [100] * 4
    assert pd.isna(table.top_foreign_class[0]) and table.top_foreign_class[1:].tolist() == ["pectoral", "wm", "gm"]
    assert table.top_foreign_percent.tolist() == pytest.approx([0.0, 2.0, 3.0, 1.0])

    summary = summarise_confusion(table).set_index("task")
    assert summary.loc["brain", ["median_percent", "mean_percent", "max_percent"]].tolist() == pytest.approx([1, 1, 2])
    assert summary.loc["breast", ["median_percent", "mean_percent", "max_percent"]].tolist() == pytest.approx([2, 2, 3])
    assert summary.n_scans.tolist() == [2, 2] and summary.n_scans_confused.tolist() == [1, 2]


def test_confusion_table_names_missing_file_and_unknown_task(pred_dir: Path) -> None:
    (pred_dir / "brain_2" / "pectoral.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"brain_2/pectoral\.nii\.gz: prediction missing"):
        confusion_table(pred_dir, TASKS, {"brain_2": "brain"})
    with pytest.raises(ConfigError, match="'cardiac'"):
        confusion_table(pred_dir, TASKS, {"brain_1": "cardiac"})


def test_plot_confusion_writes_png_with_zero_scans(pred_dir: Path, tmp_path: Path) -> None:
    path = plot_confusion(confusion_table(pred_dir, TASKS, CASE_TASK), tmp_path / "fig" / "confusion.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


# --- best-Dice operating point --------------------------------------------------------------------------------

PROBS = np.array([0.9, 0.8, 0.4, 0.3, 0.1])
REF = np.array([1, 1, 0, 1, 0])
# Predicted voxels, counts and Dice = 2TP / (2TP + FP + FN) by threshold range (foreground when p >= t):
#   t <= 0.1        all 5           TP 3 FP 2 FN 0   6/8 = 0.75
#   0.1 < t <= 0.3  0.9 0.8 0.4 0.3  TP 3 FP 1 FN 0   6/7 = 0.857  <- best
#   0.3 < t <= 0.4  0.9 0.8 0.4      TP 2 FP 1 FN 1   4/6 = 0.667
#   0.4 < t <= 0.8  0.9 0.8          TP 2 FP 0 FN 1   4/5 = 0.8
#   0.8 < t <= 0.9  0.9              TP 1 FP 0 FN 2   2/4 = 0.5
#   t > 0.9         none             TP 0 FP 0 FN 3   0


def test_best_dice_threshold_by_hand() -> None:
    point = best_dice_threshold(PROBS, REF, thresholds=[0.1, 0.3, 0.35, 0.5, 0.85, 0.95])
    assert point.dice_curve == pytest.approx([6 / 8, 6 / 7, 4 / 6, 4 / 5, 2 / 4, 0.0])
    assert point.recall_curve == pytest.approx([1, 1, 2 / 3, 2 / 3, 1 / 3, 0])
    assert point.precision_curve[:5] == pytest.approx([3 / 5, 3 / 4, 2 / 3, 1, 1]) and np.isnan(point.precision_curve[5])
    assert (point.threshold, point.dice, point.precision, point.recall) == (0.3, pytest.approx(6 / 7), 0.75, 1.0)
    assert point.dice == pytest.approx(2 * point.precision * point.recall / (point.precision + point.recall))
    # default grid 0.01..0.99: 0.11..0.30 share the best Dice; the lowest, 0.11, is chosen
    default = best_dice_threshold(PROBS, REF)
    assert default.thresholds.size == 99 and default.threshold == 0.11 and default.dice == pytest.approx(6 / 7)
    assert default.curve_table().chosen.sum() == 1


def test_ties_take_the_lowest_threshold() -> None:
    assert best_dice_threshold(PROBS, REF, thresholds=[0.3, 0.2, 0.25]).threshold == 0.2  # same counts
    # equal Dice from different counts: t=0.3 gives TP 2 FP 2 FN 0 (4/6), t=0.9 gives TP 1 FP 0 FN 1 (2/3)
    probs, ref = np.array([0.9, 0.7, 0.5, 0.3]), np.array([1, 0, 0, 1])
    point = best_dice_threshold(probs, ref, thresholds=[0.9, 0.3, 0.7])
    assert point.dice_curve.tolist() == [4 / 6, 2 / 4, 2 / 3] and point.threshold == 0.3


def test_pooling_two_cases_equals_concatenating_them() -> None:
    rng = np.random.default_rng(4)
    a = (rng.random((3, 4, 5)).astype(np.float32), rng.random((3, 4, 5)) > 0.6)
    b = (rng.random((2, 3, 3)).astype(np.float32), rng.random((2, 3, 3)) > 0.3)
    pooled = best_dice_threshold_pooled(iter([a, b]))
    joined = best_dice_threshold(np.concatenate([a[0].ravel(), b[0].ravel()]), np.concatenate([a[1].ravel(), b[1].ravel()]))
    assert pooled.threshold == joined.threshold and pooled.n_reference == joined.n_reference
    np.testing.assert_array_equal(pooled.dice_curve, joined.dice_curve)
    # the sweep agrees with thresholding every voxel directly, and the float32 0.7 counts at t = 0.7
    p, r = a
    for t in (0.25, 0.7):
        mask = apply_threshold(p, t)
        k = int(np.flatnonzero(pooled.thresholds == t)[0])
        expected = best_dice_threshold_pooled([(p, r), b], thresholds=[t]).dice
        assert pooled.dice_curve[k] == pytest.approx(expected)
        assert mask.sum() == np.count_nonzero(p >= np.float32(t))
    assert apply_threshold(np.array([0.7], np.float32), 0.7).tolist() == [True]


def test_operating_point_rejects_empty_reference_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="no foreground"):
        best_dice_threshold(PROBS, np.zeros(5))
    with pytest.raises(ValueError, match="one shape"):
        best_dice_threshold(PROBS, REF[:4])
    with pytest.raises(ValueError, match="no .* pairs"):
        best_dice_threshold_pooled([])


def test_plot_precision_recall_writes_png(tmp_path: Path) -> None:
    path = plot_precision_recall(best_dice_threshold(PROBS, REF), tmp_path / "pr.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
