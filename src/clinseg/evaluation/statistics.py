"""Statistics of a learning-curve study: per-network means, learning-curve CIs, tests and saturation points.

The input of every function is the tidy study table (``STUDY/results.csv``): one row per
``(arm, mode, size, repeat, case, structure)`` with the columns :data:`RESULT_COLUMNS` and one column per
metric (``dice``, ``hd95`` …). ``size`` is M, the number of references per class (seed study Sec. 3).
Rows with ``delineated == False`` have no reference, hence no score, and are left out everywhere.

Two units of analysis are used, as in the seed study:

- learning curves average over *networks*: each network (``run``) is first averaged over the test cases,
  then the mean and Student-t CI are taken over the networks of one subset size (seed Fig. 4);
- tests compare per-case scores: arms are trained on the same subsets, so they are paired over
  ``(repeat, case)``; sampling modes use different subsets and are compared unpaired.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from clinseg.evaluation.metrics import metric_directions
from clinseg.evaluation.summary import mean_ci

log = logging.getLogger(__name__)

#: Columns every study results table has besides the metric columns.
RESULT_COLUMNS: tuple[str, ...] = ("arm", "mode", "size", "repeat", "run", "case", "structure", "delineated")

#: Metrics the study statistics are computed for by default.
STUDY_METRICS: tuple[str, ...] = ("dice", "hd95")

#: The unpaired test used for modes when the paired test for arms is ``wilcoxon`` or ``ttest``.
UNPAIRED_FOR: dict[str, str] = {"wilcoxon": "mannwhitney", "ttest": "welch"}

PairedTest = Literal["wilcoxon", "ttest"]
Alternative = Literal["two-sided", "greater", "less"]
UnpairedTest = Literal["mannwhitney", "welch"]

_CELL = ["arm", "mode", "size", "structure"]
_RUN = ["arm", "mode", "size", "repeat", "run", "structure"]
_TEST_NAMES = {"wilcoxon": "Wilcoxon signed-rank", "ttest": "paired t-test",
               "mannwhitney": "Mann-Whitney U", "welch": "Welch t-test"}


@dataclass(frozen=True)
class TestResult:
    """One comparison of samples ``a`` and ``b``, two-sided unless ``test`` says "one-tailed".

    ``difference`` is ``mean_a - mean_b``; ``p_value`` (and ``statistic``) are NaN when the test is
    undefined for the data, and ``note`` then says why (it also carries any warning scipy raised).
    """

    __test__ = False  # not a pytest test class

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    statistic: float
    p_value: float
    test: str
    note: str = ""


def scored_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``results`` that have a reference (``delineated`` is True); a copy, input untouched."""
    delineated = results["delineated"]
    if delineated.dtype != bool:
        delineated = delineated.map(lambda v: v is True or v is np.True_ or str(v).strip().lower() in ("true", "1"))
    return results.loc[delineated.astype(bool)].copy()


def structure_order(results: pd.DataFrame, structures: Sequence[str] | None = None) -> list[str]:
    """``structures`` (those present in ``results``) followed by any other structure in order of appearance."""
    present = list(pd.unique(results["structure"]))
    first = [s for s in (structures or ()) if s in set(present)]
    return first + [s for s in present if s not in set(first)]


def network_means(results: pd.DataFrame, metrics: Sequence[str] = STUDY_METRICS) -> pd.DataFrame:
    """Each network's mean over test cases, per structure.

    Parameters
    ----------
    results : pd.DataFrame
        Tidy study table (:data:`RESULT_COLUMNS` and the ``metrics`` columns). Not modified.
    metrics : sequence of str
        Metric columns to average; each ignores its own NaN values (e.g. HD95 of an empty prediction).

    Returns
    -------
    pd.DataFrame
        One row per ``(arm, mode, size, repeat, run, structure)`` with at least one delineated case:
        those columns, ``cases`` (delineated test cases) and one column per metric holding the mean
        (NaN when every case of that metric is NaN). Rows keep the order of first appearance.
    """
    scored = scored_rows(results)
    grouped = scored.groupby(_RUN, sort=False, dropna=False)
    table = grouped[list(metrics)].mean()
    table.insert(0, "cases", grouped.size())
    return table.reset_index()


#: Fewest networks per cell for a CI over networks; below it the CI is over (network, case) values.
MIN_NETWORKS = 3


