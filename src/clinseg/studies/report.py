"""The study report: ``clinseg study report STUDY`` -> tables, figures and one self-contained HTML page.

Reads ``STUDY/results.csv`` (one row per arm, mode, size, repeat, test case and structure) and the optional
``STUDY/study.json`` (``name``, ``structures`` order, saturation ``tolerance``, ``test``), and writes::

    STUDY/summary.csv       learning curves: mean and 95% CI per arm, mode, size and structure
    STUDY/comparisons.csv   arms vs arms (paired) and mode vs mode (unpaired) tests per size and structure
    STUDY/saturation.csv    saturation point per arm, mode and structure
    STUDY/figures/*.png     learning curves and comparison grids
    STUDY/report.html       all of the above, figures embedded

Every file is written atomically.
"""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from clinseg.errors import ConfigError, DatasetError
from clinseg.evaluation.html import img_tag, page_html, table_html
from clinseg.evaluation.plots import figure_png
from clinseg.evaluation.statistics import (
    RESULT_COLUMNS,
    STUDY_METRICS,
    UNPAIRED_FOR,
    compare_arms,
    compare_modes,
    describe_tests,
    learning_curve_summary,
    network_means,
    saturation_points,
    scored_rows,
    structure_order,
)
from clinseg.io.atomic import write_bytes, write_text
from clinseg.studies.costs import cost_summary, dice_gain, foreground_gain_figure
from clinseg.studies.figures import (
    arm_comparison_figure,
    learning_curve_figure,
    mode_comparison_figure,
)

log = logging.getLogger(__name__)

#: Columns ``results.csv`` must have for the report (other metric columns are ignored).
REQUIRED_COLUMNS: tuple[str, ...] = (*RESULT_COLUMNS, *STUDY_METRICS)

#: Defaults of the keys of ``study.json`` the report reads.
STUDY_DEFAULTS: dict[str, Any] = {"name": None, "structures": None, "scored": None, "tolerance": 0.02,
                                  "test": "wilcoxon"}

_TEXT_COLUMNS = ("arm", "mode", "run", "case", "structure")


def read_results(path: str | Path) -> pd.DataFrame:
    """Read and check a study's ``results.csv``.

    Raises
    ------
    DatasetError
        If the file is missing, empty, unreadable, lacks a column of :data:`REQUIRED_COLUMNS`, has a
        non-integer ``size``/``repeat``, or has no delineated row; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: study results not found; they are gathered from the finished runs "
                           "('clinseg study report' does it once a run has finished)")
    try:
        table = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS})
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: empty file, no study results") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV table ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"{path}: lacks column(s) {missing}; expected at least {list(REQUIRED_COLUMNS)}")
    if table.empty:
        raise DatasetError(f"{path}: no rows, no study results")
    for column in ("size", "repeat"):
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any() or (values != values.round()).any():
            raise DatasetError(f"{path}: column {column!r} must hold integers")
        table[column] = values.astype(int)
    for column in STUDY_METRICS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    if scored_rows(table).empty:
        raise DatasetError(f"{path}: no row with a reference (every 'delineated' is False)")
    return table


def read_study_info(study_dir: str | Path) -> dict[str, Any]:
    """The report settings of ``STUDY/study.json`` over :data:`STUDY_DEFAULTS` (the file is optional).

    Raises
    ------
    ConfigError
        If the file is not a JSON object, ``test`` is not ``wilcoxon``/``ttest``, or ``tolerance`` is not
        a number >= 0.
    """
    path = Path(study_dir) / "study.json"
    info = dict(STUDY_DEFAULTS)
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        info.update({k: v for k, v in raw.items() if v is not None})
    if info["test"] not in UNPAIRED_FOR:
        raise ConfigError(f"{path}: test must be one of {sorted(UNPAIRED_FOR)}, got {info['test']!r}")
    tolerance = info["tolerance"]
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ConfigError(f"{path}: tolerance must be a number >= 0, got {tolerance!r}")
    if info["structures"] is not None and not isinstance(info["structures"], list):
        raise ConfigError(f"{path}: structures must be a list of names")
    info["name"] = str(info["name"] or Path(study_dir).resolve().name)
    return info


def build_study_report(study_dir: str | Path, dpi: int = 110) -> Path:
    """Write the study's tables, figures and ``STUDY/report.html``; returns the report path.

    Parameters
    ----------
    study_dir : str or Path
        Study folder holding ``results.csv`` (and optionally ``study.json``).
    dpi : int
        Resolution of the PNG figures.

    Raises
    ------
    DatasetError
        ``results.csv`` missing, empty or malformed (see :func:`read_results`).
    ConfigError
        ``study.json`` malformed (see :func:`read_study_info`).
    """
    study_dir = Path(study_dir)
    results = read_results(study_dir / "results.csv")
    info = read_study_info(study_dir)
    order = structure_order(results, [str(s) for s in info["scored"] or info["structures"] or ()])
    summary = learning_curve_summary(results, structures=order)
    comparisons = pd.concat([compare_arms(results, test=info["test"], structures=order),
                             compare_modes(results, test=UNPAIRED_FOR[info["test"]], structures=order)],
                            ignore_index=True)
    saturation = saturation_points(summary, float(info["tolerance"]))
    tables = {"summary": summary, "comparisons": comparisons, "saturation": saturation}
    if summary["arm"].nunique() > 1:
        tables["arms"] = arm_table(summary)
    for name, table in tables.items():
        write_text(study_dir / f"{name}.csv", table.to_csv(index=False))
    figures = _figures(results, summary, order, study_dir / "figures", dpi)
    costs = _costs_section(study_dir, summary, figures, dpi)
    out = study_dir / "report.html"
    write_text(out, page_html(f"clinseg study {info['name']}",
                              _body(info, results, summary, comparisons, saturation, figures,
                                    tables.get("arms")) + costs))
    log.info("study report: %d figure(s), %d comparison(s) -> %s", sum(len(v) for v in figures.values()),
             len(comparisons), out)
    return out


def arm_table(summary: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Mean ``metric`` per structure, mode and size (rows) and arm (columns), from
    :func:`learning_curve_summary`: the layout of seed 002's Table 1 (patients x model groups)."""
    table = summary.pivot_table(index=["structure", "mode", "size"], columns="arm", values=f"{metric}_mean",
                                sort=False)
    arms = list(pd.unique(summary["arm"]))
    return table[arms].reset_index().rename_axis(columns=None)


