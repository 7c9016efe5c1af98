"""Dice against the click budget: ``clinseg evaluate PRED REF --out DIR --clicks K``.

Reads the rounds that ``clinseg predict --clicks K`` wrote (``PRED/clicks/<k>`` for k < K, ``PRED`` for K),
evaluates each against the reference, and writes ``DIR/dice_vs_clicks.csv`` (per structure and budget: mean,
std and number of cases of Dice and HD95) and ``DIR/dice_vs_clicks.png``: how much each further click per
slice (or per volume) buys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from clinseg.errors import DatasetError
from clinseg.evaluation.evaluate import evaluate_predictions, write_table
from clinseg.evaluation.plots import figure_png, plt
from clinseg.io.atomic import write_bytes


def round_folder(pred_dir: Path, k: int, clicks: int) -> Path:
    """Where the result after ``k`` of ``clicks`` rounds lies."""
    folder = pred_dir if k == clicks else pred_dir / "clicks" / str(k)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: missing; predict with 'clinseg predict RUN IN {pred_dir} --clicks {clicks}' "
                           "first")
    return folder


def dice_vs_clicks(pred_dir: str | Path, dataset_dir: str | Path, clicks: int, split: str = "test",
                   tolerance_mm: float = 2.0) -> pd.DataFrame:
    """Per structure and click budget 1..``clicks``: Dice and HD95 mean/std over the delineated cases."""
    pred_dir = Path(pred_dir)
    rows = []
    for k in range(1, clicks + 1):
        metrics = evaluate_predictions(round_folder(pred_dir, k, clicks), dataset_dir, split, tolerance_mm)
        scored = metrics[metrics["delineated"]]
        for structure, group in scored.groupby("structure", sort=False):
            rows.append({"clicks": k, "structure": structure, "cases": len(group),
                         "dice_mean": group["dice"].mean(), "dice_std": group["dice"].std(ddof=1),
                         "hd95_mean": group["hd95"].mean(), "hd95_std": group["hd95"].std(ddof=1)})
    return pd.DataFrame(rows)


def dice_vs_clicks_figure(table: pd.DataFrame, unit: str = "per slice") -> bytes:
    """Mean Dice (± std) against the number of clicks, one line per structure; PNG bytes."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for structure, group in table.groupby("structure", sort=False):
        ax.errorbar(group["clicks"], group["dice_mean"], yerr=group["dice_std"].fillna(0), marker="o",
                    capsize=3, label=str(structure))
    ax.set(xlabel=f"clicks {unit}", ylabel="Dice", title="Dice vs clicks", ylim=(0, 1.02))
    ax.set_xticks(sorted(table["clicks"].unique()))
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return figure_png(fig)


def write_dice_vs_clicks(pred_dir: str | Path, dataset_dir: str | Path, out_dir: str | Path, clicks: int,
                         split: str = "test", tolerance_mm: float = 2.0) -> pd.DataFrame:
    """Compute :func:`dice_vs_clicks` and write its CSV and figure into ``out_dir``."""
    table = dice_vs_clicks(pred_dir, dataset_dir, clicks, split, tolerance_mm)
    out_dir = Path(out_dir)
    info = Path(pred_dir) / "clicks.json"
    slice_wise = info.is_file() and json.loads(info.read_text(encoding="utf-8")).get("slice_axis") is not None
    write_table(table, out_dir / "dice_vs_clicks.csv")
    write_bytes(out_dir / "dice_vs_clicks.png",
                dice_vs_clicks_figure(table, "per slice" if slice_wise else "per volume"))
    return table
