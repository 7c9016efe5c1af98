"""Benchmark: a training step alone and beside one busy process, per thread count and OpenMP wait policy.

Clinics train on shared servers and laptops. On 2 cores, torch with 2 threads spins its OpenMP workers
between parallel regions (libgomp's default ``OMP_WAIT_POLICY`` is active for a while); when another
process holds one core, each region waits for a thread that is not running and a step can take 10x longer.
This benchmark measures, for each setting, the median step time of the same network on the same batches
alone and while one busy neighbour runs (a process spinning on one core), and prints the ratio.

Settings: ``threads`` (the cores, or 1) x the OpenMP environment (:data:`SETTINGS`).
Each setting runs in its own subprocess, because OpenMP reads its environment once, when torch starts.

Usage: ``python bench/contention.py [--model unet3d] [--patch 32] [--batch 4] [--steps 12]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_flags  # noqa: E402
from _timing import median_seconds  # noqa: E402

#: OpenMP environments compared: libgomp's default (spin a while, then sleep), always spin, always sleep, and
#: a short spin.
SETTINGS = {"(unset)": {}, "active": {"OMP_WAIT_POLICY": "ACTIVE"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
            "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"}}
BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def _measure(args: argparse.Namespace) -> dict:
    """In the subprocess: the median step time alone, then beside one spinning process."""
    import numpy as np
    import torch

    from clinseg.losses import create_loss
    from clinseg.losses.composite import deep_supervision
    from clinseg.models import create_model
    from clinseg.training.device import amp_dtype, autocast, select_device

    torch.set_num_threads(args.threads)
    device = select_device("auto")
    torch.manual_seed(0)
    model = create_model(args.model, 1, 7).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = deep_supervision(create_loss("masked_bce", dice_weight=1.0))
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.normal(size=(args.batch, 1, *[args.patch] * 3)).astype(np.float32))
    target = torch.from_numpy((rng.random((args.batch, 7, *[args.patch] * 3)) > 0.97).astype(np.uint8))
    annotated = torch.ones(args.batch, 7, dtype=torch.bool)
    dtype = amp_dtype(device, "auto")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            out = model(image)
        loss_fn(out, target, annotated).backward()
        optimizer.step()

    alone = median_seconds(step, args.steps, warmup=2)
    busy = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=600)])
    try:
        time.sleep(0.5)
        beside = median_seconds(step, args.steps, warmup=1)
    finally:
        busy.kill()
        busy.wait()
    return {"threads": args.threads,
            "alone_s": alone, "beside_s": beside, "ratio": beside / alone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet3d")
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args)))
        return

    from clinseg.cores import available_cores

    cores = available_cores()
    print(f"{args.model}, batch {args.batch} x {args.patch}³, {cores} cores, CPU: {cpu_flags()}")
    print("| threads | OpenMP environment | step alone | beside one busy process | ratio |")
    print("| --- | --- | --- | --- | --- |")
    results = []
    for threads in sorted({cores, 1}, reverse=True):
        for policy, variables in SETTINGS.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
            env.update(variables)
            cmd = [sys.executable, __file__, "--child", "--threads", str(threads), "--model", args.model,
                   "--patch", str(args.patch), "--batch", str(args.batch), "--steps", str(args.steps)]
            result = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True,
                                               check=True).stdout.strip().splitlines()[-1])
            result["wait_policy"] = policy
            results.append(result)
            print(f"| {threads} | {policy} | {result['alone_s'] * 1000:.0f} ms | {result['beside_s'] * 1000:.0f} ms "
                  f"| {result['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
