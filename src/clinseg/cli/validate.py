"""``clinseg validate DATASET``: report every problem of a dataset and its annotation statistics.

On a terminal the problems are a table; otherwise (a log, a pipe) one tab-separated line per problem with the
whole message and path (:func:`clinseg.cli._common.print_table`), and ``--json`` prints the whole report as
JSON on stdout.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from clinseg.cli._common import console, handle_errors, print_json, print_table
from clinseg.data.validate import ValidationReport, validate_dataset


def problems_table(report: ValidationReport) -> Table:
    """A table of problems: case, severity and message."""
    title = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("case", style="cyan", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("problem", overflow="fold")
    for p in report.problems:
        kind = "[red]error[/]" if p.severity == "error" else "[yellow]warning[/]"
        table.add_row(escape(p.case) or "-", kind, escape(p.message))  # messages hold [..]: not markup
    return table


def annotation_table(report: ValidationReport) -> Table:
    """Per-structure annotation counts (how many cases delineate each structure), per split."""
    splits = list(report.structure_counts)
    table = Table(title="Delineations per structure", title_justify="left")
    table.add_column("structure", style="bold")
    for split in splits:
        table.add_column(f"{split} ({report.num_cases[split]} cases)", justify="right")
    for s in report.dataset.spec.structures:
        row = []
        for split in splits:
            count, n = report.structure_counts[split][s], report.num_cases[split]
            row.append(f"{count} ({100 * count / n:.0f}%)")
        table.add_row(s, *row)
    return table


def completeness_table(report: ValidationReport) -> Table:
    """Histogram: how many cases delineate k of the N structures."""
    splits = list(report.completeness)
    n = report.dataset.spec.num_structures
    table = Table(title=f"Completeness (structures delineated of {n})", title_justify="left")
    table.add_column("delineated", justify="right")
    for split in splits:
        table.add_column(split, justify="right")
        table.add_column("", justify="left", style="green")
    for k in range(n + 1):
        counts = [report.completeness[split][k] for split in splits]
        if not any(counts):
            continue
        row = []
        for split, c in zip(splits, counts):
            total = max(report.num_cases[split], 1)
            row += [str(c), "█" * round(20 * c / total)]
        table.add_row(str(k), *row)
    return table


def print_report(report: ValidationReport) -> None:
    """Print summary, statistics and problems of a validation."""
    spec = report.dataset.spec
    counts = ", ".join(f"{n} {split}" for split, n in report.num_cases.items())
    console.print(
        f"[bold]{spec.name}[/]  {counts} cases · {spec.num_channels} channel(s) "
        f"({', '.join(spec.channels)}) · {spec.num_structures} structures · {spec.label_mode}"
    )
    print_table(annotation_table(report))
    print_table(completeness_table(report))
    if report.ok:
        console.print("[bold green]no problems found[/]")
    else:
        print_table(problems_table(report))


def report_document(report: ValidationReport) -> dict[str, object]:
    """The report as a JSON-ready document: the dataset, counts, per-structure delineations, completeness
    and every problem (case, severity, message)."""
    spec = report.dataset.spec
    return {
        "dataset": str(report.dataset.root), "name": spec.name, "ok": report.ok,
        "errors": len(report.errors), "warnings": len(report.warnings),
        "channels": list(spec.channels), "structures": list(spec.structures), "label_mode": spec.label_mode,
        "cases": dict(report.num_cases),
        "delineations": {split: dict(counts) for split, counts in report.structure_counts.items()},
        "completeness": {split: {str(k): v for k, v in hist.items()} for split, hist in report.completeness.items()},
        "problems": [{"case": p.case, "severity": p.severity, "message": p.message} for p in report.problems],
    }


@handle_errors
def validate(
    dataset: Path = typer.Argument(..., metavar="DATASET", help="Dataset folder holding dataset.json."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Check every case of a dataset and print annotation counts; exit code 1 on any problem (error or
    warning). 'clinseg train' runs the same checks and refuses a dataset with errors."""
    report = validate_dataset(dataset)
    if as_json:
        print_json(report_document(report))
    else:
        print_report(report)
    if not report.ok:
        raise typer.Exit(code=1)
