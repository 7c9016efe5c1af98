"""``clinseg train``, ``predict``, ``evaluate`` and ``report``: the train/predict/evaluate contract."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors


def _int_pair(text: str, option: str) -> list[int]:
    from clinseg.errors import ConfigError

    try:
        low, high = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} takes two integers LOW,HIGH (e.g. 5,25), got {text!r}") from None
    return [low, high]


@handle_errors
def train(
    dataset: Path = typer.Argument(..., help="Dataset folder (clinseg or nnU-Net v2 layout)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (created; an existing run is resumed)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML config (TrainConfig fields, or preset: NAME)."),
    preset: str = typer.Option(None, "--preset", help="Named preset: oar-2019 (the seed study) or cpu-demo."),
    iterations: int = typer.Option(None, "--iterations", "-n", min=1, help="Optimiser steps (overrides config)."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (default: auto)."),
    model: str = typer.Option(None, "--model", help="Network: resfcn3d, unet3d or dynunet."),
    seed: int = typer.Option(None, "--seed", help="Random seed."),
    method: str = typer.Option("single", "--method", help="single (one network) or two-stage (localisation "
                               "network + organ network on padded crops, predicted as a cascade)."),
    margin: int = typer.Option(None, "--margin", min=0, help="two-stage: context voxels around each organ (15)."),
    jitter: str = typer.Option(None, "--jitter", metavar="LOW,HIGH", help="two-stage: draw the organ "
                               "network's training margin per side in [LOW, HIGH] instead of --margin."),
    fallback: Path = typer.Option(None, "--fallback", help="two-stage: single-stage run that segments organs "
                                  "the localiser misses (default: report them as not found)."),
) -> None:
    """Train a segmentation network on a dataset; resumes exactly where an interrupted run stopped."""
    from clinseg.training.config import TrainConfig, config_from_dict, load_config
    from clinseg.training.methods import run_method

    cfg = load_config(config) if config else (config_from_dict({"preset": preset}) if preset else TrainConfig())
    for name, value in (("device", device), ("model", model), ("seed", seed)):
        if value is not None:
            setattr(cfg, name, value)
    summary = run_method(method, dataset, out, cfg, iterations, margin=margin,
                         jitter=_int_pair(jitter, "--jitter") if jitter else None,
                         fallback=str(fallback) if fallback else None)
    console.print(f"{summary}; run: [bold]{out}[/]")


@handle_errors
def predict(
    run: Path = typer.Argument(..., help="Run folder written by clinseg train."),
    input_dir: Path = typer.Argument(..., help="Folder of <case>_<channel>.nii.gz images (e.g. imagesTs)."),
    out_dir: Path = typer.Argument(..., help="Output folder: OUT/<case>/<structure>.nii.gz."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    tta: bool = typer.Option(False, "--tta/--no-tta", help="Mirroring test-time augmentation (Z and Y axes)."),
    largest_component: bool = typer.Option(None, "--largest-component/--all-components",
                                           help="Keep the largest connected component per structure."),
) -> None:
    """Segment every case of a folder with a trained run."""
    from clinseg.inference.cascade import load_predictor
    from clinseg.inference.predictor import predict_folder

    predictor = load_predictor(run, checkpoint, device)
    options: dict[str, object] = {"largest_component": largest_component}
    if tta:
        options["mirror_axes"] = (0, 1)  # not X: mirroring left-right would swap lateral structures
    cases = predict_folder(predictor, input_dir, out_dir, **options)
    console.print(f"predicted {len(cases)} case(s) into [bold]{out_dir}[/]")


@handle_errors
def evaluate(
    pred_dir: Path = typer.Argument(..., help="Predictions: PRED/<case>/<structure>.nii.gz."),
    ref_dataset: Path = typer.Argument(..., help="Dataset with the reference (structuresTs/labelsTs)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for metrics.csv and summary.csv."),
    split: str = typer.Option("test", "--split", help="test | train."),
    tolerance: float = typer.Option(2.0, "--tolerance", help="Surface Dice tolerance in mm."),
) -> None:
    """Dice, HD95, ASSD, surface Dice, sensitivity, precision and volume difference per case and structure."""
    from clinseg.evaluation.evaluate import evaluate_to_folder
    from clinseg.evaluation.summary import format_summary_table

    _, summary = evaluate_to_folder(pred_dir, ref_dataset, out, split, tolerance)
    console.print(format_summary_table(summary))
    console.print(f"wrote [bold]{out / 'metrics.csv'}[/] and {out / 'summary.csv'}")


@handle_errors
def report(run: Path = typer.Argument(..., help="Run folder.")) -> None:
    """(Re)generate RUN/report.html: training curves, Dice box plot, best/median/worst overlays."""
    from clinseg.evaluation.report import build_report

    console.print(f"wrote [bold]{build_report(run)}[/]")
