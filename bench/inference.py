"""Benchmark: clinseg's sliding-window inference vs MONAI's default pipeline on the same network and volume.

Network: ``create_model(--model, 1, 11)`` (default ``resfcn3d``, the seed network; default widths,
weights seeded with ``torch.manual_seed(0)``; weights do not change the speed). Volume: a synthetic 1 mm
head, ``--shape Z Y X`` (default 180 256 256): an ellipsoid of soft tissue with a bone shell in air,
intensities normalised like clipped CT (air about -1, bone about +1), Gaussian noise everywhere (air too),
clipped to [-1, 1].

Runs, each in its own subprocess so that its peak RSS (``VmHWM``) is honest:

(a) ``monai``: ``torch.inference_mode()``, fp32,
    ``sliding_window_inference(x, patch, sw_batch_size=1, predictor=model, overlap=0.5, mode="gaussian")``
    then ``torch.sigmoid`` (what a MONAI tutorial does, with nnU-Net's Gaussian blending and overlap);
(b) ``clinseg``: ``predict_probabilities(model, image, patch)`` with its defaults (overlap 0.5, Gaussian,
    CPU batch of about 64³ voxels, bf16 autocast, channels-last on the CPU, no mirroring, no skipping);
    ``--batch-size`` overrides the batch;
(c) ``clinseg-skip`` (only with ``--runs``): the same with ``skip_background=--air`` (pure-air windows
    not run); information only.
(d) ``clinseg-fp32``, ``clinseg-onnxruntime``, ``clinseg-openvino`` (only with ``--runs``, or
    ``--backends`` for all three): (b) in float32 (``amp=False``; what (b) is on CPUs without native bf16),
    and (b) with the forward passes on an ONNX export of the network run by that engine (float32,
    :mod:`clinseg.inference.backends`). The export and the engine's start are done before the clock starts
    (once per network and machine in ``clinseg predict``: cached) and reported as ``setup``.

Prints wall and CPU time, voxels/s and peak RSS of each (the fastest of ``--repeat`` interleaved runs, for
shared machines), its speed as a multiple of (a)'s, the max |probability difference| to (a), and as the
LAST line ``speedup vs MONAI: <ratio>x, max |prob diff| <d>`` for (b) vs (a).

Patch: 128³ by default, an nnU-Net-like inference window for a 1 mm head; smaller windows (``--patch 64``,
``--patch 32``) mean more windows and a larger lead for clinseg: see docs/benchmarks.md.

Usage: ``python bench/inference.py [--shape 180 256 256] [--patch 128] [--model resfcn3d] [--repeat 1]
[--backends]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The pipelines, in the order they are run; (d) are clinseg on the exported engines.
RUNS = ["monai", "clinseg", "clinseg-skip", "clinseg-fp32", "clinseg-onnxruntime", "clinseg-openvino"]
_ENGINES = ("clinseg-onnxruntime", "clinseg-openvino")


def head_volume(shape: tuple[int, int, int], seed: int = 0):  # -> np.ndarray (1, Z, Y, X) float32
    """A head-like ``(1, Z, Y, X)`` float32 volume at 1 mm: tissue ellipsoid, 6 mm bone shell, air, noise."""
    import numpy as np

    z, y, x = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    # semi-axes as fractions of the field of view: the head fills most of it, air remains in the corners
    r = np.sqrt((z[:, None, None] / 0.9) ** 2 + (y[None, :, None] / 0.85) ** 2 + (x[None, None, :] / 0.72) ** 2)
    shell = 6.0 / (0.72 * shape[2] / 2)  # 6 mm of bone, in normalised radius units
    volume = np.full(shape, -1.0, np.float32)
    volume[r < 1.0] = 1.0  # bone
    volume[r < 1.0 - shell] = 0.05  # brain / soft tissue
    rng = np.random.default_rng(seed)
    volume += rng.normal(0.0, 0.03, size=shape).astype(np.float32)
    np.clip(volume, -1.0, 1.0, out=volume)
    return volume[None]


def _peak_rss_gb() -> float:
    """Peak resident set size of this process (VmHWM), GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _worker(args: argparse.Namespace) -> None:
    """Run one pipeline, save its probabilities to ``args.out`` and print a JSON record."""
    import numpy as np
    import torch

    from clinseg.models import create_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model, 1, 11).eval()
    image = head_volume(tuple(args.shape))
    patch = tuple(args.patch)
    backend, setup = None, ""
    if args.worker in _ENGINES:
        from clinseg.inference.backend_choice import choose_backend

        setup_start = time.perf_counter()
        with tempfile.TemporaryDirectory() as cache:  # the ONNX file is read into the engine: not needed after
            backend = choose_backend(model, 1, patch, requested=args.worker.removeprefix("clinseg-"),
                                     cache_dir=cache).backend
        setup = f"  (setup: export + engine start {time.perf_counter() - setup_start:.1f} s)"
    start, cpu_start = time.perf_counter(), time.process_time()
    if args.worker == "monai":
        from monai.inferers import sliding_window_inference

        with torch.inference_mode():
            logits = sliding_window_inference(
                torch.from_numpy(image)[None], patch, sw_batch_size=1, predictor=model, overlap=0.5, mode="gaussian"
            )
            probs = torch.sigmoid(logits)[0].numpy()
        del logits
    else:
        from clinseg.inference import predict_probabilities, window_starts

        skip = args.air if args.worker == "clinseg-skip" else None
        grid = [window_starts(max(n, p), p, 0.5) for n, p in zip(args.shape, patch)]
        windows = len(grid[0]) * len(grid[1]) * len(grid[2])
        probs = predict_probabilities(model, image, patch, device="cpu", skip_background=skip,
                                      batch_size=args.batch_size, backend=backend, amp=args.worker != "clinseg-fp32")
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    record = {"run": args.worker, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_gb": _peak_rss_gb(),
              "dtype": str(probs.dtype), "note": setup}
    if args.worker == "clinseg-skip":  # counted after timing: how many windows were pure air
        pz, py, px = patch
        air = sum(not (image[:, z : z + pz, y : y + py, x : x + px] > args.air).any()
                  for z, y, x in itertools.product(*grid))
        record["note"] = f"  ({air} of {windows} windows skipped as air)"
    np.save(args.out, probs)
    print(json.dumps(record), flush=True)


