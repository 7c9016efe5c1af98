"""Pure checks on arrays read from a dataset; each returns human-readable problems (empty = fine).

Shared by :mod:`clinseg.data.loading` (which raises on the first problem) and
:mod:`clinseg.data.validate` (which collects every problem of a dataset).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from clinseg.io.image import Geometry


def check_finite(array: np.ndarray, path: Path) -> list[str]:
    """NaN or infinite voxels (only floating-point arrays can hold them)."""
    if not np.issubdtype(array.dtype, np.floating):
        return []
    n_nan = int(np.isnan(array).sum())
    n_inf = int(np.isinf(array).sum())
    if n_nan or n_inf:
        return [f"{path}: {n_nan} NaN and {n_inf} Inf voxels"]
    return []


def check_same_grid(reference: Geometry, ref_path: Path, other: Geometry, path: Path) -> list[str]:
    """Shape, spacing, origin and direction of ``other`` must equal those of ``reference``."""
    diffs = other.mismatch(reference)
    if diffs:
        return [f"{path}: grid differs from {ref_path.name}: " + "; ".join(diffs)]
    return []


def check_label_values(array: np.ndarray, allowed: Iterable[int], path: Path) -> list[str]:
    """Label-map values must be 0 or declared in ``dataset.json``."""
    values = np.unique(array)
    if np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values)):
        return [f"{path}: label map holds non-integer values {_few(values[values != np.round(values)])}"]
    undeclared = sorted(set(int(v) for v in values) - set(allowed) - {0})
    if undeclared:
        return [f"{path}: label values {undeclared} are not declared in dataset.json labels"]
    return []


def check_binary(array: np.ndarray, path: Path) -> list[str]:
    """Structure masks may hold only 0 and 1."""
    values = np.unique(array)
    extra = [v for v in values.tolist() if v not in (0, 1)]
    if extra:
        return [f"{path}: structure mask is not binary (values {_few(np.asarray(extra))})"]
    return []


def check_nonempty(array: np.ndarray, path: Path) -> list[str]:
    """A delineated structure must have at least one foreground voxel."""
    if not np.any(array):
        return [f"{path}: empty mask (no foreground voxel)"]
    return []


def _few(values: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:k].tolist())
    return shown + (", …" if values.size > k else "")