def learning_curve_summary(
    results: pd.DataFrame,
    metrics: Sequence[str] = STUDY_METRICS,
    confidence: float = 0.95,
    structures: Sequence[str] | None = None,
    min_networks: int = MIN_NETWORKS,
) -> pd.DataFrame:
    """Mean and Student-t CI of each metric per ``(arm, mode, size, structure)``, over networks.

    Seed study Fig. 4: "the average Dice score for each OAR on the test set, averaged over the results
    from each network trained on the same training subset size; vertical bars indicate the 95% CI". Each
    network is first averaged over the test cases (:func:`network_means`); mean and CI are then taken over
    those network means, so the CI describes how much the result depends on the sampled subset. A cell
    with fewer than :data:`MIN_NETWORKS` networks has no usable between-network spread (with two, the
    t quantile is 12.7 and the interval spans everything): its CI is then taken over all (network, test
    case) values and ``ci_unit`` says ``"case"``.

    Parameters
    ----------
    results : pd.DataFrame
        Tidy study table. Not modified.
    metrics : sequence of str
        Metric columns to summarise.
    confidence : float
        Level of the Student-t intervals.
    structures : sequence of str, optional
        Preferred structure order (others follow in order of appearance).

    Returns
    -------
    pd.DataFrame
        Columns ``arm, mode, size, structure, networks, cases, ci_unit`` and for each metric ``m``:
        ``m_n`` (number of values the mean and CI use: networks with a defined mean, or cases when
        ``ci_unit == "case"``), ``m_mean``, ``m_ci_low``, ``m_ci_high`` (NaN when ``m_n < 2``), and
        ``m_std``, the standard deviation over every (network, test case) value.
        Sorted by arm and mode (order of appearance), size, then structure.
    """
    scored = scored_rows(results)
    cases = {key: group for key, group in scored.groupby(_CELL, sort=False)}
    rows: list[dict[str, object]] = []
    for key, group in network_means(scored, metrics).groupby(_CELL, sort=False):
        networks = len(group)
        unit = "network" if networks >= max(min_networks, 2) else "case"
        row: dict[str, object] = dict(zip(_CELL, key))
        row.update(networks=networks, cases=int(group["cases"].sum()), ci_unit=unit)
        for name in metrics:
            values = _finite(group[name] if unit == "network" else cases[key][name])
            mean, low, high = mean_ci(values, confidence)
            spread = _finite(cases[key][name])
            row.update({f"{name}_n": int(values.size), f"{name}_mean": mean,
                        f"{name}_ci_low": low, f"{name}_ci_high": high,
                        f"{name}_std": float(spread.std(ddof=1)) if spread.size > 1 else float("nan")})
        rows.append(row)
    columns = [*_CELL, "networks", "cases", "ci_unit",
               *(f"{m}_{s}" for m in metrics for s in ("n", "mean", "ci_low", "ci_high", "std"))]
    return _sorted(pd.DataFrame(rows, columns=columns), scored, structures)


def paired_test(a: Iterable[float], b: Iterable[float], test: PairedTest = "wilcoxon",
                alternative: Alternative = "two-sided") -> TestResult:
    """Paired test of ``a`` against ``b`` (equal length; pairs with a NaN are dropped), two-sided by default.

    ``wilcoxon`` is :func:`scipy.stats.wilcoxon` with its defaults (zero differences dropped), ``ttest``
    :func:`scipy.stats.ttest_rel`. The p-value is NaN, with a note, when fewer than 2 pairs remain, when
    every difference is zero, or (t-test) when the differences have no variance.

    ``alternative`` is scipy's: ``"greater"`` tests "``a`` is larger than ``b``" one-tailed (the differences
    ``a - b`` have a positive mean, or median for Wilcoxon), ``"less"`` the reverse. Seed 001 (line 923) tests
    "variant A improves on B" with paired one-tailed t-tests: ``paired_test(dice_a, dice_b, "ttest",
    "greater")`` (use ``"less"`` for a lower-is-better metric such as HD95). A one-tailed result's ``test``
    reads e.g. ``"paired t-test, one-tailed (greater)"``.
    """
    x, y = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} and {y.size}")
    if test not in ("wilcoxon", "ttest"):
        raise ValueError(f"unknown paired test {test!r}; use 'wilcoxon' or 'ttest'")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"unknown alternative {alternative!r}; use 'two-sided', 'greater' or 'less'")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    diff = x - y
    note = ""
    if x.size < 2:
        note = f"fewer than 2 pairs ({x.size})"
    elif np.all(diff == 0):
        note = "all differences are zero"
    elif test == "ttest" and np.ptp(diff) == 0:
        note = "the differences have no variance"
    if alternative == "two-sided":
        run = (lambda: stats.wilcoxon(x, y)) if test == "wilcoxon" else (lambda: stats.ttest_rel(x, y))
        return _result(x, y, run, test, note)
    scipy_test = stats.wilcoxon if test == "wilcoxon" else stats.ttest_rel
    result = _result(x, y, lambda: scipy_test(x, y, alternative=alternative), test, note)
    return replace(result, test=f"{result.test}, one-tailed ({alternative})")


