"""The operating point of a binary task: the probability threshold with the best Dice (seed 004, Sec. 4).

    "In breast MRI and cardiac CTA, precision-recall curve analysis was performed to identify the optimal
    operating point, defined, for each experiment, as the highest Dice coefficient over the whole test set.
    The thresholds at this optimal operating point were then applied to all images."

Conventions, kept by every function here:

- A voxel is foreground at threshold ``t`` when ``probability >= t``; the comparison is made in the
  probabilities' own precision (the thresholds are cast to their dtype), so a float32 ``0.7`` is foreground at
  ``t = 0.7`` although ``float32(0.7) < 0.7`` in float64.
- Counts are *pooled* over all voxels of all given cases ("over the whole test set"): one true-positive,
  false-positive and false-negative count per threshold, summed over cases, then precision, recall and Dice.
- Dice is ``2PR / (P + R) = 2TP / (2TP + FP + FN)``, computed from the counts (the same formula as
  :func:`~clinseg.evaluation.metrics.structure_metrics`); with a non-empty reference it is always defined, and
  0 when nothing is found. Precision is NaN where nothing is predicted (as in ``structure_metrics``).
- Default thresholds: the fixed grid 0.01, 0.02, ..., 0.99 (:data:`DEFAULT_THRESHOLDS`) rather than every
  distinct probability value: the chosen threshold is a round number that is comparable between experiments
  and learning-curve checkpoints and is then applied to other images, and the sweep costs the same whatever
  the number of voxels. For the exact sweep pass ``np.unique(probabilities)`` as ``thresholds``.
- Ties: among thresholds with equal Dice the lowest wins. Dice values from counts are ratios of integers,
  correctly rounded, so equal ratios compare exactly equal; no tolerance is used.

Probabilities and references are arrays of any one shape per case (e.g. ``(Z, Y, X)``); references are boolean
or numeric (read as ``!= 0``); inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clinseg.evaluation.metrics import _as_bool
from clinseg.evaluation.plots import figure_png
from clinseg.io.atomic import write_bytes

#: Default sweep: 0.01 to 0.99 in steps of 0.01 (99 thresholds, each the float64 nearest its decimal).
DEFAULT_THRESHOLDS: np.ndarray = np.round(np.arange(1, 100) / 100, 2)


@dataclass(frozen=True, eq=False)
class OperatingPoint:
    """The best-Dice threshold and the precision-recall curve it was chosen on.

    ``threshold``, ``dice``, ``precision`` and ``recall`` describe the chosen point; the ``*_curve`` arrays hold
    one value per entry of ``thresholds`` (ascending). ``n_reference`` is the pooled number of reference voxels.
    """

    threshold: float
    dice: float
    precision: float
    recall: float
    thresholds: np.ndarray
    dice_curve: np.ndarray
    precision_curve: np.ndarray
    recall_curve: np.ndarray
    n_reference: int

    def curve_table(self) -> pd.DataFrame:
        """The sweep as a table: ``threshold``, ``precision``, ``recall``, ``dice``, ``chosen`` (bool)."""
        return pd.DataFrame({
            "threshold": self.thresholds,
            "precision": self.precision_curve,
            "recall": self.recall_curve,
            "dice": self.dice_curve,
            "chosen": self.thresholds == self.threshold,
        })


def best_dice_threshold(
    probabilities: np.ndarray, reference: np.ndarray, thresholds: Sequence[float] | None = None
) -> OperatingPoint:
    """The threshold of ``probabilities`` with the highest Dice against ``reference`` (one case).

    Parameters
    ----------
    probabilities : np.ndarray
        Foreground probabilities, any shape (e.g. ``(Z, Y, X)``), finite floats.
    reference : np.ndarray
        Reference mask, same shape.
    thresholds : sequence of float, optional
        Thresholds to sweep (sorted and de-duplicated here); :data:`DEFAULT_THRESHOLDS` when None.

    Returns
    -------
    OperatingPoint
        The chosen threshold (the lowest among equal best Dice) and the whole curve.

    Raises
    ------
    ValueError
        If the shapes differ, the reference is empty (no foreground: every threshold that predicts nothing
        would tie), the probabilities are not finite numbers, or the thresholds are empty or not finite.

    Examples
    --------
    >>> point = best_dice_threshold(np.array([0.9, 0.8, 0.4, 0.3, 0.1]), np.array([1, 1, 0, 1, 0]),
    ...                             thresholds=[0.2, 0.5])
    >>> point.threshold, point.dice      # at 0.2: TP 3, FP 1, FN 0 -> 6 / 7
    (0.2, 0.857142...)
    """
    return best_dice_threshold_pooled([(probabilities, reference)], thresholds)


def best_dice_threshold_pooled(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], thresholds: Sequence[float] | None = None
) -> OperatingPoint:
    """:func:`best_dice_threshold` with the counts pooled over several cases.

    ``pairs`` yields ``(probabilities, reference)`` per case (shapes may differ between cases); it is consumed
    once, one case at a time, so a generator that reads the cases from files keeps one case in memory. The
    result equals that of one case made by concatenating all cases' voxels.
    """
    grid = _check_thresholds(thresholds)
    tp = np.zeros(grid.size, np.int64)
    fp = np.zeros(grid.size, np.int64)
    n_ref = 0
    n_cases = 0
    for probabilities, reference in pairs:
        case_tp, case_fp, case_ref = threshold_counts(probabilities, reference, grid)
        tp += case_tp
        fp += case_fp
        n_ref += case_ref
        n_cases += 1
    if n_cases == 0:
        raise ValueError("no (probabilities, reference) pairs given")
    if n_ref == 0:
        raise ValueError("the reference has no foreground voxel: no operating point can be chosen")
    fn = n_ref - tp
    dice = 2.0 * tp / (2 * tp + fp + fn)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
    recall = tp / n_ref
    best = int(np.argmax(dice))  # argmax returns the first, i.e. lowest, threshold among equal maxima
    return OperatingPoint(
        threshold=float(grid[best]), dice=float(dice[best]), precision=float(precision[best]),
        recall=float(recall[best]), thresholds=grid, dice_curve=dice, precision_curve=precision,
        recall_curve=recall, n_reference=int(n_ref),
    )


def threshold_counts(
    probabilities: np.ndarray, reference: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """True and false positives at each threshold of one case, and its number of reference voxels.

    ``thresholds`` must be ascending. Each voxel is binned once by how many thresholds it reaches
    (``searchsorted``, ``O(N log T)``), so the sweep never builds one mask per threshold.

    Returns
    -------
    tuple
        ``(tp, fp, n_reference)``: two int64 arrays like ``thresholds`` and an int; ``fn = n_reference - tp``.
    """
    probs = np.asarray(probabilities)
    ref = _as_bool(reference, "reference")
    if probs.shape != ref.shape:
        raise ValueError(f"probabilities and reference must have one shape, got {probs.shape} and {ref.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float64)
    if not np.all(np.isfinite(probs)):
        raise ValueError("probabilities must be finite numbers (found NaN or inf)")
    # level[i] = number of thresholds <= p[i]: the voxel is foreground for thresholds[:level[i]]
    level = np.searchsorted(thresholds.astype(probs.dtype), probs.ravel(), side="right")
    ref_flat = ref.ravel()
    n_levels = thresholds.size + 1
    pos_hist = np.bincount(level[ref_flat], minlength=n_levels)
    neg_hist = np.bincount(level[~ref_flat], minlength=n_levels)
    # voxels foreground at thresholds[k] are those with level > k: reversed cumulative sums from the top
    tp = np.cumsum(pos_hist[::-1])[::-1][1:]
    fp = np.cumsum(neg_hist[::-1])[::-1][1:]
    return tp.astype(np.int64), fp.astype(np.int64), int(np.count_nonzero(ref_flat))


def apply_threshold(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask ``probabilities >= threshold``, compared in the probabilities' precision (as in the sweep)."""
    probs = np.asarray(probabilities)
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float64)
    return probs >= probs.dtype.type(threshold)


