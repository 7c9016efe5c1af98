"""The ``mixed`` training source: axial slices of annotated, tumour-free and weakly annotated images.

Registered as ``sampler: mixed`` (seed 001 chapter 3; see :mod:`clinseg.data.mixed_sampler`). The run loads
the delineated training cases; the weakly annotated ones, whose delineations the run does not use, are loaded
here from the ``dataset`` option with their slice labels from ``dataset.json``. ``clinseg train --method
mixed`` (:mod:`clinseg.training.mixed`) fills the options.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clinseg.data.dataset import load_dataset
from clinseg.data.loading import CaseData, Normalization, load_image
from clinseg.data.mixed_sampler import (
    MixedSliceSampler,
    WeakCase,
    slice_labels_from_weak,
)
from clinseg.errors import DatasetError
from clinseg.training.sampling import SAMPLERS, PatchSource


def load_weak_cases(dataset_dir: str | Path, case_ids: Sequence[str],
                    normalization: Normalization = "zscore") -> list[WeakCase]:
    """Images and ``dataset.json`` slice labels of the weakly annotated cases ``case_ids``."""
    dataset = load_dataset(dataset_dir)
    spec = dataset.spec
    cases = []
    for case_id in case_ids:
        record = dataset.case(case_id)
        image, _ = load_image(record, normalization)
        try:
            labels = slice_labels_from_weak(spec.structures, image.shape[1], spec.weak_slices.get(case_id, {}),
                                            record.weak_labels)
        except ValueError as exc:
            raise DatasetError(f"{dataset.root / 'dataset.json'}: cases[{case_id!r}]: {exc}") from None
        cases.append(WeakCase(case_id, image, labels))
    return cases


@SAMPLERS.register("mixed")
def mixed_source(train: Sequence[CaseData], val: Sequence[CaseData], patch_size: Sequence[int],
                 foreground_fraction: float, rng: np.random.Generator, *, k: int = 4, m: int = 2, n: int = 4,
                 dataset: str = "", weak_cases: Sequence[str] = (),
                 normalization: Normalization = "zscore") -> tuple[PatchSource, list[CaseData]]:
    """Axial slices, ``k`` annotated + ``m`` tumour-free + ``n`` weak per batch (:class:`MixedSliceSampler`).

    The delineated cases arrive as ``train``; the weakly annotated ones (``weak_cases`` of ``dataset``, which
    the run does not load because it uses none of their delineations) are loaded here with the run's
    ``normalization``. ``foreground_fraction`` does not apply. Validation on whole volumes."""
    if weak_cases and not dataset:
        raise ValueError("weak_cases need the option dataset (the dataset folder)")
    weak = load_weak_cases(dataset, weak_cases, normalization) if weak_cases else []
    return MixedSliceSampler(train, weak, patch_size, k, m, n, rng), list(val)
