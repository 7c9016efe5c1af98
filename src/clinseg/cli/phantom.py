"""``clinseg phantom NAME OUT``: generate a procedural dataset (the embedded default data)."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors


@handle_errors
def phantom(
    name: str = typer.Argument(..., help="Phantom name: head-oar (MRI, partial labels), abdomen-ct (CT, small organs), ct-bone (leg CT, fibula) or brain-tumour (4-sequence MRI, glioma labels)."),
    out: Path = typer.Argument(..., help="Output dataset folder."),
    cases: int = typer.Option(16, "--cases", min=1, help="Number of training cases."),
    test_cases: int = typer.Option(6, "--test-cases", min=0, help="Number of held-out test cases."),
    seed: int = typer.Option(0, "--seed", help="Random seed (the dataset is deterministic for a seed)."),
    spacing: float | None = typer.Option(
        None, "--spacing", min=1.0, max=8.0,
        help="Isotropic voxel size in mm (1.0-8.0); default: the phantom's own (head-oar 2, abdomen-ct 2.5, ct-bone 1.5, brain-tumour 2).",
    ),
    missing_sequences: float | None = typer.Option(
        None, "--missing-sequences", min=0.0, max=1.0,
        help="brain-tumour only: probability that a training case lacks each MR sequence (never all four).",
    ),
) -> None:
    """Generate a procedural phantom dataset (images, per-structure masks, dataset.json, preview.png)."""
    from clinseg.phantoms import generate_phantom

    options: dict[str, float] = {} if spacing is None else {"spacing_mm": spacing}
    if missing_sequences is not None:  # phantoms without the option refuse it through the registry
        options["missing_sequences"] = missing_sequences
    path = generate_phantom(name, out, cases=cases, test_cases=test_cases, seed=seed, **options)
    console.print(f"wrote [bold]{path}[/] ({cases} training + {test_cases} test cases); preview: {path / 'preview.png'}")
