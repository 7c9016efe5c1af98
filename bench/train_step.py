"""Benchmark: clinseg's training step vs a plain MONAI-style training loop on the same network.

Both sides train the same network (default resfcn3d, 1 input channel, 11 outputs) on the same random
batches of cubic patches with the masked multi-label BCE + Dice loss. The reference is the loop a MONAI
tutorial writes: fp32, ``optimizer.zero_grad(); loss.backward(); optimizer.step()``. clinseg's side is
``clinseg.training.loop.train_step`` with its device policy (bf16 autocast where the CPU/GPU runs it
natively). Each side runs in its own subprocess so its peak RSS is honest.

Prints voxels/s for both, peak RSS, and as the last line ``speedup vs MONAI: <ratio>x``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _measure(side: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from clinseg.data.loading import CaseData
    from clinseg.data.samplers import ClassAwarePatchSampler
    from clinseg.io import Geometry
    from clinseg.losses import create_loss
    from clinseg.models import create_model
    from clinseg.training.config import TrainConfig
    from clinseg.training.device import amp_dtype, configure_threads, select_device
    from clinseg.training.loop import LoopParts, train_step

    configure_threads(args.threads)
    device = select_device("auto")
    torch.manual_seed(0)
    model = create_model(args.model, 1, 11).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = create_loss("masked_bce", dice_weight=1.0)
    rng = np.random.default_rng(0)
    shape = (args.patch * 2,) * 3
    target = (rng.random((11, *shape)) > 0.97).astype(np.uint8)
    case = CaseData("bench", rng.normal(size=(1, *shape)).astype(np.float32), target, np.ones(11, bool),
                    Geometry((1.0, 1.0, 1.0), shape=shape))
    sampler = ClassAwarePatchSampler([case], (args.patch,) * 3, 0.5, np.random.default_rng(1))
    cfg = TrainConfig(batch_size=args.batch, patch_size=[args.patch] * 3)

    if side == "clinseg":
        parts = LoopParts(model, optimizer, loss_fn, sampler, None, device, amp_dtype(device, "auto"))

        def step() -> None:
            train_step(parts, cfg)
    else:
        def step() -> None:  # the plain loop of a MONAI tutorial: fp32, no autocast
            batch = sampler.batch(args.batch)
            image = torch.from_numpy(batch.image).to(device)
            labels = torch.from_numpy(batch.target).to(device)
            annotated = torch.from_numpy(batch.annotated).to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(image), labels, annotated)
            loss.backward()
            optimizer.step()

    model.train()
    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    voxels = args.batch * args.patch**3
    return {
        "side": side,
        "seconds_per_step": seconds,
        "voxels_per_s": voxels / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": str(device),
        "amp": str(amp_dtype(device, "auto")) if side == "clinseg" else "fp32",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resfcn3d")
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--side", choices=["clinseg", "monai"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(_measure(args.side, args)))
        return
    results = {}
    for side in ("monai", "clinseg"):
        out = subprocess.run([sys.executable, __file__, "--side", side, *sys.argv[1:]], check=True,
                             capture_output=True, text=True).stdout
        results[side] = json.loads(out.strip().splitlines()[-1])
    for side, r in results.items():
        print(f"{side:8s} {r['seconds_per_step'] * 1000:8.1f} ms/step  {r['voxels_per_s'] / 1e6:7.2f} Mvox/s  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB  ({r['device']}, {r['amp']})")
    print(f"network {args.model}, batch {args.batch} x {args.patch}^3, {args.steps} timed steps")
    print(f"speedup vs MONAI: {results['monai']['seconds_per_step'] / results['clinseg']['seconds_per_step']:.2f}x")


if __name__ == "__main__":
    main()
