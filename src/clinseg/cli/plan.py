"""``clinseg plan DATASET``: fingerprint a dataset and write the plan a training run would use."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from clinseg.cli._common import console, handle_errors, print_table


@handle_errors
def plan(
    dataset: Path = typer.Argument(..., metavar="DATASET", help="Dataset folder."),
    out: Path = typer.Option(None, "--out", "-o", help="Plan file (default DATASET_plan.json beside it; the "
                             "dataset is never written to)."),
    device: str = typer.Option("auto", "--device", help="Plan for auto | cpu | cuda."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML config whose plan: section overrides."),
) -> None:
    """Plan DATASET: spacing, crop, normalisation, patch, batch, network, mirroring, post-processing."""
    from clinseg.data.dataset import load_dataset
    from clinseg.io.atomic import ensure_folder
    from clinseg.planning.plan import save_plan
    from clinseg.training.config import TrainConfig, load_config
    from clinseg.training.device import select_device
    from clinseg.training.run_data import make_run_plan

    ds = load_dataset(dataset)
    cfg = load_config(config) if config else TrainConfig()
    result = make_run_plan(ds, cfg, select_device(device))
    target = out or dataset.resolve().parent / f"{dataset.resolve().name}_plan.json"
    ensure_folder(target.parent, "plan folder")
    save_plan(result, target)
    print_table(plan_table(result))
    console.print(f"wrote [bold]{target}[/]", highlight=False)


def plan_table(result: object) -> Table:
    """The plan's main values as a two-column table."""
    p = result  # a clinseg.planning.plan.Plan
    table = Table(title="Plan", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    spacing = ", ".join(f"{v:.3g}" for v in p.spacing) if p.spacing else "each image's own"  # type: ignore[attr-defined]
    table.add_row("target spacing (x, y, z mm)", spacing)
    table.add_row("crop to body", str(p.crop_to_body))  # type: ignore[attr-defined]
    table.add_row("median body box (Z, Y, X)", str(p.median_shape))  # type: ignore[attr-defined]
    norms = "; ".join(n.scheme + (f" clip [{n.clip[0]:.4g}, {n.clip[1]:.4g}], mean {n.mean:.4g}, std {n.std:.4g}"
                                  if n.clip else "") for n in p.normalization)  # type: ignore[attr-defined]
    table.add_row("normalisation", norms)
    table.add_row("patch (Z, Y, X), batch", f"{p.patch_size}, {p.batch_size}")  # type: ignore[attr-defined]
    kwargs = p.model_kwargs  # type: ignore[attr-defined]
    table.add_row("network", f"{p.model}: widths {kwargs.get('features')}, strides {kwargs.get('strides')}, "  # type: ignore[attr-defined]
                  f"deep supervision {kwargs.get('deep_supervision', 0)}")
    table.add_row("mirrored axes", f"{p.mirror_axes} (left-right axis {p.lr_axis}; pairs "  # type: ignore[attr-defined]
                  f"{[tuple(x) for x in p.lateral_pairs]})")  # type: ignore[attr-defined]
    table.add_row("largest component", ", ".join(p.largest_component) or "-")  # type: ignore[attr-defined]
    return table
