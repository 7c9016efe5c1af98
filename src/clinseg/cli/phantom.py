"""``clinseg phantom NAME OUT``: generate a procedural dataset (the embedded default data)."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors


@handle_errors
def phantom(
    name: str = typer.Argument(..., help="Phantom name, e.g. head-oar (see --list)."),
    out: Path = typer.Argument(..., help="Output dataset folder."),
    cases: int = typer.Option(16, "--cases", min=1, help="Number of training cases."),
    test_cases: int = typer.Option(6, "--test-cases", min=0, help="Number of held-out test cases."),
    seed: int = typer.Option(0, "--seed", help="Random seed (the dataset is deterministic for a seed)."),
    spacing: float = typer.Option(2.0, "--spacing", min=1.0, max=8.0, help="Isotropic voxel size in mm (1.0-8.0)."),
) -> None:
    """Generate a procedural phantom dataset with partial clinical-style delineations."""
    from clinseg.phantoms import generate_phantom

    path = generate_phantom(name, out, cases=cases, test_cases=test_cases, seed=seed, spacing_mm=spacing)
    console.print(f"wrote [bold]{path}[/] ({cases} training + {test_cases} test cases); preview: {path / 'preview.png'}")
