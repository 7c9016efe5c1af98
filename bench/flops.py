"""Benchmark: how far the training step and inference are from the machine's limit, in GFLOP/s.

The network's convolution FLOPs are counted exactly (forward hooks on every ``Conv3d``/``ConvTranspose3d``:
2 x input channels x output channels x kernel volume x output voxels per convolution, divided by the
groups); a training step costs about 3x the forward pass (forward, gradient of the input, gradient of the
weights). Achieved GFLOP/s = counted FLOPs / median wall time, for fp32 and for the dtype clinseg picks.

The peak is measured in the same run: a large matrix product (``torch.mm``, 2048 x 2048, fp32 and bf16) and
one large 3x3x3 convolution with 64 channels, with the same threads. The report gives each measurement as
a share of the best peak, so "how close to the limit" needs no datasheet.

Usage: ``python bench/flops.py [--model dynunet] [--patch 72 48 48] [--batch 2] [--threads 0]``
(default: the network and patch clinseg plans for OpenKBP on a CPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_flags  # noqa: E402
from _timing import median_seconds  # noqa: E402

OPENKBP_KWARGS = {"features": [16, 32, 64, 128], "kernels": [[3, 3, 3]] * 4,
                  "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]], "deep_supervision": 2}


def conv_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs of every 3D (transposed) convolution in one forward pass of ``x`` (multiply-add = 2 FLOPs)."""
    total = 0.0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        conv = module  # type: ignore[assignment]
        kernel = float(torch.tensor(conv.kernel_size).prod())
        if isinstance(conv, nn.ConvTranspose3d):  # every input voxel scatters a kernel
            voxels = float(inputs[0][0, 0].numel()) * inputs[0].shape[0]
        else:
            voxels = float(output[0, 0].numel()) * output.shape[0]
        total += 2.0 * conv.in_channels * conv.out_channels / conv.groups * kernel * voxels

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def peak_gflops(threads: int) -> dict[str, float]:
    """Measured peaks: fp32 and bf16 matrix products, and a wide fp32 3x3x3 convolution."""
    torch.set_num_threads(threads)
    out = {}
    n = 2048
    for name, dtype in (("matmul fp32", torch.float32), ("matmul bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out[name] = 2 * n**3 / median_seconds(lambda a=a, b=b: torch.mm(a, b), 5, warmup=2) / 1e9
    conv = nn.Conv3d(64, 64, 3, padding=1).eval()
    x = torch.randn(1, 64, 32, 32, 32)
    with torch.no_grad():
        seconds = median_seconds(lambda: conv(x), 5, warmup=2)
    out["conv3d 64->64 fp32"] = 2 * 64 * 64 * 27 * 32**3 / seconds / 1e9
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dynunet")
    parser.add_argument("--patch", type=int, nargs=3, default=[72, 48, 48])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    from clinseg.cores import available_cores
    from clinseg.losses import create_loss
    from clinseg.losses.composite import deep_supervision
    from clinseg.models import create_model
    from clinseg.training.device import amp_dtype, autocast

    threads = args.threads or available_cores()
    torch.set_num_threads(threads)
    kwargs = OPENKBP_KWARGS if args.model == "dynunet" else {}
    torch.manual_seed(0)
    model = create_model(args.model, 1, 7, **kwargs)
    x = torch.randn(args.batch, 1, *args.patch)
    model.eval()
    forward_flops = conv_flops(model, x)
    model.train()
    target = (torch.rand(args.batch, 7, *args.patch) > 0.97).to(torch.uint8)
    annotated = torch.ones(args.batch, 7, dtype=torch.bool)
    loss_fn = deep_supervision(create_loss("masked_bce", dice_weight=1.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rows = []
    device = torch.device("cpu")
    for label, dtype in (("fp32", None), ("clinseg's choice", amp_dtype(device, "auto"))):
        def step(dtype: torch.dtype | None = dtype) -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                out = model(x)
            loss_fn(out, target, annotated).backward()
            optimizer.step()

        def infer(dtype: torch.dtype | None = dtype) -> None:
            with torch.no_grad(), autocast(device, dtype):
                model.eval()(x)
            model.train()

        train_s = median_seconds(step, 5, warmup=2)
        infer_s = median_seconds(infer, 5, warmup=2)
        name = f"{label} ({'fp32' if dtype is None else str(dtype).replace('torch.', '')})"
        rows.append((f"training step, {name}", 3 * forward_flops, train_s))
        rows.append((f"forward (inference), {name}", forward_flops, infer_s))
    peaks = peak_gflops(threads)
    best = max(peaks.values())
    print(f"{args.model} {kwargs.get('features', '')}, batch {args.batch} x {args.patch}, {threads} threads, "
          f"CPU: {cpu_flags()}")
    print(f"forward pass: {forward_flops / 1e9:.1f} GFLOP of convolutions")
    print("| measurement | GFLOP | time | GFLOP/s | share of best peak |")
    print("| --- | --- | --- | --- | --- |")
    for name, value in peaks.items():
        print(f"| peak: {name} | | | {value:.0f} | {value / best:.0%} |")
    for name, flops, seconds in rows:
        rate = flops / seconds / 1e9
        print(f"| {name} | {flops / 1e9:.1f} | {seconds * 1000:.0f} ms | {rate:.0f} | {rate / best:.0%} |")



if __name__ == "__main__":
    main()
