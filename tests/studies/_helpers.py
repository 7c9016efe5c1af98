"""What the study tests share: the tiny training configuration of every cell."""

from __future__ import annotations

#: A network small enough to train two iterations on the 8 x 10 x 12 volumes of ``make_dataset`` in a blink.
TINY_BASE = {
    "model": "resfcn3d",
    "model_kwargs": {"features": [4, 4, 4], "blocks": 1},
    "patch_size": [8, 8, 8],
    "batch_size": 2,
    "iterations": 2,
    "val_every": 2,
    "checkpoint_every": 1,
    "threads": 1,
}
