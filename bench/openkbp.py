"""The real-data benchmark: clinseg on OpenKBP head-and-neck CT, masked loss vs partial labels as background.

Steps, each skipped when its result exists (interrupt at will, run again to resume):

1. the fixed split (``bench/openkbp_split.py``: 163 training / 40 held-out patients, links, no copies);
2. per arm, ``clinseg train DATA --out OUT/<arm> --time BUDGET`` in a subprocess (its peak RSS measured):
   ``masked`` = clinseg's planned default (an OAR a case does not delineate has no loss, seed 000) and
   ``background`` = the same with every undelineated OAR counted as background (``undelineated:
   background``, what nnU-Net and MONAI do with partial labels);
3. ``clinseg predict`` of the held-out patients (time per case) and ``clinseg evaluate`` (scored only where
   the clinic delineated the OAR);
4. ``OUT/report.md``: per OAR Dice and HD95 with 95% confidence intervals for each arm, the paired
   Wilcoxon test masked vs background, peak RSS, the machine (CPU flags), a Dice box plot
   (``OUT/dice.png``) and overlays of the best, median and worst held-out patient (``OUT/overlays.png``).

Usage: ``python bench/openkbp.py [--out bench-openkbp] [--time 30m] [--data ../shared/data/openkbp]
[--arms masked,background] [--train 163]``; ``make bench-openkbp`` runs it with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_flags  # noqa: E402
from openkbp_split import split_dataset  # noqa: E402

from clinseg.evaluation.plots import metric_boxplot  # noqa: E402
from clinseg.evaluation.statistics import paired_test  # noqa: E402
from clinseg.evaluation.summary import mean_ci  # noqa: E402
from clinseg.io.image import read_image  # noqa: E402
from clinseg.viz.overlay import OverlayCase, overlay_grid, save_figure  # noqa: E402

ARMS = {"masked": {}, "background": {"undelineated": "background"}}
CLINSEG = [sys.executable, "-m", "clinseg"]


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` (appending its output to ``log``); returns the peak RSS in GB of the largest child so far."""
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(cmd)}\n")
        handle.flush()
        subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, "CLINSEG_PROGRESS": "0"})
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def train_arm(data: Path, out: Path, arm: str, budget: str) -> dict:
    """Train one arm (skipped when finished); returns its record (peak RSS, iterations, seconds)."""
    run_dir = out / arm
    record_path = out / f"{arm}.train.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    cmd = [*CLINSEG, "train", str(data), "--out", str(run_dir), "--time", budget]
    if ARMS[arm]:
        config = out / f"{arm}.yaml"
        config.write_text("".join(f"{k}: {v}\n" for k, v in ARMS[arm].items()))
        cmd += ["--config", str(config)]
    start = time.perf_counter()
    rss = run(cmd, out / f"{arm}.log")
    schedule = json.loads((run_dir / "schedule.json").read_text()) if (run_dir / "schedule.json").is_file() else {}
    record = {"peak_rss_gb": rss, "seconds": time.perf_counter() - start, **schedule}
    record_path.write_text(json.dumps(record, indent=1))
    return record


def predict_arm(data: Path, out: Path, arm: str) -> pd.DataFrame:
    """Predict and evaluate the held-out patients (skipped when done); returns the metrics table."""
    run_dir = out / arm
    metrics = run_dir / "evaluation" / "metrics.csv"
    if not metrics.is_file():
        start = time.perf_counter()
        run([*CLINSEG, "predict", str(run_dir), str(data / "imagesTs"), str(run_dir / "predictions")],
            out / f"{arm}.log")
        cases = len(list((data / "imagesTs").iterdir()))
        (out / f"{arm}.predict.json").write_text(json.dumps(
            {"seconds_per_case": (time.perf_counter() - start) / max(cases, 1)}))
        run([*CLINSEG, "evaluate", str(run_dir / "predictions"), str(data), "--out", str(run_dir / "evaluation")],
            out / f"{arm}.log")
    return pd.read_csv(metrics)


def ci_text(values: np.ndarray, decimals: int = 3) -> str:
    mean, low, high = mean_ci(values)
    return f"{mean:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"


