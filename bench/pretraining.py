"""Benchmark: does distorting patches on the fly starve the restoration pretraining loop?

Seed 002 §2.2 "pregenerated" its pixel-shuffled data "to reduce time consumption of the training process";
``PretrainConfig.precompute`` offers the same. This measures, in one process and on the same device, the
time of the CPU-side distortion of one batch (``clinseg.pretraining.source.distort_patches``, Models Genesis
defaults, one thin axis squeezed for slices) against one training step of the network on that batch
(``clinseg.training.loop.train_step``: forward, L1 loss, backward, Adam; the loop's device and bf16 policy):

(a) 2-D: the default pretraining network, ``unet2d`` (features 16-128, batch norm), ``--batch-2d`` slices of
    ``1 x --patch-2d x --patch-2d`` (default 16 x 64²);
(b) 3-D: ``unet3d`` (features 8-64, group norm), ``--batch-3d`` patches of ``--patch-3d``³ (default 4 x 32³).

Each time is the median of ``--repeat`` runs after two warm-up runs. Prints one line per setting and, as the
LAST line, ``distortion / step: 2-D <r2>x, 3-D <r3>x``; a ratio near or above 1 means the loop waits for the
distortions (use ``precompute``, or a data-loading worker, on such a machine), well below 1 that it does not.

Usage: ``python bench/pretraining.py [--repeat 5] [--threads 0] [--batch-2d 16] [--batch-3d 4]``
"""

from __future__ import annotations

import argparse

from _timing import median_seconds


def _measure(model_name: str, patch: tuple[int, int, int], batch_size: int, repeat: int) -> dict:
    import numpy as np
    import torch

    from clinseg.data.samplers import PatchBatch
    from clinseg.models import create_model
    from clinseg.pretraining.config import PretrainConfig
    from clinseg.pretraining.losses import restoration_loss
    from clinseg.pretraining.source import distort_patches
    from clinseg.training.device import amp_dtype, select_device
    from clinseg.training.loop import LoopParts, train_step

    rng = np.random.default_rng(0)
    original = rng.random((batch_size, 1, *patch), dtype=np.float32)
    distort_s = median_seconds(lambda: distort_patches(original, rng), repeat, warmup=2)

    class FixedBatch:  # a sampler that costs nothing: the step alone is timed
        def __init__(self) -> None:
            self.rng = rng
            self.item = PatchBatch(distort_patches(original, rng), original, np.ones((batch_size, 1), bool))

        def batch(self, size: int) -> PatchBatch:
            return self.item

    device = select_device("auto")
    torch.manual_seed(0)
    model = create_model(model_name, 1, 1).to(device)
    parts = LoopParts(model, torch.optim.Adam(model.parameters(), lr=1e-3), restoration_loss("l1"), FixedBatch(),
                      None, device, amp_dtype(device, "auto"), monitor="l1", higher_is_better=False)
    cfg = PretrainConfig(model=model_name, patch_size=list(patch), batch_size=batch_size)

    def step() -> None:
        train_step(parts, cfg)  # type: ignore[arg-type]
        if device.type == "cuda":
            torch.cuda.synchronize()

    step_s = median_seconds(step, repeat, warmup=2)
    return {"distort_s": distort_s, "step_s": step_s, "device": str(device), "amp": str(parts.amp)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all available)")
    parser.add_argument("--batch-2d", type=int, default=16)
    parser.add_argument("--patch-2d", type=int, default=64)
    parser.add_argument("--batch-3d", type=int, default=4)
    parser.add_argument("--patch-3d", type=int, default=32)
    args = parser.parse_args()

    from clinseg.training.device import configure_threads

    threads = configure_threads(args.threads)
    ratios = {}
    for label, model, patch, batch in (
        ("2-D", "unet2d", (1, args.patch_2d, args.patch_2d), args.batch_2d),
        ("3-D", "unet3d", (args.patch_3d,) * 3, args.batch_3d),
    ):
        r = _measure(model, patch, batch, args.repeat)
        ratios[label] = r["distort_s"] / r["step_s"]
        print(f"{label} {model} batch {batch} x {'x'.join(map(str, patch))} on {r['device']} (amp {r['amp']}, "
              f"{threads} threads): distortion {1000 * r['distort_s']:.1f} ms, training step "
              f"{1000 * r['step_s']:.1f} ms, ratio {ratios[label]:.2f}")
    print(f"distortion / step: 2-D {ratios['2-D']:.2f}x, 3-D {ratios['3-D']:.2f}x")


if __name__ == "__main__":
    main()
