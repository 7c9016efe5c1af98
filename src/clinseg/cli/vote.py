"""``clinseg vote PRED_DIR... --out DIR``: fuse several models' brain-tumour predictions by hierarchical voting."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors


@handle_errors
def vote(
    pred_dirs: list[Path] = typer.Argument(..., metavar="PRED", help="Prediction folders of the models (PRED/<case>.nii.gz label "
                                           "maps, or PRED/<case>/<structure>.nii.gz masks)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the voted OUT/<case>.nii.gz and OUT/<case>/."),
    thresholds: str = typer.Option("half", "--thresholds", "-t", help="T_tumour,T_core,T_enhancing, each in "
                                   "(0, 1], or a preset: half = 0.5,0.5,0.5; seed001 = 0.4,0.3,0.4."),
    labels: Path = typer.Option(None, "--labels", help="Dataset whose labels name the classes 1, 2, 3 (default: "
                                "necrosis, oedema, enhancing)."),
) -> None:
    """Per voxel: tumour, then core vs oedema, then enhancing vs non-enhancing, by proportions of votes."""
    from clinseg.data.dataset import read_spec
    from clinseg.inference.voting import check_thresholds, vote_folders, voting_classes

    label_values = None
    if labels is not None:
        label_values = voting_classes(read_spec(labels).label_values, str(labels / "dataset.json"))
    values = check_thresholds(thresholds)
    cases = vote_folders(pred_dirs, out, values, label_values)
    console.print(f"voted {len(cases)} case(s) of {len(pred_dirs)} model(s) with T_tumour={values[0]:g}, "
                  f"T_core={values[1]:g}, T_enhancing={values[2]:g} into [bold]{out}[/]")
