"""``clinseg phantom NAME OUT``: generate a procedural dataset (the embedded default data)."""

from __future__ import annotations

from pathlib import Path

import typer

from clinseg.cli._common import console, handle_errors
from clinseg.errors import ConfigError


def _parse_rates(values: list[str]) -> dict[str, float]:
    """``["Lens=0.2,Eye=1", "Pituitary=0.5"]`` -> ``{"Lens": 0.2, "Eye": 1.0, "Pituitary": 0.5}``."""
    rates: dict[str, float] = {}
    for item in (part.strip() for value in values for part in value.split(",")):
        if not item:
            continue
        name, sep, prob = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            rates[name.strip()] = float(prob)
        except ValueError:
            raise ConfigError(f"--delineation-rate: expected NAME=P (e.g. Lens=0.5), got {item!r}") from None
    return rates


@handle_errors
def phantom(
    name: str = typer.Argument(..., metavar="NAME", help="Phantom name: head-oar (MRI, partial labels), abdomen-ct (CT, small organs), ct-bone (leg CT, fibula) or brain-tumour (4-sequence MRI, glioma labels)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output dataset folder."),
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
    structures: str | None = typer.Option(
        None, "--structures",
        help="head-oar only: organ set, seed000 (11 OARs near the tumour, default) or seed001 (12 structures with "
             "brain and hippocampi, delineated with the frequencies of seed 001 Table 4.1).",
    ),
    delineation_rate: list[str] | None = typer.Option(
        None, "--delineation-rate",
        help="head-oar only: NAME=P, probability that a training case has organ NAME delineated (a structure, "
             "or a left/right pair such as Lens); repeat or separate with commas.",
    ),
) -> None:
    """Generate a procedural phantom dataset (images, per-structure masks, dataset.json, preview.png)."""
    from clinseg.phantoms import generate_phantom

    options: dict[str, object] = {} if spacing is None else {"spacing_mm": spacing}
    if missing_sequences is not None:  # phantoms without the option refuse it through the registry
        options["missing_sequences"] = missing_sequences
    if structures is not None:
        options["structures"] = structures
    if delineation_rate:
        options["delineation_rates"] = _parse_rates(delineation_rate)
    path = generate_phantom(name, out, cases=cases, test_cases=test_cases, seed=seed, **options)
    console.print(f"wrote [bold]{path}[/] ({cases} training + {test_cases} test cases); preview: {path / 'preview.png'}")
