"""What each arm costs and where it helps: training/inference measures per arm and seed 003's
"benefit of localisation vs foreground %" figure.

Inputs are the tables ``clinseg study report`` writes: ``runs.csv`` (one row per run, with the measures of
``measures.json`` flattened by :func:`clinseg.studies.results.run_table`), ``structures.csv`` (foreground
percentage of each structure in the test volumes) and the learning-curve summary.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from clinseg.studies.figures import line_style

_MEASURES = {
    "train_seconds": "training s (all networks)",
    "train_seconds_to_best": "s to best validation",
    "converged": "converged",
    "inference_seconds_per_case": "inference s / case",
    "voxels_segmented_fraction": "voxels segmented / volume",
}


def cost_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std) of each available measure per ``(arm, mode, size)`` over the finished runs; the
    convergence column is the convergence rate (seed 003: validation Dice >= 0.1 after 20 epochs)."""
    done = runs[runs["status"] == "done"]
    present = [m for m in _MEASURES if m in done.columns and done[m].notna().any()]
    if done.empty or not present:
        return pd.DataFrame()
    rows = []
    for (arm, mode, size), group in done.groupby(["arm", "mode", "size"], sort=False):
        row: dict[str, object] = {"arm": arm, "mode": mode, "size": size, "runs": len(group)}
        for measure in present:
            values = group[measure].astype(float)
            row[_MEASURES[measure]] = values.mean()
            if measure not in ("converged",) and len(values.dropna()) > 1:
                row[f"{_MEASURES[measure]} std"] = values.std(ddof=1)
        rows.append(row)
    return pd.DataFrame(rows)


def dice_gain(summary: pd.DataFrame, foreground: pd.DataFrame, reference_arm: str) -> pd.DataFrame:
    """Per (arm, mode, size, structure): mean Dice minus ``reference_arm``'s, with the foreground %."""
    keys = ["mode", "size", "structure"]
    base = summary[summary["arm"] == reference_arm][[*keys, "dice_mean"]].rename(columns={"dice_mean": "ref"})
    other = summary[summary["arm"] != reference_arm][["arm", *keys, "dice_mean"]]
    table = other.merge(base, on=keys).merge(foreground[["structure", "foreground_percent"]], on="structure")
    table["dice_gain"] = table["dice_mean"] - table["ref"]
    return table.drop(columns="ref")


def foreground_gain_figure(gain: pd.DataFrame, reference_arm: str) -> Figure:
    """Dice gain over ``reference_arm`` against the structure's foreground % (log x), one marker per arm
    and structure (largest size of each mode), as seed 003's Fig. 4."""
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    largest = gain[gain["size"] == gain.groupby("mode")["size"].transform("max")]
    for i, (arm, group) in enumerate(largest.groupby("arm", sort=False)):
        style = line_style(i)
        ax.scatter(group["foreground_percent"], group["dice_gain"], color=style["color"], marker=style["marker"],
                   s=46, label=arm, zorder=3)
        for _, row in group.iterrows():
            ax.annotate(row["structure"], (row["foreground_percent"], row["dice_gain"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
    ax.axhline(0.0, color="#777", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("foreground % of the test volume (log)")
    ax.set_ylabel(f"mean Dice gain over {reference_arm}")
    ax.set_title("Benefit against structure size")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
