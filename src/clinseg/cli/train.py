"""``clinseg train DATASET --out RUN``: plan, preprocess and train (docs/engine.md, docs/runs.md).

``predict`` is in :mod:`clinseg.cli.predict`, ``evaluate`` and ``report`` in :mod:`clinseg.cli.evaluate`."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors
from clinseg.cli.predict import _organ_pipeline  # noqa: F401 (moved to cli.predict; still importable here)


def _int_pair(text: str, option: str) -> list[int]:
    from clinseg.errors import ConfigError

    try:
        low, high = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} takes two integers LOW,HIGH (e.g. 5,25), got {text!r}") from None
    return [low, high]


def _adopt_pretraining(cfg: object, init: Path, adopt: bool) -> set[str]:
    """Point ``cfg.init`` at the pretraining run and, when ``adopt``, take its network and input settings;
    returns the fields set."""
    from clinseg.pretraining.transfer import pretrain_settings

    settings = pretrain_settings(init)
    cfg.init = str(init.resolve())  # type: ignore[attr-defined]
    if adopt:
        for key, value in settings.items():
            setattr(cfg, key, value)
    return {"init", *(settings if adopt else ())}


@handle_errors
def train(
    datasets: list[Path] = typer.Argument(..., metavar="DATASET",
                                                  help="Dataset folder(s); several: one multi-task network."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (an existing run is resumed)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML config (or preset: NAME)."),
    preset: str = typer.Option(None, "--preset", help="oar-2019 | cpu-demo."),
    iterations: int = typer.Option(None, "--iterations", "-n", min=1, help="Optimiser steps."),
    time_budget: str = typer.Option(None, "--time", help="Wall-clock budget: 30m, 1h30m, 90s."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda."),
    model: str = typer.Option(None, "--model", help="resfcn3d | unet3d | dynunet."),
    seed: int = typer.Option(None, "--seed", help="Random seed."),
    val_cases: int = typer.Option(None, "--val-cases", min=0, help="Cases held out for validation."),
    method: str = typer.Option("single", "--method", help="single | two-stage | interactive | 2d | 2d-3d | "
                               "mixed | oar2d | triplanar."),
    margin: int = typer.Option(None, "--margin", min=0, help="two-stage: context voxels (15)."),
    plane: str = typer.Option(None, "--plane", help="2d, oar2d: axial | coronal | sagittal."),
    jitter: str = typer.Option(None, "--jitter", metavar="LOW,HIGH", help="two-stage: random margin range."),
    fallback: Path = typer.Option(None, "--fallback", help="two-stage: run for organs the localiser misses."),
    foreign_classes: str = typer.Option("absent", "--foreign-classes", help="Several datasets: absent | unknown."),
    init: Path = typer.Option(None, "--init", help="Start from a pretraining or trained run."),
    calibrate: bool = typer.Option(None, "--calibrate/--no-calibrate", help="Choose per-class thresholds."),
    force: bool = typer.Option(False, "--force", help="Resume although options differ."),
    skip_validation: bool = typer.Option(False, "--skip-validation", help="Skip the dataset checks."),
) -> None:
    """Train a segmentation network; resumes exactly where an interrupted run stopped.

    On an existing run, options given again must match the saved ones (else an error, or --force).
    Methods and options: docs/engine.md, docs/runs.md."""
    from clinseg.configfile import read_mapping
    from clinseg.io.atomic import ensure_folder
    from clinseg.training.config import TrainConfig, config_from_dict, given_fields
    from clinseg.training.methods import run_method
    from clinseg.training.resume import ResumePolicy

    ensure_folder(out, "run folder")
    values = read_mapping(config) if config else ({"preset": preset} if preset else {})
    cfg = config_from_dict(values, str(config)) if values else TrainConfig()
    explicit = set(given_fields(values))  # only what was asked for is compared with a run being resumed
    if init is not None:
        explicit |= _adopt_pretraining(cfg, init, adopt=not (config or preset or model))
    for name, value in (("device", device), ("model", model), ("seed", seed), ("val_cases", val_cases),
                        ("calibrate", calibrate)):
        if value is not None:
            setattr(cfg, name, value)
            explicit.add(name)
    if time_budget is not None:
        import dataclasses

        cfg.schedule = dataclasses.replace(cfg.schedule, time=time_budget)
        cfg.validate()
        explicit.add("schedule")
    resume = ResumePolicy(explicit=frozenset(explicit), force=force)
    dataset = datasets[0]
    if len(datasets) > 1:  # one network for several tasks: train on their union (RUN/tasks)
        from clinseg.training.multitask import multitask_config, write_union

        dataset = out / "tasks"
        cfg = multitask_config(cfg, dataset, write_union(datasets, dataset, foreign_classes))
    summary = run_method(method, dataset, out, cfg, iterations, skip_validation=skip_validation, resume=resume,
                         margin=margin, plane=plane, jitter=_int_pair(jitter, "--jitter") if jitter else None,
                         fallback=str(fallback) if fallback else None)
    console.print(f"{summary}; run: [bold]{out}[/]")