def _max_diff(path_a: Path, path_b: Path) -> float:
    """max |a - b| over two saved probability volumes, class by class (memory-mapped)."""
    import numpy as np

    a, b = np.load(path_a, mmap_mode="r"), np.load(path_b, mmap_mode="r")
    return max(float(np.abs(a[i].astype(np.float32) - b[i].astype(np.float32)).max()) for i in range(a.shape[0]))


def _run_worker(run: str, out: Path, args: argparse.Namespace) -> dict:
    """Run one pipeline in a fresh interpreter; its JSON record plus the load average before it."""
    cmd = [sys.executable, __file__, "--worker", run, "--out", str(out), "--shape", *map(str, args.shape),
           "--patch", *map(str, args.patch), "--threads", str(args.threads), "--air", str(args.air),
           "--model", args.model]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{run} failed:\n{proc.stderr}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resfcn3d", help="registered network (resfcn3d, unet3d, dynunet)")
    parser.add_argument("--shape", type=int, nargs=3, default=[180, 256, 256], metavar=("Z", "Y", "X"))
    parser.add_argument("--patch", type=int, nargs="+", default=[128], help="one size (cubic) or Z Y X")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=None, help="clinseg batch (default: its own)")
    parser.add_argument("--air", type=float, default=-0.8, help="skip_background value for run (c)")
    parser.add_argument("--runs", nargs="+", default=["monai", "clinseg"], choices=RUNS)
    parser.add_argument("--backends", action="store_true",
                        help="add the rows clinseg-fp32, clinseg-onnxruntime and clinseg-openvino to --runs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each pipeline N times, interleaved, and keep the fastest (shared machines)")
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if len(args.patch) == 1:
        args.patch = args.patch * 3
    if args.backends:
        args.runs += [run for run in RUNS[3:] if run not in args.runs]
    if args.worker:
        _worker(args)
        return

    import torch

    voxels = args.shape[0] * args.shape[1] * args.shape[2]
    print(f"volume {tuple(args.shape)} ({voxels / 1e6:.1f} Mvox), patch {tuple(args.patch)}, threads {args.threads}, "
          f"torch {torch.__version__}, repeat {args.repeat}", flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for run in args.runs:
                rec = _run_worker(run, Path(tmp) / f"{run}.npy", args)
                best = results.setdefault(run, rec)
                if rec["seconds"] < best["seconds"]:
                    results[run] = {**rec, "peak_rss_gb": max(rec["peak_rss_gb"], best["peak_rss_gb"])}
        for run, rec in results.items():
            line = (f"{run:13s} {rec['seconds']:7.1f} s wall ({rec['cpu_seconds']:6.1f} s CPU, load before "
                    f"{rec['load']:.2f})  {voxels / rec['seconds'] / 1e6:5.2f} Mvox/s  peak RSS "
                    f"{rec['peak_rss_gb']:.2f} GB  output {rec['dtype']}")
            if "monai" in results and run != "monai":
                rec["diff"] = _max_diff(Path(tmp) / "monai.npy", Path(tmp) / f"{run}.npy")
                line += (f"  {results['monai']['seconds'] / rec['seconds']:.2f}x monai, max |prob diff| vs monai "
                         f"{rec['diff']:.2e}")
            line += rec["note"]
            print(line, flush=True)
        if "monai" in results and "clinseg" in results:
            speedup = results["monai"]["seconds"] / results["clinseg"]["seconds"]
            print(f"speedup vs MONAI: {speedup:.2f}x, max |prob diff| {results['clinseg']['diff']:.2e}")


if __name__ == "__main__":
    main()