def _check_thresholds(thresholds: Sequence[float] | None) -> np.ndarray:
    if thresholds is None:
        return DEFAULT_THRESHOLDS.copy()
    grid = np.unique(np.asarray(thresholds, dtype=np.float64).ravel())
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError(f"thresholds must be a non-empty sequence of finite numbers, got {thresholds!r}")
    return grid


def precision_recall_figure(point: OperatingPoint, title: str = "Precision-recall sweep") -> Figure:
    """Precision against recall over the sweep, iso-Dice lines in grey, the chosen point marked and labelled.

    Thresholds where nothing is predicted (precision undefined) are left out of the curve.
    """
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    r = np.linspace(0.01, 1.0, 200)
    for level in (0.2, 0.4, 0.6, 0.8):  # Dice = 2PR/(P+R)  <=>  P = D R / (2R - D), for R > D/2
        keep = 2 * r > level
        p = level * r[keep] / (2 * r[keep] - level)
        ax.plot(r[keep][p <= 1], p[p <= 1], color="0.85", lw=0.8, zorder=1)
        ax.annotate(f"Dice {level}", (1.0, level / (2 - level)), fontsize=6, color="0.6", ha="right", va="bottom")
    defined = np.isfinite(point.precision_curve)
    ax.plot(point.recall_curve[defined], point.precision_curve[defined], color="C0", lw=1.6, marker=".", ms=3,
            zorder=2, label="sweep")
    ax.scatter([point.recall], [point.precision], s=60, color="C3", zorder=3,
               label=f"best Dice {point.dice:.3f} at t = {point.threshold:.3g}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_precision_recall(point: OperatingPoint, path: str | Path, title: str = "Precision-recall sweep") -> Path:
    """Write :func:`precision_recall_figure` of ``point`` as a PNG to ``path`` (atomically); returns ``path``."""
    path = Path(path)
    write_bytes(path, figure_png(precision_recall_figure(point, title)))
    return path


def write_operating_points(prob_dir: str | Path, dataset_dir: str | Path, out: str | Path,
                           split: str = "test") -> pd.DataFrame:
    """``clinseg evaluate --operating-point PROB_DIR``: per structure, the threshold with the best Dice over
    all cases of ``split`` (seed 004: "the highest Dice coefficient over the whole test set"), from the
    probability maps of ``clinseg predict --save-probabilities`` (``PROB_DIR/<case>/<structure>.nii.gz``).

    Writes ``OUT/operating_points.csv`` (structure, threshold, dice, precision, recall, cases) and
    ``OUT/pr_<structure>.png``; returns the table. Cases that do not delineate a structure are left out of
    its sweep.
    """
    from clinseg.data.dataset import load_dataset
    from clinseg.data.loading import load_targets
    from clinseg.errors import DatasetError
    from clinseg.evaluation.evaluate import write_table
    from clinseg.io.image import read_geometry, read_image

    dataset = load_dataset(dataset_dir)
    records = [r for r in dataset.cases(split) if (Path(prob_dir) / r.case_id).is_dir()]  # type: ignore[arg-type]
    if not records:
        raise DatasetError(f"{prob_dir}: no probability maps of a {split} case of {dataset.root}")
    references = {}
    for record in records:
        target, annotated = load_targets(record, dataset.spec, read_geometry(record.images[0]))
        references[record.case_id] = (target, annotated)
    rows = []
    for n, name in enumerate(dataset.spec.structures):
        cases = [r.case_id for r in records if references[r.case_id][1][n]
                 and (Path(prob_dir) / r.case_id / f"{name}.nii.gz").is_file()]
        if not cases or not any(references[c][0][n].any() for c in cases):
            continue
        pairs = ((read_image(Path(prob_dir) / c / f"{name}.nii.gz").array, references[c][0][n] > 0) for c in cases)
        point = best_dice_threshold_pooled(pairs)
        plot_precision_recall(point, Path(out) / f"pr_{name}.png", f"{name}: precision-recall sweep")
        rows.append({"structure": name, "threshold": point.threshold, "dice": point.dice,
                     "precision": point.precision, "recall": point.recall, "cases": len(cases)})
    if not rows:
        raise DatasetError(f"{prob_dir}: no probability map of a delineated structure with reference voxels")
    table = pd.DataFrame(rows)
    write_table(table, Path(out) / "operating_points.csv")
    return table
