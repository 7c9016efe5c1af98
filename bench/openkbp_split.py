"""The fixed OpenKBP split of the real-data benchmark: a dataset folder of links into the shared data.

The 203 OpenKBP cases (``../shared/data/openkbp``, all in ``imagesTr``) are split once, by a seeded
permutation of the sorted case ids, into ``--train`` training cases (``imagesTr``/``structuresTr``) and the
rest held out (``imagesTs``/``structuresTs``), complete or not: held-out OARs are scored only where the
clinic delineated them. Files are symbolic links (nothing is copied); ``dataset.json`` is copied. (The
benchmark's naive arm trains on the same folder with ``undelineated: background``.)

Usage: ``python bench/openkbp_split.py SRC OUT [--train 163] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(src.resolve(), dst)


def split_dataset(src: Path, out: Path, train: int = 163, seed: int = 0) -> dict[str, list[str]]:
    """Write the split dataset to ``out`` (idempotent) and return ``{"train": [...], "test": [...]}``."""
    raw = json.loads((src / "dataset.json").read_text(encoding="utf-8"))
    ending = raw.get("file_ending", ".nii.gz")
    cases = sorted(p.name[: -len(f"_0000{ending}")] for p in (src / "imagesTr").glob(f"*_0000{ending}"))
    order = np.random.default_rng(seed).permutation(len(cases))
    chosen = {"train": sorted(cases[i] for i in order[:train]), "test": sorted(cases[i] for i in order[train:])}
    for split, suffix in (("train", "Tr"), ("test", "Ts")):
        for case in chosen[split]:
            _link(src / "imagesTr" / f"{case}_0000{ending}", out / f"images{suffix}" / f"{case}_0000{ending}")
            for mask in sorted((src / "structuresTr" / case).glob(f"*{ending}")):
                _link(mask, out / f"structures{suffix}" / case / mask.name)
    (out / "dataset.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    (out / "split.json").write_text(json.dumps(chosen, indent=1), encoding="utf-8")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=163)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    chosen = split_dataset(args.src, args.out, args.train, args.seed)
    print(f"{args.out}: {len(chosen['train'])} training, {len(chosen['test'])} held-out cases")


if __name__ == "__main__":
    main()
