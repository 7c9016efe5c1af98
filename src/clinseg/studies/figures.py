"""Figures of a learning-curve study (matplotlib, Agg backend): learning curves and mode/arm comparisons.

Every function returns a :class:`matplotlib.figure.Figure`; render it with
:func:`clinseg.evaluation.plots.figure_png`. The x axis is M (references per class) on a log scale with a
tick at every size of the study: the seed study's sizes "approximately double in each step" (Fig. 5).
Colours are the Okabe-Ito colour-blind-safe palette; with more lines than colours, markers and line
styles tell them apart, so 11+ structures stay readable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from clinseg.evaluation.statistics import structure_order

#: Okabe-Ito colours without yellow (too pale on white): blue, orange, green, vermillion, purple, sky blue,
#: black.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_LINESTYLES = ("-", "--", ":", "-.")
_LABELS = {"dice": "Dice", "hd95": "HD95 (mm)", "assd": "ASSD (mm)", "surface_dice": "surface Dice"}
_UNIT_01 = ("dice", "surface_dice")


def line_style(index: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``index``-th line: unique for the first 70 lines."""
    return {"color": PALETTE[index % len(PALETTE)], "marker": _MARKERS[index % len(_MARKERS)],
            "linestyle": _LINESTYLES[(index // len(PALETTE)) % len(_LINESTYLES)]}


def size_label(mode: str | None = None) -> str:
    """x-axis label: M is patients in ``patients`` mode, references per class otherwise."""
    return "patients (M)" if mode == "patients" else "references per class (M)"


def learning_curve_figure(
    summary: pd.DataFrame, arm: str, mode: str, metric: str = "dice", structures: Sequence[str] | None = None
) -> Figure:
    """Mean ``metric`` vs M for every structure of one ``(arm, mode)``, with CI error bars (seed Fig. 4).

    Parameters
    ----------
    summary : pd.DataFrame
        Output of :func:`clinseg.evaluation.statistics.learning_curve_summary` (``<metric>_mean``,
        ``<metric>_ci_low``, ``<metric>_ci_high``, ``ci_unit``).
    arm, mode : str
        The cell to draw.
    metric : str
        ``dice``, ``hd95`` or another summarised metric.
    structures : sequence of str, optional
        Line order (default: order in ``summary``).

    Returns
    -------
    Figure
        One axes, one line per structure; lines are shifted slightly along x so the bars do not overlap.
    """
    cell = summary[(summary["arm"] == arm) & (summary["mode"] == mode)]
    names = structure_order(cell, structures) if len(cell) else []
    sizes = sorted(pd.unique(cell["size"]))
    fig, ax = plt.subplots(figsize=(7.0 + (1.6 if len(names) > 14 else 0.0), 4.2))
    for index, name in enumerate(names):
        curve = cell[cell["structure"] == name].sort_values("size")
        x = curve["size"].to_numpy(dtype=float) * _dodge(index, len(names))
        mean = curve[f"{metric}_mean"].to_numpy(dtype=float)
        low = np.nan_to_num(mean - curve[f"{metric}_ci_low"].to_numpy(dtype=float), nan=0.0)
        high = np.nan_to_num(curve[f"{metric}_ci_high"].to_numpy(dtype=float) - mean, nan=0.0)
        ax.errorbar(x, mean, yerr=np.vstack([low, high]), label=str(name), capsize=2, lw=1.4, ms=4,
                    **line_style(index))
    _size_axis(ax, sizes, mode)
    _metric_axis(ax, metric)
    units = set(cell["ci_unit"]) if len(cell) else set()
    bars = "95% CI over networks" if units == {"network"} else \
        "95% CI over (network, test case) values" if units == {"case"} else \
        "95% CI over networks (over network x case values where < 3 networks)"
    ax.set_title(f"{_LABELS.get(metric, metric)} vs {size_label(mode).split(' (')[0]}: arm {arm}, {mode}\n"
                 f"mean over networks of each network's test-set mean; bars: {bars}", fontsize=10)
    if names:
        ax.legend(title="structure", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  ncol=1 if len(names) <= 14 else 2, frameon=False)
    fig.tight_layout()
    return fig


def mode_comparison_figure(
    runs: pd.DataFrame, arm: str, metric: str = "dice", structures: Sequence[str] | None = None
) -> Figure:
    """Sampling modes of one arm side by side, one panel per structure (seed Fig. 5).

    Parameters
    ----------
    runs : pd.DataFrame
        Output of :func:`clinseg.evaluation.statistics.network_means` (one row per network and structure).
    arm : str
        The arm to draw.
    metric : str
        Metric column of ``runs``.
    structures : sequence of str, optional
        Panel order.

    Returns
    -------
    Figure
        A grid of panels; in each, one line per mode (mean over networks) and every network's mean as a
        jittered point ("results from all experiment repetitions are plotted together").
    """
    return _comparison_grid(runs[runs["arm"] == arm], "mode", metric, structures, f"sampling modes, arm {arm}")


def arm_comparison_figure(
    runs: pd.DataFrame, mode: str, metric: str = "dice", structures: Sequence[str] | None = None
) -> Figure:
    """Arms of one sampling mode side by side, one panel per structure; as :func:`mode_comparison_figure`."""
    return _comparison_grid(runs[runs["mode"] == mode], "arm", metric, structures, f"arms, {mode} mode",
                            mode=mode)


def _comparison_grid(runs: pd.DataFrame, by: str, metric: str, structures: Sequence[str] | None,
                     what: str, mode: str | None = None) -> Figure:
    names = structure_order(runs, structures) if len(runs) else []
    levels = list(pd.unique(runs[by]))
    sizes = sorted(pd.unique(runs["size"]))
    if mode is None and len(pd.unique(runs["mode"])) == 1:
        mode = str(runs["mode"].iloc[0])
    ncols = max(1, min(4, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.9 * ncols + 0.4, 2.4 * nrows + 0.9),
                             sharex=True, sharey=metric in _UNIT_01, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, name in zip(axes.flat, names):
        panel = runs[runs["structure"] == name]
        for index, level in enumerate(levels):
            data = panel[panel[by] == level]
            if data.empty:
                continue
            style = line_style(index)
            dodge = _dodge(index, len(levels), step=0.06)
            x = data["size"].to_numpy(dtype=float) * dodge * np.exp(rng.uniform(-0.04, 0.04, len(data)))
            ax.scatter(x, data[metric], s=14, alpha=0.6, color=style["color"], marker=style["marker"],
                       linewidths=0)
            line = data.groupby("size")[metric].mean()
            ax.plot(line.index.to_numpy(dtype=float) * dodge, line.to_numpy(), label=str(level), lw=1.6,
                    ms=0, color=style["color"], linestyle=style["linestyle"])
        ax.set_title(str(name), fontsize=9)
        _size_axis(ax, sizes, mode, label=False)
        _metric_axis(ax, metric, label=False)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(names):]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, title=by, loc="upper right", fontsize=8, ncol=min(len(levels), 4),
                   frameon=False)
    fig.supxlabel(size_label(mode), fontsize=9)
    fig.supylabel(_LABELS.get(metric, metric), fontsize=9)
    fig.suptitle(f"{_LABELS.get(metric, metric)}: {what}\nlines: mean over networks; points: each network's "
                 "test-set mean", fontsize=10, x=0.02, ha="left")
    fig.tight_layout()
    return fig


def _dodge(index: int, count: int, step: float = 0.02) -> float:
    """Multiplicative x shift of line ``index`` of ``count`` so that lines at the same M do not overlap."""
    return float(math.exp(step * (index - (count - 1) / 2.0)))


def _size_axis(ax: Axes, sizes: Sequence[Any], mode: str | None, label: bool = True) -> None:
    ax.set_xscale("log")
    if sizes:
        ticks = [float(s) for s in sizes]
        ax.set_xticks(ticks, [str(int(s)) for s in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(min(ticks) / 1.35, max(ticks) * 1.35)
    if label:
        ax.set_xlabel(size_label(mode))
    ax.grid(True, which="major", alpha=0.3)


def _metric_axis(ax: Axes, metric: str, label: bool = True) -> None:
    if metric in _UNIT_01:
        ax.set_ylim(0.0, 1.02)
    elif metric in ("hd95", "assd"):
        ax.set_ylim(bottom=0.0)
    if label:
        ax.set_ylabel(_LABELS.get(metric, metric))
