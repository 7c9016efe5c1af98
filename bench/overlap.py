"""Benchmark: the Dice cost and the time saved by a smaller sliding-window overlap, on a trained run.

Each held-out case of a dataset is segmented by the run's predictor (``Predictor.segment``: the plan's grid,
test-time mirroring, largest components, as ``clinseg predict`` does) once per overlap; Dice is computed
where the case delineates the structure. Prints, per overlap, the mean time per case and the mean Dice per
structure and over all, and the difference to the first overlap. nnU-Net uses 0.5; windows overlapping by
0.25 need about (1.5 / 1.75)^3 ~ 0.63 of the forward passes of 0.5 for a volume much larger than a window.

Usage: ``python bench/overlap.py RUN DATASET [--cases 15] [--overlaps 0.5 0.25]`` (``DATASET`` holds
``imagesTs`` and ``structuresTs``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_flags  # noqa: E402

from clinseg.data.dataset import load_dataset  # noqa: E402
from clinseg.data.loading import load_image  # noqa: E402
from clinseg.inference.cascade import load_predictor  # noqa: E402
from clinseg.io.image import read_image  # noqa: E402


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--cases", type=int, default=15)
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.5, 0.25])
    args = parser.parse_args()

    predictor = load_predictor(args.run)
    dataset = load_dataset(args.dataset)
    records = list(dataset.test)[: args.cases]
    structures = list(predictor.structures)
    results: dict[float, dict[str, list[float]]] = {}
    seconds: dict[float, list[float]] = {}
    for overlap in args.overlaps:
        predictor.config.overlap = overlap
        results[overlap], seconds[overlap] = {s: [] for s in structures}, []
        for record in records:
            raw, geometry = load_image(record, "none")
            start = time.perf_counter()
            masks = predictor.segment(raw, geometry)
            seconds[overlap].append(time.perf_counter() - start)
            folder = args.dataset / "structuresTs" / record.case_id
            for n, name in enumerate(structures):
                reference = folder / f"{name}.nii.gz"
                if reference.is_file():
                    results[overlap][name].append(dice(masks[n] > 0, read_image(reference).array > 0))
    first = args.overlaps[0]
    print(f"run {args.run}, {len(records)} held-out cases; machine: {cpu_flags()}")
    print("| overlap | s per case | " + " | ".join(structures) + " | mean Dice | vs " + f"{first} |")
    print("| --- " * (len(structures) + 4) + "|")
    means = {o: float(np.mean([np.mean(v) for v in r.values() if v])) for o, r in results.items()}
    for overlap in args.overlaps:
        per = " | ".join(f"{np.mean(v):.3f}" if v else "-" for v in results[overlap].values())
        print(f"| {overlap} | {np.mean(seconds[overlap]):.1f} | {per} | {means[overlap]:.3f} "
              f"| {means[overlap] - means[first]:+.3f} |")


if __name__ == "__main__":
    main()
