"""Figures of a run: training curves and per-structure metric box plots (matplotlib, Agg backend)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def training_curves(records: Sequence[dict[str, Any]]) -> Figure:
    """Loss per iteration (raw and moving average) and validation Dice (mean and per structure)."""
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 3.6))
    it = np.array([r["iteration"] for r in records])
    loss = np.array([r["loss"] for r in records], dtype=float)
    if len(loss):
        ax_loss.plot(it, loss, color="0.75", lw=0.8, label="loss")
        k = max(1, len(loss) // 30)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax_loss.plot(it[k - 1:], smooth, color="C0", lw=1.6, label=f"moving average ({k})")
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="iteration", ylabel="training loss", title="Training loss")
    ax_loss.legend(loc="upper right", fontsize=8)
    val = [r for r in records if "val_dice" in r]
    if val:
        vit = [r["iteration"] for r in val]
        keys = sorted({k for r in val for k in r if k.startswith("val_dice/")})
        for key in keys:
            ax_val.plot(vit, [r.get(key, np.nan) for r in val], lw=0.8, alpha=0.6, label=key[len("val_dice/"):])
        ax_val.plot(vit, [r["val_dice"] for r in val], color="k", lw=2.2, marker="o", label="mean")
        ax_val.legend(fontsize=6, ncol=2, loc="lower right")
    ax_val.set(xlabel="iteration", ylabel="Dice", title="Validation Dice", ylim=(0, 1))
    fig.tight_layout()
    return fig


def metric_boxplot(metrics: pd.DataFrame, metric: str = "dice", structures: Sequence[str] | None = None) -> Figure:
    """Box plot of ``metric`` per structure over delineated test cases (points overlaid)."""
    table = metrics[metrics["delineated"].astype(bool)]
    names = list(structures) if structures is not None else list(dict.fromkeys(table["structure"]))
    data = [table.loc[table["structure"] == s, metric].dropna().to_numpy() for s in names]
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) + 2), 3.8))
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, color="C1", zorder=3)
    ax.set(ylabel=metric, title=f"{metric} per structure (test set)")
    if metric in ("dice", "surface_dice", "sensitivity", "precision"):
        ax.set_ylim(0, 1.02)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig
