"""Bit-packed label storage: all of a case's binary masks in one integer volume, one bit per class.

Seed 001 §4.2.1.2: with non-exclusive classes every training iteration reads several binary masks; stored
one byte per mask they cost ``N`` bytes per voxel, packed they cost ``ceil(N / 8)`` bytes (one ``uint8`` for up
to 8 classes, ``uint16`` for 16 …), and class ``c`` is read back with a bitwise ``and`` against ``2**c``.

Example
-------
>>> import numpy as np
>>> masks = np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)       # 2 classes, 3 voxels
>>> packed = pack_masks(masks)
>>> packed.dtype, packed.tolist()
(dtype('uint8'), [1, 2, 3])
>>> unpack_masks(packed, 2).astype(int).tolist()
[[1, 0, 1], [0, 1, 1]]
>>> unpack_mask(packed, 1).astype(int).tolist()
[0, 1, 1]
"""

from __future__ import annotations

import numpy as np

__all__ = ["pack_masks", "packed_dtype", "unpack_mask", "unpack_masks"]

_DTYPES = (np.uint8, np.uint16, np.uint32, np.uint64)


def packed_dtype(num_classes: int) -> np.dtype:
    """The smallest unsigned integer type with a bit per class (at most 64 classes)."""
    for dtype in _DTYPES:
        if num_classes <= np.iinfo(dtype).bits:
            return np.dtype(dtype)
    raise ValueError(f"at most 64 classes can be bit-packed, got {num_classes}")


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """Pack ``(N, *spatial)`` binary masks into one ``*spatial`` integer array (bit ``c`` = class ``c``)."""
    masks = np.asarray(masks)
    dtype = packed_dtype(masks.shape[0])
    packed = np.zeros(masks.shape[1:], dtype=dtype)
    for c in range(masks.shape[0]):
        packed |= masks[c].astype(bool).astype(dtype) << dtype.type(c)
    return packed


def unpack_mask(packed: np.ndarray, c: int) -> np.ndarray:
    """Class ``c``'s mask (bool) from a packed array: ``packed & 2**c``."""
    return (packed & packed.dtype.type(1 << c)) != 0


def unpack_masks(packed: np.ndarray, num_classes: int) -> np.ndarray:
    """All ``num_classes`` masks ``(N, *spatial)`` uint8 from a packed array (one vectorised shift)."""
    shifts = np.arange(num_classes, dtype=packed.dtype).reshape((-1,) + (1,) * packed.ndim)
    return ((packed[None] >> shifts) & packed.dtype.type(1)).astype(np.uint8)
