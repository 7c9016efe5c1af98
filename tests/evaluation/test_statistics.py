"""Study statistics on a hand-built results table: network-level CIs, paired/unpaired tests, saturation."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clinseg.evaluation.statistics import (
    compare_arms,
    compare_modes,
    comparison_columns,
    learning_curve_summary,
    network_means,
    paired_test,
    saturation_points,
    unpaired_test,
)

# Dice = BASE[size] + ARM + MODE + REPEAT + CASE + STRUCT (+ PRETRAINED_EXTRA for the pretrained arm).
BASE = {1: 0.50, 3: 0.70, 7: 0.80}
ARM = {"baseline": 0.0, "pretrained": 0.05}
MODE = {"concentrated": 0.0, "distributed": -0.035}
REPEAT = {0: -0.02, 1: 0.02}
CASE = {"t0": -0.01, "t1": 0.0, "t2": 0.01}
STRUCT = {"A": 0.0, "B": 0.05, "C": -0.10}
PRETRAINED_EXTRA = {"t0": 0.0, "t1": 0.01, "t2": 0.03}  # + 0.005 * repeat: every paired difference differs

# Student-t quantiles t_{0.975, df} (scipy.stats.t.ppf(0.975, df)).
T_975 = {1: 12.706204736174698, 2: 4.302652729911275, 5: 2.570581835636314}


def make_results() -> pd.DataFrame:
    """2 arms x 2 modes x sizes 1, 3, 7 x 2 repeats x 3 cases x 3 structures; C is not delineated in t2;
    HD95 = 12 / size + case index, NaN (empty prediction) for baseline/concentrated/M=1/repeat 0/t0/A."""
    rows = []
    for arm, mode, size, repeat, case, structure in itertools.product(ARM, MODE, BASE, REPEAT, CASE, STRUCT):
        dice = BASE[size] + ARM[arm] + MODE[mode] + REPEAT[repeat] + CASE[case] + STRUCT[structure]
        if arm == "pretrained":
            dice += PRETRAINED_EXTRA[case] + 0.005 * repeat
        hd95 = 12.0 / size + list(CASE).index(case)
        if (arm, mode, size, repeat, case, structure) == ("baseline", "concentrated", 1, 0, "t0", "A"):
            hd95 = math.nan
        delineated = not (case == "t2" and structure == "C")
        rows.append({"arm": arm, "mode": mode, "size": size, "repeat": repeat,
                     "run": f"{arm}_{mode}_M{size}_r{repeat}", "case": case, "structure": structure,
                     "delineated": delineated, "dice": dice if delineated else math.nan,
                     "hd95": hd95 if delineated else math.nan, "assd": 1.0, "surface_dice": 0.5})
    return pd.DataFrame(rows)


@pytest.fixture
def results() -> pd.DataFrame:
    return make_results()


def _cell(table: pd.DataFrame, **where: object) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    assert mask.sum() == 1, where
    return table[mask].iloc[0]


def test_network_means_average_over_cases_and_skip_undelineated(results: pd.DataFrame) -> None:
    runs = network_means(results)
    assert len(runs) == 2 * 2 * 3 * 2 * 3  # one row per network and structure
    row = _cell(runs, arm="baseline", mode="concentrated", size=3, repeat=0, structure="A")
    assert row["cases"] == 3
    assert row["dice"] == pytest.approx(0.68)  # 0.67, 0.68, 0.69
    c = _cell(runs, arm="baseline", mode="concentrated", size=3, repeat=0, structure="C")
    assert c["cases"] == 2 and c["dice"] == pytest.approx(0.575)  # 0.57, 0.58 (t2 has no reference)
    nan_hd = _cell(runs, arm="baseline", mode="concentrated", size=1, repeat=0, structure="A")
    assert nan_hd["hd95"] == pytest.approx(12.0 + 1.5)  # t0 is NaN: mean of 13 and 14


def test_summary_ci_is_over_network_means(results: pd.DataFrame) -> None:
    summary = learning_curve_summary(results, min_networks=2)
    assert len(summary) == 2 * 2 * 3 * 3
    row = _cell(summary, arm="baseline", mode="concentrated", size=3, structure="A")
    # network means 0.68 and 0.72: mean 0.70, s = 0.04 / sqrt(2), half width = t_{.975,1} * s / sqrt(2) = t * 0.02
    assert (row["networks"], row["cases"], row["ci_unit"], row["dice_n"]) == (2, 6, "network", 2)
    assert row["dice_mean"] == pytest.approx(0.70)
    assert row["dice_ci_low"] == pytest.approx(0.70 - T_975[1] * 0.02)
    assert row["dice_ci_high"] == pytest.approx(0.70 + T_975[1] * 0.02)
    # HD95 = 4 + case index in both networks: no spread between networks
    assert row["hd95_mean"] == pytest.approx(5.0) and row["hd95_ci_low"] == pytest.approx(5.0)


def test_summary_with_too_few_networks_pools_network_case_values(results: pd.DataFrame) -> None:
    row = _cell(learning_curve_summary(results), arm="baseline", mode="concentrated", size=3, structure="A")
    values = np.array([0.67, 0.68, 0.69, 0.71, 0.72, 0.73])  # two networks of three cases each
    half = T_975[5] * values.std(ddof=1) / math.sqrt(6)
    assert (row["networks"], row["ci_unit"], row["dice_n"]) == (2, "case", 6)
    assert (row["dice_ci_low"], row["dice_ci_high"]) == pytest.approx((values.mean() - half, values.mean() + half))
    assert row["dice_std"] == pytest.approx(values.std(ddof=1))


def test_summary_falls_back_to_cases_with_one_network(results: pd.DataFrame) -> None:
    single = results[~((results["arm"] == "pretrained") & (results["mode"] == "distributed")
                       & (results["size"] == 7) & (results["repeat"] == 1))]
    row = _cell(learning_curve_summary(single), arm="pretrained", mode="distributed", size=7, structure="B")
    # cases: 0.8 + 0.05 - 0.035 - 0.02 + 0.05 + (-0.01 + 0, 0 + 0.01, 0.01 + 0.03) = 0.835, 0.855, 0.885
    assert (row["networks"], row["ci_unit"], row["dice_n"]) == (1, "case", 3)
    values = np.array([0.835, 0.855, 0.885])
    half = T_975[2] * values.std(ddof=1) / math.sqrt(3)
    assert row["dice_mean"] == pytest.approx(values.mean())
    assert (row["dice_ci_low"], row["dice_ci_high"]) == pytest.approx((values.mean() - half, values.mean() + half))


def test_summary_order_follows_given_structures(results: pd.DataFrame) -> None:
    summary = learning_curve_summary(results, structures=["C", "A"])
    assert list(summary["structure"][:3]) == ["C", "A", "B"]
    assert list(summary["size"][:9]) == [1, 1, 1, 3, 3, 3, 7, 7, 7]
    assert list(pd.unique(summary["arm"])) == ["baseline", "pretrained"]


def test_paired_arm_comparison_equals_scipy_on_the_pairs(results: pd.DataFrame) -> None:
    # baseline, concentrated, M=3, A: repeat 0 -> 0.67, 0.68, 0.69; repeat 1 -> 0.71, 0.72, 0.73
    base = [0.67, 0.68, 0.69, 0.71, 0.72, 0.73]
    # pretrained adds 0.05 + (0, 0.01, 0.03) + 0.005 * repeat
    pre = [0.72, 0.74, 0.77, 0.765, 0.785, 0.815]
    for test, scipy_test in (("wilcoxon", stats.wilcoxon), ("ttest", stats.ttest_rel)):
        table = compare_arms(results, test=test)  # type: ignore[arg-type]
        row = _cell(table, mode_a="concentrated", size=3, structure="A", metric="dice")
        expected = scipy_test(base, pre)
        assert (row["arm_a"], row["arm_b"], row["comparison"], row["n_a"], row["n_b"]) == \
            ("baseline", "pretrained", "arms", 6, 6)
        assert row["mean_a"] == pytest.approx(0.70)
        assert row["difference"] == pytest.approx(np.mean(base) - np.mean(pre))
        assert row["p_value"] == pytest.approx(expected.pvalue)
        assert row["statistic"] == pytest.approx(expected.statistic)
    assert list(table.columns) == comparison_columns()
    # every (mode, size, structure, metric) compared once: 2 x 3 x 3 x 2
    assert len(table) == 36


def test_mode_comparison_is_unpaired(results: pd.DataFrame) -> None:
    conc = [0.67, 0.68, 0.69, 0.71, 0.72, 0.73]
    dist = [0.635, 0.645, 0.655, 0.675, 0.685, 0.695]  # 0.035 lower; no value tied with ``conc``
    for test, expected in (("mannwhitney", stats.mannwhitneyu(conc, dist)),
                           ("welch", stats.ttest_ind(conc, dist, equal_var=False))):
        table = compare_modes(results, test=test)  # type: ignore[arg-type]
        row = _cell(table, arm_a="baseline", size=3, structure="A", metric="dice")
        assert (row["mode_a"], row["mode_b"], row["comparison"]) == ("concentrated", "distributed", "modes")
        assert row["difference"] == pytest.approx(0.035)
        assert row["p_value"] == pytest.approx(expected.pvalue)
    hd = _cell(table, arm_a="baseline", size=1, structure="A", metric="hd95")
    assert (hd["n_a"], hd["n_b"]) == (5, 6)  # the NaN HD95 is dropped


def test_degenerate_tests_give_nan_and_a_note_without_warnings(results: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = paired_test([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
        assert math.isnan(same.p_value) and same.note == "all differences are zero"
        one = paired_test([0.5, math.nan, 0.7], [0.4, 0.6, math.nan])
        assert math.isnan(one.p_value) and one.n_a == 1 and "fewer than 2 pairs" in one.note
        flat = paired_test([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], "ttest")
        assert math.isnan(flat.p_value) and "no variance" in flat.note
        equal = unpaired_test([0.5, 0.5], [0.5, 0.5, math.nan], "welch")
        assert math.isnan(equal.p_value) and equal.note == "all values are equal" and equal.n_b == 2
        small = unpaired_test([0.5], [0.1, 0.2])
        assert math.isnan(small.p_value) and "fewer than 2" in small.note
        twins = results.copy()
        twins.loc[twins["arm"] == "pretrained", "dice"] = twins.loc[twins["arm"] == "baseline", "dice"].to_numpy()
        dice = compare_arms(twins, metrics=("dice",))
        assert dice["p_value"].isna().all() and (dice["note"] == "all differences are zero").all()
    with pytest.raises(ValueError, match="unknown paired test"):
        paired_test([1.0], [1.0], "mannwhitney")  # type: ignore[arg-type]


def test_single_arm_and_mode_give_empty_comparisons(results: pd.DataFrame) -> None:
    one = results[(results["arm"] == "baseline") & (results["mode"] == "concentrated")]
    assert compare_arms(one).empty and compare_modes(one).empty
    assert list(compare_arms(one).columns) == comparison_columns()


def test_saturation_point_from_the_study(results: pd.DataFrame) -> None:
    summary = learning_curve_summary(results)
    # baseline/concentrated/A: mean Dice 0.50, 0.70, 0.80 at M = 1, 3, 7 (within tolerance is inclusive)
    for tolerance, size in ((0.02, 7), (0.1, 3), (0.3, 1)):
        row = _cell(saturation_points(summary, tolerance), arm="baseline", mode="concentrated", structure="A")
        assert (row["saturation_size"], row["best_size"]) == (size, 7)
        assert row["best_mean"] == pytest.approx(0.80)


def test_saturation_point_on_a_hand_built_curve() -> None:
    summary = pd.DataFrame({
        "arm": "a", "mode": "concentrated", "structure": ["x"] * 4 + ["y"] * 2, "size": [1, 2, 4, 8, 1, 2],
        "dice_mean": [0.60, 0.83, 0.85, 0.84, math.nan, math.nan],
        "hd95_mean": [10.0, 5.0, 3.0, 3.5, math.nan, math.nan],
    })
    x = _cell(saturation_points(summary, 0.02), structure="x")
    assert (x["best_size"], x["best_mean"], x["saturation_size"], x["sizes"]) == (4, 0.85, 2, 4)
    assert _cell(saturation_points(summary, 0.01), structure="x")["saturation_size"] == 4
    assert _cell(saturation_points(summary, 2.0, "hd95"), structure="x")["saturation_size"] == 2  # 5 <= 3 + 2
    assert _cell(saturation_points(summary, 1.0, "hd95"), structure="x")["saturation_size"] == 4
    y = _cell(saturation_points(summary), structure="y")
    assert y["sizes"] == 0 and pd.isna(y["saturation_size"])


def test_paired_test_one_tailed_halves_the_p_value_in_the_observed_direction() -> None:
    a, b = [3.0, 4.0, 5.0, 8.0], [1.0, 3.0, 4.0, 5.0]  # d = (2, 1, 1, 3): mean 1.75, sd sqrt(2.75 / 3)
    t_by_hand = 1.75 / (math.sqrt(2.75 / 3) / 2)
    two = paired_test(a, b, "ttest")
    greater = paired_test(a, b, "ttest", alternative="greater")
    less = paired_test(a, b, "ttest", alternative="less")
    assert two.test == "paired t-test" and two == paired_test(a, b, "ttest", alternative="two-sided")
    assert greater.statistic == pytest.approx(t_by_hand) == pytest.approx(3.655631, rel=1e-6)
    assert greater.p_value == pytest.approx(two.p_value / 2)
    assert less.p_value == pytest.approx(1 - two.p_value / 2)
    assert greater.test == "paired t-test, one-tailed (greater)" and greater.note == ""
    # Wilcoxon, d = (1, 2, 3, 4) all positive: W+ = 10 is the largest of the 2^4 equally likely sign patterns
    w = paired_test([2.0, 4.0, 6.0, 8.0], [1.0, 2.0, 3.0, 4.0], alternative="greater")
    assert w.p_value == pytest.approx(1 / 16) and w.test == "Wilcoxon signed-rank, one-tailed (greater)"
    undefined = paired_test([1.0], [0.0], "ttest", alternative="greater")
    assert math.isnan(undefined.p_value) and undefined.note.startswith("fewer than 2 pairs")
    with pytest.raises(ValueError, match="unknown alternative 'bigger'"):
        paired_test(a, b, "ttest", alternative="bigger")  # type: ignore[arg-type]