def _costs_section(study_dir: Path, summary: pd.DataFrame, figures: dict[str, list[tuple[str, bytes]]],
                   dpi: int) -> str:
    """Training/inference cost per arm (``runs.csv``) and the Dice gain vs foreground % figure
    (``structures.csv``, two or more arms); empty when those tables are absent."""
    parts = []
    runs_path, structures_path = study_dir / "runs.csv", study_dir / "structures.csv"
    if runs_path.is_file():
        costs = cost_summary(pd.read_csv(runs_path))
        if not costs.empty:
            write_text(study_dir / "costs.csv", costs.to_csv(index=False))
            parts += ["<h2>Training and inference cost</h2><p class=muted>Means over the finished runs of each "
                      "arm, mode and size (costs.csv); training seconds are optimisation time summed over an "
                      "arm's networks, without validation; converged = validation Dice &gt;= 0.1 after 20 "
                      "validations (seed 003).</p>", table_html(costs)]
    arms = list(pd.unique(summary["arm"]))
    if structures_path.is_file() and len(arms) >= 2:
        gain = dice_gain(summary, pd.read_csv(structures_path), arms[0])
        if not gain.empty:
            png = figure_png(foreground_gain_figure(gain, arms[0]), dpi=dpi)
            write_bytes(study_dir / "figures" / "dice-gain_vs_foreground.png", png)
            figures.setdefault("costs", []).append(("Dice gain vs foreground %", png))
            parts += [f"<h2>Benefit against structure size</h2><p class=muted>Mean Dice of each arm minus "
                      f"{html.escape(str(arms[0]))}'s at the largest size, against the share of the test volume "
                      "the structure occupies (structures.csv).</p>", img_tag(png, "Dice gain vs foreground %")]
    return "".join(parts)


def _figures(results: pd.DataFrame, summary: pd.DataFrame, order: list[str], folder: Path,
             dpi: int) -> dict[str, list[tuple[str, bytes]]]:
    """Render, write to ``folder`` and return the figures by report section as ``(caption, png)``."""
    runs = network_means(results)
    arms, modes = list(pd.unique(summary["arm"])), list(pd.unique(summary["mode"]))
    sections: dict[str, list[tuple[str, bytes]]] = {"learning": [], "modes": [], "arms": []}

    def add(section: str, stem: str, caption: str, figure: Any) -> None:
        png = figure_png(figure, dpi=dpi)
        write_bytes(folder / f"{_safe(stem)}.png", png)
        sections[section].append((caption, png))

    for metric in STUDY_METRICS:
        for arm in arms:
            for mode in modes:
                if ((summary["arm"] == arm) & (summary["mode"] == mode)).any():
                    add("learning", f"learning-curve_{metric}_{arm}_{mode}", f"{metric} learning curves, {arm}, "
                        f"{mode}", learning_curve_figure(summary, arm, mode, metric, order))
        if len(modes) >= 2:
            for arm in arms:
                add("modes", f"modes_{metric}_{arm}", f"{metric} by sampling mode, {arm}",
                    mode_comparison_figure(runs, arm, metric, order))
        if len(arms) >= 2:
            for mode in modes:
                add("arms", f"arms_{metric}_{mode}", f"{metric} by arm, {mode}",
                    arm_comparison_figure(runs, mode, metric, order))
    return sections


