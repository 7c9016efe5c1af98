"""The run's HTML report: training curves, per-structure Dice box plot, summary table, and overlays of the
best, median and worst test cases. One self-contained file (figures embedded as PNG), written atomically.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from clinseg.data.dataset import load_dataset
from clinseg.data.loading import load_targets
from clinseg.errors import CheckpointError
from clinseg.evaluation.html import STYLE, img_tag
from clinseg.evaluation.plots import figure_png, metric_boxplot, training_curves
from clinseg.io.atomic import write_text
from clinseg.io.image import read_image
from clinseg.training.metrics_log import MetricsLog
from clinseg.viz.overlay import overlay_figure


def _summary_html(summary: pd.DataFrame) -> str:
    rows = []
    for _, r in summary.iterrows():
        def cell(metric: str, digits: int, r: pd.Series = r) -> str:
            mean, lo, hi = r.get(f"{metric}_mean"), r.get(f"{metric}_ci_low"), r.get(f"{metric}_ci_high")
            if pd.isna(mean):
                return "n/a"
            ci = "" if pd.isna(lo) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
            return f"{mean:.{digits}f}{ci}"
        rows.append(f"<tr><td>{html.escape(str(r['structure']))}</td><td>{int(r['n'])}</td>"
                    f"<td>{cell('dice', 3)}</td><td>{cell('hd95', 2)}</td><td>{cell('assd', 2)}</td>"
                    f"<td>{cell('surface_dice', 3)}</td></tr>")
    return ("<table><tr><th>structure</th><th>n</th><th>Dice [95% CI]</th><th>HD95 mm</th><th>ASSD mm</th>"
            "<th>surface Dice</th></tr>" + "".join(rows) + "</table>")


def _case_overlays(run_dir: Path, metrics: pd.DataFrame, dataset_dir: Path) -> str:
    """Overlays (reference vs prediction) of the best, median and worst test case by mean Dice."""
    pred_dir = run_dir / "predictions"
    scored = metrics[metrics["delineated"].astype(bool)].groupby("case")["dice"].mean().sort_values()
    if scored.empty or not pred_dir.is_dir():
        return "<p class=muted>No predictions to show.</p>"
    picks = {"worst": scored.index[0], "median": scored.index[len(scored) // 2], "best": scored.index[-1]}
    dataset = load_dataset(dataset_dir)
    parts = []
    for label, case in picks.items():
        record = dataset.case(case)
        image = read_image(record.images[0])
        target, annotated = load_targets(record, dataset.spec, image.geometry)
        ref = {s: target[n] > 0 for n, s in enumerate(dataset.spec.structures) if annotated[n]}
        pred = {s: read_image(pred_dir / case / f"{s}.nii.gz").array > 0 for s in ref
                if (pred_dir / case / f"{s}.nii.gz").is_file()}
        spacing = image.geometry.spacing_zyx
        ref_png = figure_png(overlay_figure(image.array, ref, spacing, title=f"{case}: reference"))
        pred_png = figure_png(overlay_figure(image.array, pred, spacing, title=f"{case}: prediction"))
        parts.append(f"<h3>{label}: {html.escape(case)} (mean Dice {scored[case]:.3f})</h3>"
                     f"{img_tag(ref_png, 'reference')}{img_tag(pred_png, 'prediction')}")
    return "".join(parts)


def build_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` from what the run folder holds; returns its path."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a clinseg run folder (no config.yaml)")
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    records = MetricsLog(run_dir / "metrics.jsonl").read()
    sections = [f"<h1>clinseg run: {html.escape(run_dir.name)}</h1>"]
    if info:
        sections.append(f"<p class=muted>dataset {html.escape(str(info.get('dataset')))}</p>")
    sections.append("<h2>Training</h2>")
    if records:
        best = max((r for r in records if "val_dice" in r), key=lambda r: r["val_dice"], default=None)
        total = sum(r.get("seconds", 0.0) for r in records)
        note = f"{len(records)} iterations, {total / 60:.1f} min of training steps"
        if best:
            note += f"; best validation Dice {best['val_dice']:.3f} at iteration {best['iteration']}"
        sections.append(f"<p>{note}</p>{img_tag(figure_png(training_curves(records)), 'training curves')}")
    else:
        sections.append("<p class=muted>No training log.</p>")
    sections.append(f"<h2>Configuration</h2><pre>{html.escape((run_dir / 'config.yaml').read_text())}</pre>")
    eval_dir = run_dir / "evaluation"
    if (eval_dir / "metrics.csv").is_file():
        metrics = pd.read_csv(eval_dir / "metrics.csv")
        summary = pd.read_csv(eval_dir / "summary.csv")
        sections.append("<h2>Test-set evaluation</h2>" + _summary_html(summary))
        sections.append(img_tag(figure_png(metric_boxplot(metrics, "dice")), "Dice box plot"))
        sections.append(img_tag(figure_png(metric_boxplot(metrics, "hd95")), "HD95 box plot"))
        if info.get("dataset") and Path(info["dataset"]).is_dir():
            sections.append("<h2>Cases</h2>" + _case_overlays(run_dir, metrics, Path(info["dataset"])))
    else:
        sections.append("<p class=muted>Not evaluated yet (clinseg evaluate … --out RUN/evaluation).</p>")
    page = f"<!doctype html><html><head><meta charset=utf-8><title>clinseg {html.escape(run_dir.name)}</title>" \
           f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"
    out = run_dir / "report.html"
    write_text(out, page)
    return out


__all__ = ["build_report"]
