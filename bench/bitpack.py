"""Benchmark: bit-packed label storage against one byte per mask (seed 001 §4.2.1.2).

The OAR model reads the masks of all ``C`` classes for every training patch. Stored one byte per mask (a
``(C, Z, Y, X)`` uint8 stack, or one file per mask) a case costs ``C`` bytes per voxel; bit-packed
(:mod:`clinseg.data.bitpack`) it costs one integer per voxel (``uint8`` up to 8 classes, ``uint16`` up to 16),
and class ``c`` is read back with ``packed & 2**c``. In one process, on the same random masks, this measures:

(a) memory of one case's labels, packed / byte-per-mask;
(b) decoding the labels of a batch of 2D patches (``--batch`` patches of ``--patch``² at random places, the
    sampler's access pattern): unpacking all classes from the packed volume vs slicing the uint8 stack;
(c) reading one case from disk: one ``.npy`` of the packed volume vs one ``.npy`` per mask (page cache warm;
    the files lie in a temporary folder).

Volumes default to the seed's grid (``320 x 365 x 200``) and 8 classes (its organs). Each time is the median
of ``--repeat`` runs after one warm-up. Prints one line per measure and, as the LAST line,
``packed / byte-per-mask: memory <m>x, patch decode <d>x, disk read <r>x`` (below 1: packed is smaller or
faster).

Usage: ``python bench/bitpack.py [--classes 8] [--shape 200 365 320] [--batch 10] [--patch 230] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _timing import median_seconds


def _masks(classes: int, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """``classes`` blob-like masks: random boxes of varied size (the byte cost does not depend on content)."""
    masks = np.zeros((classes, *shape), dtype=np.uint8)
    for c in range(classes):
        size = [max(2, int(s * rng.uniform(0.05, 0.6))) for s in shape]
        lo = [int(rng.integers(0, s - z + 1)) for s, z in zip(shape, size)]
        masks[c][tuple(slice(a, a + z) for a, z in zip(lo, size))] = 1
    return masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=[200, 365, 320], metavar=("Z", "Y", "X"))
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--patch", type=int, default=230)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from clinseg.data.bitpack import pack_masks, unpack_masks

    rng = np.random.default_rng(0)
    shape = tuple(args.shape)
    masks = _masks(args.classes, shape, rng)  # type: ignore[arg-type]
    packed = pack_masks(masks)
    assert np.array_equal(unpack_masks(packed, args.classes), masks)
    memory = packed.nbytes / masks.nbytes
    print(f"memory per case: packed {packed.nbytes / 2**20:.1f} MiB ({packed.dtype}), byte per mask "
          f"{masks.nbytes / 2**20:.1f} MiB")

    size = min(args.patch, shape[1], shape[2])
    corners = [(int(rng.integers(shape[0])), int(rng.integers(shape[1] - size + 1)),
                int(rng.integers(shape[2] - size + 1))) for _ in range(args.batch)]

    def decode_packed() -> list[np.ndarray]:
        return [unpack_masks(packed[z:z + 1, y:y + size, x:x + size], args.classes) for z, y, x in corners]

    def slice_bytes() -> list[np.ndarray]:
        return [np.ascontiguousarray(masks[:, z:z + 1, y:y + size, x:x + size]) for z, y, x in corners]

    t_packed = median_seconds(decode_packed, args.repeat)
    t_bytes = median_seconds(slice_bytes, args.repeat)
    print(f"labels of {args.batch} patches of {size}²: packed decode {t_packed * 1e3:.2f} ms, byte-per-mask "
          f"slicing {t_bytes * 1e3:.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "packed.npy", packed)
        for c in range(args.classes):
            np.save(folder / f"mask{c}.npy", masks[c])
        r_packed = median_seconds(lambda: np.load(folder / "packed.npy"), args.repeat)
        r_bytes = median_seconds(lambda: [np.load(folder / f"mask{c}.npy") for c in range(args.classes)],
                                  args.repeat)
    print(f"reading one case: packed {r_packed * 1e3:.1f} ms, {args.classes} mask files {r_bytes * 1e3:.1f} ms")
    print(f"packed / byte-per-mask: memory {memory:.3f}x, patch decode {t_packed / t_bytes:.2f}x, "
          f"disk read {r_packed / r_bytes:.2f}x")


if __name__ == "__main__":
    main()