def _body(info: dict[str, Any], results: pd.DataFrame, summary: pd.DataFrame, comparisons: pd.DataFrame,
          saturation: pd.DataFrame, figures: dict[str, list[tuple[str, bytes]]],
          arms_table: pd.DataFrame | None = None) -> str:
    arms, modes = list(pd.unique(results["arm"])), list(pd.unique(results["mode"]))
    sizes = sorted(pd.unique(results["size"]))
    parts = [f"<h1>clinseg study: {html.escape(info['name'])}</h1>",
             (f"<p class=muted>{results['run'].nunique()} network(s); arms {_list(arms)}; modes {_list(modes)}; "
             f"sizes M = {_list(sizes)}; {results['case'].nunique()} test case(s); "
             f"{results['structure'].nunique()} structure(s).</p>"),
             "<h2>Methods</h2>", f"<p>{_methods(info)}</p>",
             f"<h2>Saturation (tolerance {float(info['tolerance']):g} Dice)</h2>",
             table_html(saturation[["arm", "mode", "structure", "saturation_size", "saturation_mean",
                                    "best_size", "best_mean"]]),
             "<h2>Learning curves</h2>", *(img_tag(png, cap) for cap, png in figures["learning"])]
    if figures["modes"]:
        parts += ["<h2>Sampling modes</h2>", *(img_tag(png, cap) for cap, png in figures["modes"])]
    if figures["arms"]:
        parts += ["<h2>Arms</h2>", *(img_tag(png, cap) for cap, png in figures["arms"])]
    if arms_table is not None:
        parts += ["<h2>Mean Dice per arm and size</h2><p class=muted>Mean over networks of each network's mean "
                  "test Dice (arms.csv).</p>", table_html(arms_table)]
    parts += [("<h2>Learning-curve table</h2><details><summary>mean [95% CI] per arm, mode, M and structure "
              f"({len(summary)} rows; summary.csv)</summary>{table_html(_summary_view(summary))}</details>"),
              ("<h2>Comparisons</h2><details open><summary>two-sided tests per M and structure, "
              f"difference = mean a - mean b, p &lt; 0.05 in bold ({len(comparisons)} rows; comparisons.csv)"
              f"</summary>{_comparisons_html(comparisons)}</details>")]
    return "".join(parts)


def _methods(info: dict[str, Any]) -> str:
    return (
        "Rows without a reference delineation are ignored. Learning curves show, per structure, the mean over "
        "networks of each network's mean over the test cases; bars are the Student-t 95% confidence interval "
        "over networks (the unit is the network, i.e. the sampled subset; where a size has fewer than three "
        "networks the interval is over all (network, test case) values, ci_unit = case, and then reflects "
        "the spread over test cases more than over subsets). "
        f"Tests are two-sided ({html.escape(describe_tests(info['test']))}): arms are compared within each "
        "sampling mode paired over (repeat, test case), as they are trained on the same subsets; sampling "
        "modes are compared within each arm as independent samples of per-case scores, as their subsets "
        "differ. Scores of different repeats share test cases, and p-values are not corrected for multiple "
        "comparisons; a test that is undefined for its data has no p-value and a note. The saturation point "
        f"is the smallest M whose mean Dice is within {float(info['tolerance']):g} of the best mean Dice over "
        "sizes.")


def _summary_view(summary: pd.DataFrame) -> pd.DataFrame:
    view = summary[["arm", "mode", "size", "structure", "networks", "cases", "ci_unit"]].copy()
    for metric, digits in (("dice", 3), ("hd95", 2)):
        view[f"{metric} mean [95% CI]"] = [
            "n/a" if pd.isna(m) else f"{m:.{digits}f}" + ("" if pd.isna(lo) else f" [{lo:.{digits}f}, {hi:.{digits}f}]")
            for m, lo, hi in summary[[f"{metric}_mean", f"{metric}_ci_low", f"{metric}_ci_high"]].to_numpy()]
        view[f"{metric} std"] = [f"{v:.{digits}f}" if pd.notna(v) else "" for v in summary[f"{metric}_std"]]
    return view


def _comparisons_html(comparisons: pd.DataFrame) -> str:
    if comparisons.empty:
        return "<p class=muted>Nothing to compare (a single arm and a single mode).</p>"
    view = comparisons[["comparison", "arm_a", "arm_b", "mode_a", "mode_b", "size", "structure", "metric",
                        "n_a", "n_b", "mean_a", "mean_b", "difference", "p_value", "test", "note"]]
    return table_html(view, digits={"p_value": 4}, bold=comparisons["p_value"] < 0.05)


def _list(values: list[Any]) -> str:
    return html.escape(", ".join(str(v) for v in values))


def _safe(stem: str) -> str:
    """A file name stem of letters, digits, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem)
