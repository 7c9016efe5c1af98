"""Peak memory of ``clinseg train`` against the number of training cases (OpenKBP: 50 vs all 203).

Two link datasets are made from the shared OpenKBP folder (the first 50 cases, and all of them, every case
a training case), then ``clinseg train DATA --out RUN -n ITERATIONS`` runs on each in a subprocess and its
peak resident memory (the largest of the training process and its data workers, ``ru_maxrss``) is
reported. The preprocessed-case cache is shared, so the second run only preprocesses what the first did
not. Training reads patches from the memory-mapped cache, so the peak should not grow with the cases.

Usage: ``python bench/train_memory.py [--out bench-memory] [--data ../shared/data/openkbp] [--iterations 30]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def link_dataset(src: Path, out: Path, count: int | None) -> Path:
    """A dataset of links to the first ``count`` cases of ``src`` (all when ``None``), all training cases."""
    raw = json.loads((src / "dataset.json").read_text(encoding="utf-8"))
    images = sorted((src / "imagesTr").glob("*_0000.nii.gz"))[:count]
    for image in images:
        case = image.name[: -len("_0000.nii.gz")]
        for path, target in [(image, out / "imagesTr" / image.name)] + [
                (m, out / "structuresTr" / case / m.name) for m in sorted((src / "structuresTr" / case).iterdir())]:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.symlink(path.resolve(), target)
    (out / "dataset.json").write_text(json.dumps(raw), encoding="utf-8")
    return out


def peak_rss_gb(cmd: list[str]) -> float:
    """Run ``cmd`` in a child process (one at a time) and return its peak RSS in GB."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-memory"))
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "openkbp")
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    rows = []
    for count in (50, None):
        name = f"cases-{count or 'all'}"
        data = link_dataset(args.data.resolve(), args.out / name, count)
        run = args.out / f"run-{name}"
        cmd = [sys.executable, "-m", "clinseg", "train", str(data), "--out", str(run), "-n", str(args.iterations),
               "--skip-validation", "--force"]
        cases = len(list((data / "imagesTr").iterdir()))
        rows.append((cases, peak_rss_gb(cmd)))
        print(f"{cases} training cases: peak RSS {rows[-1][1]:.2f} GB", flush=True)
    (args.out / "memory.json").write_text(json.dumps([{"cases": c, "peak_rss_gb": r} for c, r in rows], indent=1))


if __name__ == "__main__":
    main()
