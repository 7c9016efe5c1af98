"""``clinseg study run`` and ``clinseg study report``: learning-curve studies from a YAML specification."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from clinseg.cli._common import console, handle_errors, print_table

if TYPE_CHECKING:
    from clinseg.studies.plan import StudyPlan

study_app = typer.Typer(help="Learning-curve studies: many networks on sampled subsets, compared.",
                        no_args_is_help=True, rich_markup_mode=None)


def _status_table(plan: StudyPlan) -> Table:
    import pandas as pd

    from clinseg.studies.results import run_table

    runs = run_table(plan)
    table = Table(title=f"study {plan.spec.name}: {len(runs)} run(s)")
    for column in ("arm", "mode", "size", "done", "failed", "pending", "mean s"):
        table.add_column(column, justify="left" if column in ("arm", "mode") else "right")
    for (arm, mode, size), group in runs.groupby(["arm", "mode", "size"], sort=False):
        counts = group["status"].value_counts()
        mean = group["seconds"].dropna().mean()
        table.add_row(arm, mode, str(size), str(counts.get("done", 0)), str(counts.get("failed", 0)),
                      str(counts.get("pending", 0)), "" if pd.isna(mean) else f"{mean:.0f}")
    return table


@study_app.command("run")
@handle_errors
def run(
    spec: Path = typer.Argument(..., metavar="SPEC", help="Study specification (YAML; see examples/study-head-oar.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Study folder (created; an existing study is resumed)."),
    workers: int = typer.Option(None, "--workers", "-j", min=1, help="Parallel local runs (default: sized to "
                                "the machine: one per GPU, or one per 4 CPU cores)."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads per local run (default: cores / "
                                "workers); lower it when other jobs share the machine."),
    ray: str = typer.Option(None, "--ray", help="Run on Ray: an address, 'auto' (this cluster) or 'local'."),
    in_process: bool = typer.Option(False, "--in-process", help="Run the runs one after another in this "
                                    "process (no worker processes: for a debugger or a profiler)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again."),
    skip_validation: bool = typer.Option(False, "--skip-validation", help="Do not run the checks of 'clinseg "
                                         "validate' on the datasets first (by default errors refuse the study)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Prepare the folder and subsets, list the runs, stop."),
) -> None:
    """Train, predict and evaluate every run of the grid; finished runs are never recomputed.

    The whole spec and every dataset are checked before anything is written. One Ctrl-C stops the study:
    running runs save a checkpoint and resume next time (exit code 130).
    """
    from clinseg.studies.executors import (
        pending_runs,
        run_in_process,
        run_local,
        run_ray,
    )
    from clinseg.studies.plan import load_and_prepare

    if ray and in_process:
        raise typer.BadParameter("--ray and --in-process exclude each other")
    plan = load_and_prepare(spec, out, skip_validation=skip_validation)
    todo = pending_runs(plan, retry_failed)
    console.print(f"study [bold]{plan.spec.name}[/]: {len(plan.runs)} run(s), {len(todo)} to run "
                  f"({len(plan.val_ids)} validation cases: {', '.join(plan.val_ids)})")
    if dry_run:
        print_table(_status_table(plan))
        return
    if ray:
        state = run_ray(plan, todo, ray, retry_failed=retry_failed)
    elif in_process:
        state = run_in_process(plan, todo, threads=threads, retry_failed=retry_failed)
    else:
        state = run_local(plan, todo, workers=workers, threads=threads, retry_failed=retry_failed)
    print_table(_status_table(plan))
    for outcome in state.failed:
        console.print(f"[red]failed[/] {outcome.key.name}: {outcome.error} "
                      f"(details: {plan.run_dir(outcome.key) / 'failed.json'}; rerun with --retry-failed)")
    if state.failed:
        raise typer.Exit(code=1)
    console.print(f"next: [bold]clinseg study report {out}[/]")


@study_app.command("report")
@handle_errors
def report(study: Path = typer.Argument(..., metavar="STUDY", help="Study folder written by 'clinseg study run'.")) -> None:
    """Aggregate the finished runs (results.csv) and write report.html with figures and statistics."""
    from clinseg.studies.plan import open_study
    from clinseg.studies.report import build_study_report
    from clinseg.studies.results import write_results

    plan = open_study(study)
    results = write_results(plan)
    print_table(_status_table(plan))
    console.print(f"wrote [bold]{results}[/] and [bold]{build_study_report(study)}[/]")


@study_app.command("status")
@handle_errors
def status(study: Path = typer.Argument(..., metavar="STUDY", help="Study folder.")) -> None:
    """Show done / failed / pending runs per arm, mode and size."""
    from clinseg.studies.plan import open_study

    print_table(_status_table(open_study(study)))