def report(data: Path, out: Path, tables: dict[str, pd.DataFrame], trained: dict[str, dict]) -> Path:
    """Write ``OUT/report.md`` with the tables, tests and figures (see the module docstring)."""
    structures = list(dict.fromkeys(next(iter(tables.values()))["structure"]))
    scored = {arm: t[t["delineated"].astype(bool)] for arm, t in tables.items()}
    lines = [f"# OpenKBP benchmark ({len(list((data / 'imagesTs').iterdir()))} held-out patients)", "",
             f"Machine: {cpu_flags()}; torch {__import__('torch').__version__}.", ""]
    header = "| OAR (held-out cases delineating it) | " + " | ".join(
        f"Dice {arm} [95% CI] | HD95 {arm} median (mm)" for arm in tables) + " | masked vs background |"
    lines += [header, "|" + " --- |" * (2 * len(tables) + 2)]
    means = {arm: [] for arm in tables}
    for s in structures:
        row = [f"{s} ({int((scored[next(iter(scored))]['structure'] == s).sum())})"]
        values = {}
        for arm, t in scored.items():
            rows = t[t["structure"] == s].sort_values("case")
            values[arm] = rows["dice"].to_numpy(float)
            means[arm].append(np.nanmean(values[arm]))
            row += [ci_text(values[arm]), f"{np.nanmedian(rows['hd95'].to_numpy(float)):.1f}"]
        if {"masked", "background"} <= set(values):
            test = paired_test(values["masked"], values["background"])
            row.append(f"{np.nanmean(values['masked'] - values['background']):+.3f} (p = {test.p_value:.2g})")
        else:
            row.append("-")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| **mean of OARs** | " + " | ".join(f"**{np.mean(means[arm]):.3f}** | " for arm in tables) + " |")
    lines += ["", "| arm | training budget | iterations | s per step | peak RSS of training (GB) | predict s per case |",
              "| --- | --- | --- | --- | --- | --- |"]
    for arm, record in trained.items():
        pred = out / f"{arm}.predict.json"
        per_case = json.loads(pred.read_text())["seconds_per_case"] if pred.is_file() else float("nan")
        lines.append(f"| {arm} | {record.get('budget_seconds', 0) / 60:.0f} min | {record.get('iterations', '?')} | "
                     f"{record.get('step_seconds') or float('nan'):.2f} | {record['peak_rss_gb']:.2f} | {per_case:.1f} |")
    first = next(iter(tables))
    fig = metric_boxplot(tables[first], "dice", structures)
    fig.suptitle(f"Dice per OAR, {first}")
    save_figure(fig, out / "dice.png")
    save_figure(_overlays(data, out / first / "predictions", scored[first], structures), out / "overlays.png")
    lines += ["", f"![Dice]({(out / 'dice.png').name})", "", f"![overlays]({(out / 'overlays.png').name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _overlays(data: Path, predictions: Path, scored: pd.DataFrame, structures: list[str]):
    """Best, median and worst held-out patient by mean Dice: reference (top) and prediction (bottom)."""
    per_case = scored.groupby("case")["dice"].mean().sort_values()
    picks = [per_case.index[-1], per_case.index[len(per_case) // 2], per_case.index[0]]
    panels = []
    for case, label in zip(picks, ("best", "median", "worst")):
        image = read_image(data / "imagesTs" / f"{case}_0000.nii.gz")
        ref = {s: read_image(p).array for s in structures
               if (p := data / "structuresTs" / case / f"{s}.nii.gz").is_file()}
        pred = {s: read_image(predictions / case / f"{s}.nii.gz").array for s in ref}
        spacing = image.geometry.spacing_zyx
        title = f"{case} ({label}, Dice {per_case[case]:.2f})"
        panels += [OverlayCase(np.clip(image.array, -200, 300), ref, spacing, f"{title}: reference"),
                   OverlayCase(np.clip(image.array, -200, 300), pred, spacing, f"{title}: clinseg")]
    return overlay_grid(panels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-openkbp"))
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "openkbp")
    parser.add_argument("--time", default="30m")
    parser.add_argument("--arms", default="masked,background")
    parser.add_argument("--train", type=int, default=163)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if not (data / "split.json").is_file():
        split_dataset(args.data.resolve(), data, args.train)
    arms = [a for a in args.arms.split(",") if a]
    trained = {arm: train_arm(data, out, arm, args.time) for arm in arms}
    tables = {arm: predict_arm(data, out, arm) for arm in arms}
    print(report(data, out, tables, trained).read_text())


if __name__ == "__main__":
    main()