def unpaired_test(a: Iterable[float], b: Iterable[float], test: UnpairedTest = "mannwhitney") -> TestResult:
    """Two-sided unpaired test of ``a`` against ``b`` (NaN values dropped).

    ``mannwhitney`` is :func:`scipy.stats.mannwhitneyu`, ``welch`` :func:`scipy.stats.ttest_ind` with
    ``equal_var=False``. The p-value is NaN, with a note, when a side has fewer than 2 values or every
    value of both sides is the same.
    """
    if test not in ("mannwhitney", "welch"):
        raise ValueError(f"unknown unpaired test {test!r}; use 'mannwhitney' or 'welch'")
    x, y = _finite(a), _finite(b)
    note = ""
    if min(x.size, y.size) < 2:
        note = f"fewer than 2 values on a side ({x.size} and {y.size})"
    elif np.ptp(np.concatenate([x, y])) == 0:
        note = "all values are equal"
    run = ((lambda: stats.mannwhitneyu(x, y)) if test == "mannwhitney"
           else (lambda: stats.ttest_ind(x, y, equal_var=False)))
    return _result(x, y, run, test, note)


def compare_arms(
    results: pd.DataFrame,
    metrics: Sequence[str] = STUDY_METRICS,
    test: PairedTest = "wilcoxon",
    structures: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every pair of arms within each mode, size and structure, paired over ``(repeat, case)``.

    Arms are trained on the same subsets (same ``repeat`` = same subset), so the score of a test case
    under arm A and under arm B form a pair. Only pairs where both scores exist are used. Note that the
    pairs of different repeats share test cases, so they are not fully independent.

    Returns
    -------
    pd.DataFrame
        The columns of :func:`comparison_columns`; ``comparison == "arms"``, ``mode_a == mode_b``.
    """
    return _compare(results, "arm", "mode", test, metrics, structures)


def compare_modes(
    results: pd.DataFrame,
    metrics: Sequence[str] = STUDY_METRICS,
    test: UnpairedTest = "mannwhitney",
    structures: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every pair of sampling modes within each arm, size and structure, unpaired.

    Modes use different subsets (seed Sec. 3: concentrated vs distributed labels), so the per-case scores
    of all networks of one mode are compared with those of the other as independent samples.

    Returns
    -------
    pd.DataFrame
        The columns of :func:`comparison_columns`; ``comparison == "modes"``, ``arm_a == arm_b``.
    """
    return _compare(results, "mode", "arm", test, metrics, structures)


def comparison_columns() -> list[str]:
    """Columns of :func:`compare_arms` and :func:`compare_modes` (``difference = mean_a - mean_b``)."""
    return ["comparison", "arm_a", "arm_b", "mode_a", "mode_b", "size", "structure", "metric",
            *(f for f in TestResult.__dataclass_fields__)]


def saturation_points(summary: pd.DataFrame, tolerance: float = 0.02, metric: str = "dice") -> pd.DataFrame:
    """Smallest M whose mean is within ``tolerance`` of the best mean over sizes, per arm, mode, structure.

    Seed study Sec. 5: "a saturation point between five and seven labeled examples ... after which an
    increased data set size showed sharply diminishing returns". For a metric where higher is better the
    saturation size is the smallest M with ``mean >= best - tolerance`` (``best`` the largest mean over
    sizes); for a lower-is-better metric (HD95) ``mean <= best + tolerance``. Sizes with a NaN mean are
    skipped.

    Parameters
    ----------
    summary : pd.DataFrame
        Output of :func:`learning_curve_summary` (columns ``arm, mode, size, structure, <metric>_mean``).
    tolerance : float
        Absolute tolerance in the metric's unit (Dice: 0.02; HD95: mm).
    metric : str
        A metric whose direction is ``"higher"`` or ``"lower"`` in ``metric_directions``.

    Returns
    -------
    pd.DataFrame
        Columns ``arm, mode, structure, sizes`` (sizes with a defined mean), ``best_size``, ``best_mean``,
        ``saturation_size``, ``saturation_mean``, ``tolerance``, ``metric``; NaN sizes when no size has a
        defined mean.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    direction = metric_directions.get(metric, "higher")
    if direction not in ("higher", "lower"):
        raise ValueError(f"saturation needs a higher- or lower-is-better metric, {metric!r} is {direction!r}")
    sign = 1.0 if direction == "higher" else -1.0
    rows = []
    for key, group in summary.groupby(["arm", "mode", "structure"], sort=False):
        curve = group[["size", f"{metric}_mean"]].dropna().sort_values("size")
        sizes, means = curve["size"].to_numpy(), curve[f"{metric}_mean"].to_numpy(dtype=float)
        row: dict[str, object] = dict(zip(("arm", "mode", "structure"), key))
        row.update(sizes=int(sizes.size), best_size=math.nan, best_mean=math.nan,
                   saturation_size=math.nan, saturation_mean=math.nan, tolerance=tolerance, metric=metric)
        if sizes.size:
            best = int(np.argmax(sign * means))
            # inclusive, with a rounding margin so that a mean exactly ``tolerance`` away counts as within
            first = int(np.argmax(sign * means >= sign * means[best] - tolerance - 1e-12))
            row.update(best_size=int(sizes[best]), best_mean=float(means[best]),
                       saturation_size=int(sizes[first]), saturation_mean=float(means[first]))
        rows.append(row)
    columns = ["arm", "mode", "structure", "sizes", "best_size", "best_mean", "saturation_size",
               "saturation_mean", "tolerance", "metric"]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"best_size": "Int64", "saturation_size": "Int64"})


def describe_tests(test: PairedTest = "wilcoxon") -> str:
    """Plain-English names of the arm test and the matching mode test, e.g. for a report."""
    return f"{_TEST_NAMES[test]} (arms, paired) and {_TEST_NAMES[UNPAIRED_FOR[test]]} (modes, unpaired)"


def _compare(results: pd.DataFrame, across: str, within: str, test: str, metrics: Sequence[str],
             structures: Sequence[str] | None) -> pd.DataFrame:
    scored = scored_rows(results)
    paired = across == "arm"
    groups = {key: group for key, group in scored.groupby([within, "size", "structure", across], sort=False)}
    levels = list(pd.unique(scored[across]))
    rows: list[dict[str, object]] = []
    for fixed in pd.unique(scored[within]):
        for size in sorted(pd.unique(scored["size"])):
            for structure in structure_order(scored, structures):
                for a, b in combinations(levels, 2):
                    group_a = groups.get((fixed, size, structure, a))
                    group_b = groups.get((fixed, size, structure, b))
                    if group_a is None or group_b is None:
                        continue
                    names = {"arm_a": a, "arm_b": b, "mode_a": fixed, "mode_b": fixed} if paired else \
                        {"arm_a": fixed, "arm_b": fixed, "mode_a": a, "mode_b": b}
                    for metric in metrics:
                        if paired:
                            pairs = pd.concat([group_a.groupby(["repeat", "case"])[metric].mean(),
                                               group_b.groupby(["repeat", "case"])[metric].mean()],
                                              axis=1, join="inner")
                            result = paired_test(pairs.iloc[:, 0], pairs.iloc[:, 1], test)  # type: ignore[arg-type]
                        else:
                            result = unpaired_test(group_a[metric], group_b[metric], test)  # type: ignore[arg-type]
                        rows.append({"comparison": "arms" if paired else "modes", **names, "size": size,
                                     "structure": structure, "metric": metric, **asdict(result)})
    table = pd.DataFrame(rows, columns=comparison_columns())
    noted = int((table["note"] != "").sum()) if len(table) else 0
    if noted:
        log.info("%d of %d %s comparison(s) have a note (undefined or warned test)", noted, len(table), across)
    return table


def _result(x: np.ndarray, y: np.ndarray, run: Callable[[], Any], test: str, note: str) -> TestResult:
    statistic = p_value = math.nan
    if not note:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = run()
        statistic, p_value = float(outcome.statistic), float(outcome.pvalue)
        note = "; ".join(dict.fromkeys(str(w.message) for w in caught))
    mean_a = float(x.mean()) if x.size else math.nan
    mean_b = float(y.mean()) if y.size else math.nan
    return TestResult(int(x.size), int(y.size), mean_a, mean_b, mean_a - mean_b, statistic, p_value,
                      _TEST_NAMES[test], note)


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(values if isinstance(values, (np.ndarray, pd.Series)) else list(values), dtype=float)
    return array[~np.isnan(array)]


def _sorted(table: pd.DataFrame, reference: pd.DataFrame, structures: Sequence[str] | None) -> pd.DataFrame:
    """Sort by arm and mode (order of appearance in ``reference``), size, then structure order."""
    ranks = {"arm": list(pd.unique(reference["arm"])), "mode": list(pd.unique(reference["mode"])),
             "structure": structure_order(reference, structures)}

    def key(column: pd.Series) -> pd.Series:
        if column.name in ranks:
            return column.map({v: i for i, v in enumerate(ranks[str(column.name)])})
        return column

    return table.sort_values(["arm", "mode", "size", "structure"], key=key, kind="stable").reset_index(drop=True)
