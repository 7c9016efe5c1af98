"""Summary statistics of a per-case, per-structure metrics table: mean, std and a Student-t 95% CI.

The input is the tidy table one row per ``(case, structure)`` with the columns ``case``, ``structure``,
``delineated`` (bool) and one column per name in :data:`~clinseg.evaluation.metrics.METRIC_NAMES`.
A row with ``delineated == False`` means the structure was not delineated in that case's reference, so
there is nothing to score: such rows are left out of every statistic (never counted as 0 or as 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from rich.table import Table
from scipy import stats

from clinseg.evaluation.metrics import METRIC_NAMES

#: Columns the input of :func:`summarise` must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("case", "structure", "delineated", *METRIC_NAMES)

#: Per-metric statistics :func:`summarise` writes, as ``<metric>_<stat>`` columns.
STAT_SUFFIXES: tuple[str, ...] = ("n", "mean", "std", "ci_low", "ci_high")

#: Value of the ``structure`` column of the final, across-structure row.
MEAN_ROW = "mean"


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and the Student-t confidence interval of that mean.

    ``mean ± t_{(1+confidence)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
    (``ddof=1``). NaN values are ignored.

    Parameters
    ----------
    values : iterable of float
        The sample (e.g. one metric of one structure over cases).
    confidence : float
        Confidence level in (0, 1).

    Returns
    -------
    tuple of 3 floats
        ``(mean, ci_low, ci_high)``. With no non-NaN value all three are NaN; with a single value the mean
        is that value and the interval is ``(NaN, NaN)`` (undefined with zero degrees of freedom).

    Examples
    --------
    >>> mean_ci([1.0, 2.0, 3.0])  # 2 ± 4.302653 * 1 / sqrt(3)
    (2.0, -0.4841377..., 4.4841377...)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    sample = _non_nan(values)
    n = sample.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(sample.mean())
    if n == 1:
        return (mean, math.nan, math.nan)
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * float(sample.std(ddof=1)) / math.sqrt(n)
    return (mean, mean - half, mean + half)


def summarise(metrics: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row of statistics per structure, plus a final across-structure ``"mean"`` row.

    Parameters
    ----------
    metrics : pd.DataFrame
        Tidy table with the columns :data:`REQUIRED_COLUMNS`, one row per ``(case, structure)``.
        Rows with ``delineated == False`` are excluded from all statistics. Not modified.
    confidence : float
        Level of the Student-t interval of the mean.

    Returns
    -------
    pd.DataFrame
        Columns ``structure``, ``n`` and, for each metric ``m`` of ``METRIC_NAMES``, ``m_n``, ``m_mean``,
        ``m_std``, ``m_ci_low``, ``m_ci_high``. Structures appear in order of first appearance, then the
        ``"mean"`` row.

        - Per structure: ``n`` is the number of delineated rows. Each metric ignores its own NaN values
          (e.g. hd95 is NaN when the prediction is empty), so ``m_n <= n`` is the count that ``m_mean``,
          ``m_std`` (``ddof=1``) and the CI actually use. A structure never delineated is kept with
          ``n == 0`` and NaN statistics; ``m_n == 1`` gives a NaN std and CI.
        - ``"mean"`` row (macro average): ``m_mean`` is the mean of the per-structure ``m_mean`` values
          (structures with a NaN mean are skipped), so every structure weighs the same whatever its
          number of cases. Its ``n`` counts the structures delineated at least once, ``m_n`` the
          structures with a defined ``m_mean``; ``m_std``
          and the CI treat those structure means as the sample: they describe the spread between
          structures, not the case-level uncertainty.

    Raises
    ------
    ValueError
        If a required column is missing, ``delineated`` holds anything other than True/False, or a
        structure is named ``"mean"``.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics table lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    delineated = metrics["delineated"]
    if delineated.dtype != bool and not delineated.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        raise ValueError("column 'delineated' must hold only True/False (a missing value is not allowed)")

    if (metrics["structure"] == MEAN_ROW).any():
        raise ValueError(f"structure name {MEAN_ROW!r} is reserved for the across-structure row")

    rows = []
    for structure in pd.unique(metrics["structure"]):
        scored = metrics[(metrics["structure"] == structure) & delineated.astype(bool)]
        row: dict[str, object] = {"structure": structure, "n": len(scored)}
        for name in METRIC_NAMES:
            row.update(_stats(name, scored[name], confidence))
        rows.append(row)

    table = pd.DataFrame(rows, columns=_output_columns())
    mean_row: dict[str, object] = {"structure": MEAN_ROW, "n": int((table["n"] > 0).sum())}
    for name in METRIC_NAMES:
        mean_row.update(_stats(name, table[f"{name}_mean"], confidence))
    table = pd.concat([table, pd.DataFrame([mean_row], columns=table.columns)], ignore_index=True)
    return table.astype({"n": int, **{f"{name}_n": int for name in METRIC_NAMES}})


#: Columns of :func:`summary_rows` (and of the printed table).
SUMMARY_TABLE_COLUMNS: tuple[str, ...] = ("Structure", "n", "Dice mean ± std [95% CI]", "HD95 (mm) mean ± std")


def summary_rows(summary: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """The printed rows of a :func:`summarise` result (columns :data:`SUMMARY_TABLE_COLUMNS`): structure, n,
    Dice ``mean ± std [ci_low, ci_high]`` (3 decimals) and HD95 ``mean ± std`` in mm (2 decimals);
    undefined values as ``n/a``."""
    rows = []
    for _, row in summary.iterrows():
        dice = f"{_fmt(row['dice_mean'], 3)} ± {_fmt(row['dice_std'], 3)}"
        dice += f" [{_fmt(row['dice_ci_low'], 3)}, {_fmt(row['dice_ci_high'], 3)}]"
        hd95 = f"{_fmt(row['hd95_mean'], 2)} ± {_fmt(row['hd95_std'], 2)}"
        rows.append((str(row["structure"]), str(int(row["n"])), dice, hd95))
    return rows


def summary_records(summary: pd.DataFrame) -> list[dict[str, object]]:
    """A :func:`summarise` result as JSON-ready records (one per row; NaN as ``None``)."""
    out = []
    for record in summary.to_dict(orient="records"):
        out.append({str(k): (None if isinstance(v, float) and math.isnan(v) else
                             int(v) if isinstance(v, (np.integer,)) else float(v) if isinstance(v, np.floating) else v)
                    for k, v in record.items()})
    return out


def format_summary_table(summary: pd.DataFrame, title: str | None = "Segmentation metrics") -> Table:
    """A rich table of a :func:`summarise` result: :func:`summary_rows`, the ``"mean"`` row set apart by a rule.

    Parameters
    ----------
    summary : pd.DataFrame
        Output of :func:`summarise`.
    title : str or None
        Table title.

    Returns
    -------
    rich.table.Table
        Ready for ``rich.console.Console().print``; building it prints nothing.
    """
    table = Table(title=title)
    for name in SUMMARY_TABLE_COLUMNS:
        table.add_column(name, justify="left" if name == "Structure" else "right")
    rows = summary_rows(summary)
    for index, row in enumerate(rows):
        is_mean = row[0] == MEAN_ROW
        next_is_mean = index + 1 < len(rows) and rows[index + 1][0] == MEAN_ROW
        table.add_row(*row, style="bold" if is_mean else None, end_section=next_is_mean)
    return table


def _stats(name: str, values: Iterable[float], confidence: float) -> dict[str, float | int]:
    sample = _non_nan(values)
    mean, low, high = mean_ci(sample, confidence)
    std = float(sample.std(ddof=1)) if sample.size > 1 else math.nan
    return {
        f"{name}_n": int(sample.size),
        f"{name}_mean": mean,
        f"{name}_std": std,
        f"{name}_ci_low": low,
        f"{name}_ci_high": high,
    }


def _non_nan(values: Iterable[float]) -> np.ndarray:
    """The non-NaN entries of ``values`` as a float array."""
    array = np.asarray(values if isinstance(values, (np.ndarray, pd.Series)) else list(values), dtype=float)
    return array[~np.isnan(array)]


def _output_columns() -> list[str]:
    return ["structure", "n", *(f"{name}_{stat}" for name in METRIC_NAMES for stat in STAT_SUFFIXES)]


def _fmt(value: float, decimals: int) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{decimals}f}"
