"""``clinseg evaluate PRED REF --out DIR``: score predictions (clinseg's or another tool's) against a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import (
    console,
    err_console,
    handle_errors,
    print_json,
    print_table,
)


@handle_errors
def evaluate(
    pred_dir: Path = typer.Argument(..., metavar="PRED", help="Predictions folder."),
    ref_dataset: Path = typer.Argument(..., metavar="REF", help="Dataset with the reference masks."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for metrics.csv and summary.csv."),
    layout: str = typer.Option("clinseg", "--pred-layout", help="clinseg | labelmap | folder."),
    names: Path = typer.Option(None, "--names", help="YAML our_name: their_name (or label value)."),
    split: str = typer.Option("test", "--split", help="test | train."),
    tolerance: float = typer.Option(2.0, "--tolerance", help="Surface Dice tolerance in mm."),
    clicks: int = typer.Option(None, "--clicks", min=1, help="Also score click rounds 1..K."),
    regions: str = typer.Option(None, "--regions", help="Rows per region: brats."),
    operating_point: Path = typer.Option(None, "--operating-point", metavar="DIR",
                                         help="Best threshold per structure from probability maps in DIR."),
    confusion: bool = typer.Option(False, "--confusion", help="Multi-task: cross-task confusion."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Dice, HD95, ASSD, surface Dice, sensitivity, precision and volume difference.

    PRED may come from another tool: --pred-layout labelmap (nnU-Net) or folder (TotalSegmentator) with
    --names. Details: docs/predict.md."""
    from clinseg.errors import ConfigError
    from clinseg.evaluation.evaluate import evaluate_to_folder
    from clinseg.evaluation.summary import format_summary_table, summary_records

    if layout != "clinseg" and (clicks is not None or operating_point is not None or confusion):
        raise ConfigError("--clicks, --operating-point and --confusion read clinseg's own predictions "
                          "(--pred-layout clinseg)")
    say = err_console.print if as_json else console.print  # with --json, stdout holds only the JSON
    _, summary = evaluate_to_folder(pred_dir, ref_dataset, out, split, tolerance, regions, layout, names)
    document: dict[str, object] = {"metrics_csv": str(out / "metrics.csv"), "summary_csv": str(out / "summary.csv"),
                                   "layout": layout, "split": split, "summary": summary_records(summary)}
    if not as_json:
        print_table(format_summary_table(summary))
    say(f"wrote [bold]{out / 'metrics.csv'}[/] and {out / 'summary.csv'}", highlight=False)
    if operating_point is not None:
        from clinseg.evaluation.operating_point import write_operating_points

        points = write_operating_points(operating_point, ref_dataset, out, split)
        document["operating_points"] = points.to_dict(orient="records")
        for row in points.itertuples():
            say(f"operating point {row.structure}: threshold {row.threshold:.2f}, Dice {row.dice:.3f} "
                f"(precision {row.precision:.3f}, recall {row.recall:.3f})", highlight=False)
    if confusion:
        from clinseg.evaluation.multitask import write_confusion

        table = write_confusion(pred_dir, ref_dataset, out, split)
        row = table.iloc[0]
        document["confusion"] = {"median_percent": row["median_percent"], "max_percent": row["max_percent"]}
        say(f"cross-task confusion: median {row['median_percent']:.6f} % of a scan's voxels, max "
            f"{row['max_percent']:.6f} %; wrote [bold]{out / 'confusion.csv'}[/] and confusion.png", highlight=False)
    if clicks is not None:
        from clinseg.interactive.curves import write_dice_vs_clicks

        curves = write_dice_vs_clicks(pred_dir, ref_dataset, out, clicks, split, tolerance)
        document["dice_vs_clicks"] = curves.to_dict(orient="records")
        for structure, group in curves.groupby("structure", sort=False):
            curve = ", ".join(f"{k}: {d:.3f}" for k, d in zip(group["clicks"], group["dice_mean"]))
            say(f"Dice vs clicks, {structure}: {curve}", highlight=False)
        say(f"wrote [bold]{out / 'dice_vs_clicks.csv'}[/] and {out / 'dice_vs_clicks.png'}", highlight=False)
    if as_json:
        print_json(document)


@handle_errors
def report(run: Path = typer.Argument(..., metavar="RUN", help="Run folder.")) -> None:
    """(Re)generate RUN/report.html: training curves, Dice box plot, best/median/worst overlays."""
    from clinseg.evaluation.report import build_report

    console.print(f"wrote [bold]{build_report(run)}[/]")
