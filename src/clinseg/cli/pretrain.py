"""``clinseg pretrain SOURCE --out RUN``: self-supervised restoration pretraining (seed 002 §2.2)."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors


def _patch(text: str) -> list[int]:
    from clinseg.errors import ConfigError

    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3:
        raise ConfigError(f"--patch takes three integers Z,Y,X (e.g. 1,64,64 or 32,32,32), got {text!r}")
    return values


@handle_errors
def pretrain(
    source: Path = typer.Argument(..., metavar="SOURCE", help="Dataset folder (its imagesTr only; no labels are read) or a "
                                  "plain folder of images (*.nii.gz, *.nrrd, *.mha; <image>_0000 = channels)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (created; an existing run is resumed)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML config (PretrainConfig fields)."),
    iterations: int = typer.Option(None, "--iterations", "-n", min=1, help="Optimiser steps (overrides config)."),
    model: str = typer.Option(None, "--model", help="Network: unet2d (default, on slices), unet3d, dynunet …"),
    patch: str = typer.Option(None, "--patch", metavar="Z,Y,X", help="Patch size; 1,64,64 (default) = axial "
                              "slices for unet2d, e.g. 32,32,32 for a 3-D network."),
    normalization: str = typer.Option(None, "--normalization", help="none (default; images already in "
                                      "[0, 1]) | percentile | zscore; clipped to [0, 1] afterwards."),
    loss: str = typer.Option(None, "--loss", help="l1 (default, seed 002) | mse (Models Genesis)."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (default: auto)."),
    seed: int = typer.Option(None, "--seed", help="Random seed."),
    force: bool = typer.Option(False, "--force", help="Resume an existing run even though options given here "
                               "differ from the ones it was trained with; the run keeps its saved configuration "
                               "(recorded in RUN/history.json)."),
) -> None:
    """Pretrain a network to restore distorted image patches (Models Genesis); resumes an interrupted run.

    On an existing run, options given again must match the saved ones (else an error, or --force);
    --iterations may extend a finished run, never go below what was trained. Initialise a segmentation
    training from it with the weights of RUN/checkpoints/best.pt.
    """
    import dataclasses
    import json

    from clinseg.configfile import read_mapping
    from clinseg.pretraining.config import PretrainConfig, pretrain_config_from_dict
    from clinseg.pretraining.run import pretrain as run_pretrain
    from clinseg.training.resume import ResumePolicy

    values = read_mapping(config) if config else {}
    cfg = pretrain_config_from_dict(values, str(config)) if config else PretrainConfig()
    overrides = {"model": model, "normalization": normalization, "loss": loss, "device": device, "seed": seed,
                 "patch_size": _patch(patch) if patch else None}
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = dataclasses.replace(cfg, **given)
    explicit = frozenset(values) | frozenset(given)  # only what was asked for is compared with a run resumed
    state = run_pretrain(source, out, cfg, iterations, resume=ResumePolicy(explicit=explicit, force=force))
    info = json.loads((out / "pretrain.json").read_text(encoding="utf-8"))
    best = (f"best val {info['loss']} {abs(state.best_score):.4f} at iteration {state.best_iteration}"
            if state.best_iteration else "no validation (best.pt = final weights)")
    console.print(f"pretrained {info['model']} for {state.iteration} iterations on {info['num_train']} image(s); "
                  f"{best}; run: [bold]{out}[/], preview {out / 'restoration.png'}")
