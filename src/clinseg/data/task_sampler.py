"""Mini-batches balanced over tasks, and within a task over its classes (seed 004 §3.2).

"A mini-batch contained 210 samples, equally balanced over the tasks of the network. For each task, the
training samples were randomly drawn from all training images, balanced over the task-specific classes. All
voxels with image intensity > 0 were considered samples." Here a sample is a patch centred on the drawn
voxel: per task, a class is drawn uniformly among the task's classes and its background (voxels with
intensity > 0 in no class of the task), then a case that has it, then one of its voxels.

When the batch size is not a multiple of the number of tasks, the remaining patches go to consecutive tasks
from a random first one (drawn from the sampler's generator, so a resumed training draws the same), which
gives every task the same number on average.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinseg.data.loading import CaseData
from clinseg.data.samplers import MAX_CANDIDATES, PatchBatch, corner_around, pad_to

__all__ = ["BACKGROUND", "TaskBalancedSampler", "task_counts"]

#: The class index standing for a task's background in :attr:`TaskBalancedSampler.classes`.
BACKGROUND = -1


def task_counts(batch_size: int, num_tasks: int, offset: int) -> list[int]:
    """Patches per task in one batch: ``batch_size // num_tasks`` each, the remainder to the tasks
    ``offset, offset + 1, …`` (mod ``num_tasks``).

    >>> task_counts(10, 3, 0), task_counts(10, 3, 1), task_counts(10, 3, 2)
    ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    """
    counts = [batch_size // num_tasks] * num_tasks
    for i in range(batch_size % num_tasks):
        counts[(offset + i) % num_tasks] += 1
    return counts


def _subset(coords: np.ndarray, pick: np.random.Generator) -> np.ndarray:
    if len(coords) > MAX_CANDIDATES:
        coords = coords[pick.choice(len(coords), MAX_CANDIDATES, replace=False)]
    return coords


class TaskBalancedSampler:
    """Patches of ``patch_size`` from the cases of several tasks.

    Parameters
    ----------
    cases : training cases (union classes: a class outside a case's task is not delineated there).
    tasks : the task of each case (same order).
    patch_size : ``(Z, Y, X)`` in voxels.
    rng : the generator; its state is what checkpoints save.
    """

    def __init__(self, cases: Sequence[CaseData], tasks: Sequence[str], patch_size: Sequence[int],
                 rng: np.random.Generator) -> None:
        if not cases:
            raise ValueError("no training cases")
        if len(tasks) != len(cases):
            raise ValueError(f"{len(tasks)} task names for {len(cases)} cases")
        self.patch_size = tuple(int(p) for p in patch_size)
        self.rng = rng
        self.images = [pad_to(c.image, self.patch_size, 0.0) for c in cases]
        self.targets = [pad_to(c.target, self.patch_size) for c in cases]
        self.annotated = [c.annotated.copy() for c in cases]
        self.task_names = sorted(set(tasks), key=list(tasks).index)
        pick = np.random.default_rng(12345)  # fixed: candidate subsets must not consume the training rng
        #: candidates[task][class] = [(case index, voxel coordinates (K, 3))]; class BACKGROUND = the background
        self.candidates: list[dict[int, list[tuple[int, np.ndarray]]]] = []
        for name in self.task_names:
            per_class: dict[int, list[tuple[int, np.ndarray]]] = {}
            for i in (i for i, t in enumerate(tasks) if t == name):
                own = np.flatnonzero(self.annotated[i])
                for n in own:
                    coords = np.argwhere(self.targets[i][n])
                    if len(coords):
                        per_class.setdefault(int(n), []).append((i, _subset(coords, pick)))
                background = (self.images[i].max(axis=0) > 0) & ~self.targets[i][own].any(axis=0)
                coords = np.argwhere(background)
                if len(coords):
                    per_class.setdefault(BACKGROUND, []).append((i, _subset(coords, pick)))
            if not per_class:
                raise ValueError(f"task {name}: no voxel with intensity > 0 to sample")
            self.candidates.append(per_class)

    @property
    def classes(self) -> list[list[int]]:
        """Per task, the classes drawn from (union indices; :data:`BACKGROUND` for the background)."""
        return [sorted(c) for c in self.candidates]

    def _centred(self, task: int) -> tuple[int, tuple[int, ...]]:
        per_class = self.candidates[task]
        keys = sorted(per_class)
        cls = keys[int(self.rng.integers(len(keys)))]
        case, coords = per_class[cls][int(self.rng.integers(len(per_class[cls])))]
        center = coords[int(self.rng.integers(len(coords)))]
        return case, corner_around(center, self.patch_size, self.images[case].shape[1:])

    def locations(self, batch_size: int) -> list[tuple[int, tuple[int, ...]]]:
        """``(case, corner)`` of a batch: the tasks' shares in task order."""
        counts = task_counts(batch_size, len(self.task_names), int(self.rng.integers(len(self.task_names))))
        return [self._centred(t) for t, n in enumerate(counts) for _ in range(n)]

    def batch(self, batch_size: int) -> PatchBatch:
        """``batch_size`` patches, balanced over tasks and, per task, over its classes."""
        items = []
        for case, corner in self.locations(batch_size):
            sl = (slice(None),) + tuple(slice(c, c + p) for c, p in zip(corner, self.patch_size))
            items.append((self.images[case][sl], self.targets[case][sl], self.annotated[case]))
        return PatchBatch(image=np.stack([i for i, _, _ in items]).astype(np.float32, copy=False),
                          target=np.stack([t for _, t, _ in items]), annotated=np.stack([a for _, _, a in items]))
