"""Summary statistics against hand-computed means, standard deviations and Student-t intervals."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from clinseg.evaluation import METRIC_NAMES, format_summary_table, mean_ci, summarise

# t quantile t_{0.975, 2} from a t table (scipy.stats.t.ppf(0.975, 2) = 4.302652729911275).
T_975_DF2 = 4.302652729911275


def _row(case: str, structure: str, delineated: bool, dice: float, hd95: float) -> dict[str, object]:
    row: dict[str, object] = {name: 0.5 for name in METRIC_NAMES}
    row.update(case=case, structure=structure, delineated=delineated, dice=dice, hd95=hd95)
    return row


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row("c1", "liver", True, 0.7, 2.0),
            _row("c2", "liver", True, 0.8, 4.0),
            _row("c3", "liver", True, 0.9, 6.0),
            _row("c4", "liver", False, 0.0, float("nan")),  # not delineated: must not count as 0
            _row("c1", "spleen", True, 0.6, 3.0),
            _row("c2", "spleen", True, 0.0, float("nan")),  # missed: dice 0 counts, hd95 undefined
            _row("c3", "spleen", False, 1.0, 0.0),  # not delineated: must not count as 1
            _row("c1", "pancreas", False, 1.0, 0.0),  # never delineated
        ]
    )


def test_mean_ci_matches_hand_computed_t_interval() -> None:
    # values 1, 2, 3: mean 2, s = sqrt(((-1)^2 + 0 + 1^2) / 2) = 1, half width = 4.302653 * 1 / sqrt(3).
    half = T_975_DF2 * 1.0 / math.sqrt(3)
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert (low, high) == pytest.approx((2.0 - half, 2.0 + half))
    assert (low, high) == pytest.approx((-0.484138, 4.484138), abs=1e-6)


def test_mean_ci_ignores_nan_and_handles_tiny_samples() -> None:
    assert mean_ci([1.0, float("nan"), 2.0, 3.0]) == pytest.approx(mean_ci([1.0, 2.0, 3.0]))
    mean, low, high = mean_ci([0.4])
    assert mean == 0.4 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert all(math.isnan(v) for v in mean_ci([float("nan")]))
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], confidence=95)


def test_summarise_per_structure(table: pd.DataFrame) -> None:
    summary = summarise(table).set_index("structure")
    assert list(summary.index) == ["liver", "spleen", "pancreas", "mean"]

    liver = summary.loc["liver"]
    # delineated dice 0.7, 0.8, 0.9 (the not-delineated 0.0 is out): mean 0.8, s = 0.1,
    # CI = 0.8 -/+ 4.302653 * 0.1 / sqrt(3) = 0.8 -/+ 0.248414.
    assert liver["n"] == 3 and liver["dice_n"] == 3
    assert liver["dice_mean"] == pytest.approx(0.8)
    assert liver["dice_std"] == pytest.approx(0.1)
    assert liver["dice_ci_low"] == pytest.approx(0.8 - T_975_DF2 * 0.1 / math.sqrt(3))
    assert liver["dice_ci_high"] == pytest.approx(0.8 + T_975_DF2 * 0.1 / math.sqrt(3))
    # hd95 2, 4, 6: mean 4, s = 2.
    assert liver["hd95_mean"] == pytest.approx(4.0) and liver["hd95_std"] == pytest.approx(2.0)

    spleen = summary.loc["spleen"]
    # dice 0.6 and 0.0 (the not-delineated 1.0 is out): mean 0.3, s = sqrt(2 * 0.3^2 / 1) = 0.424264.
    assert spleen["n"] == 2 and spleen["dice_n"] == 2
    assert spleen["dice_mean"] == pytest.approx(0.3)
    assert spleen["dice_std"] == pytest.approx(math.sqrt(0.18))
    # hd95: only 3.0 is defined -> n 1, std and CI undefined.
    assert spleen["hd95_n"] == 1 and spleen["hd95_mean"] == pytest.approx(3.0)
    assert math.isnan(spleen["hd95_std"]) and math.isnan(spleen["hd95_ci_low"]) and math.isnan(spleen["hd95_ci_high"])

    pancreas = summary.loc["pancreas"]
    assert pancreas["n"] == 0 and pancreas["dice_n"] == 0
    assert math.isnan(pancreas["dice_mean"]) and math.isnan(pancreas["dice_std"])


def test_mean_row_is_the_mean_of_structure_means(table: pd.DataFrame) -> None:
    mean = summarise(table).set_index("structure").loc["mean"]
    # structure means: liver 0.8, spleen 0.3 (pancreas has none) -> (0.8 + 0.3) / 2 = 0.55;
    # s = sqrt(2 * 0.25^2) = 0.353553, CI half width with 1 df = t_{0.975,1} * s / sqrt(2) = 12.706205 * 0.25.
    assert mean["n"] == 2 and mean["dice_n"] == 2
    assert mean["dice_mean"] == pytest.approx(0.55)
    assert mean["dice_std"] == pytest.approx(math.sqrt(0.125))
    assert mean["dice_ci_high"] == pytest.approx(0.55 + 12.706204736174707 * 0.25)
    assert mean["hd95_mean"] == pytest.approx((4.0 + 3.0) / 2)


def test_summarise_columns_and_input_untouched(table: pd.DataFrame) -> None:
    before = table.copy()
    summary = summarise(table)
    pd.testing.assert_frame_equal(table, before)
    for name in METRIC_NAMES:
        for stat in ("n", "mean", "std", "ci_low", "ci_high"):
            assert f"{name}_{stat}" in summary.columns
    assert summary["n"].dtype == np.int64


def test_summarise_rejects_bad_tables(table: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="hd95"):
        summarise(table.drop(columns=["hd95"]))
    bad = table.astype({"delineated": object})
    bad.loc[0, "delineated"] = None
    with pytest.raises(ValueError, match="delineated"):
        summarise(bad)
    with pytest.raises(ValueError, match="reserved"):
        summarise(table.replace({"structure": {"pancreas": "mean"}}))


def test_summarise_empty_table_gives_only_an_empty_mean_row(table: pd.DataFrame) -> None:
    summary = summarise(table.iloc[:0])
    assert list(summary["structure"]) == ["mean"]
    assert summary.loc[0, "n"] == 0 and math.isnan(summary.loc[0, "dice_mean"])


def test_format_summary_table(table: pd.DataFrame) -> None:
    rendered = format_summary_table(summarise(table))
    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None).print(rendered)
    text = buffer.getvalue()
    assert "0.800 ± 0.100 [0.552, 1.048]" in text  # liver dice, CI 0.8 -/+ 0.248
    assert "4.00 ± 2.00" in text  # liver hd95
    assert "3.00 ± n/a" in text  # spleen hd95 with one value
    assert "pancreas" in text and "mean" in text
