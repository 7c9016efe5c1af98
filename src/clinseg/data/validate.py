"""Validate a dataset folder: every problem of every case at once, plus annotation statistics.

This is what ``clinseg validate DATASET`` runs. It reads every file (headers and voxels) and collects
problems instead of stopping at the first, so a user fixing a clinical export sees the whole list.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clinseg.data.checks import (
    check_binary,
    check_finite,
    check_label_values,
    check_nonempty,
    check_same_grid,
)
from clinseg.data.dataset import CaseRecord, Dataset, DatasetSpec, load_dataset
from clinseg.errors import ImageReadError
from clinseg.io.image import Geometry, read_image
from clinseg.progress import track


@dataclass(frozen=True)
class Problem:
    """One problem: the case it belongs to ('' for dataset-level problems) and the message (names the file)."""

    case: str
    message: str


@dataclass
class ValidationReport:
    """Result of :func:`validate_dataset`.

    Attributes
    ----------
    problems : every problem found, in case order.
    structure_counts : per split, how many cases delineate each structure.
    completeness : per split, a histogram ``{number of structures delineated: number of cases}``.
    num_cases : cases per split.
    """

    dataset: Dataset
    problems: list[Problem] = field(default_factory=list)
    structure_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    completeness: dict[str, dict[int, int]] = field(default_factory=dict)
    num_cases: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_checked(
    path: Path, problems: list[str], reference: tuple[Path, Geometry] | None
) -> tuple[np.ndarray, Geometry] | None:
    """Read ``path`` and append its read, NaN/Inf and grid problems (grid against ``reference``)."""
    try:
        img = read_image(path)
    except ImageReadError as exc:
        problems.append(str(exc))
        return None
    problems += check_finite(img.array, path)
    if reference is not None:
        problems += check_same_grid(reference[1], reference[0], img.geometry, path)
    return img.array, img.geometry


def validate_case(record: CaseRecord, spec: DatasetSpec) -> list[str]:
    """All problems of one case (missing or unreadable files, grids, values, masks)."""
    problems: list[str] = []
    reference: tuple[Path, Geometry] | None = None
    for channel, path in enumerate(record.images):
        if not path.exists():
            problems.append(f"{path}: missing channel {channel} ({spec.channels[channel]})")
            continue
        read = _read_checked(path, problems, reference)
        if read is not None and reference is None:
            reference = (path, read[1])
    if record.label_map is not None:
        read = _read_checked(record.label_map, problems, reference)
        if read is not None:
            problems += check_label_values(read[0], spec.label_values.values(), record.label_map)
    for name, path in sorted(record.structure_files.items()):
        if name not in spec.label_values:
            problems.append(
                f"{path}: unknown structure {name!r} (not in dataset.json labels: {', '.join(spec.structures)})"
            )
            continue
        read = _read_checked(path, problems, reference)
        if read is None:
            continue
        binary = check_binary(read[0], path)
        problems += binary or check_nonempty(read[0], path)
    return problems


def validate_dataset(root: str | Path, progress: bool = True) -> ValidationReport:
    """Check every case of the dataset at ``root`` and gather annotation statistics.

    Raises :class:`~clinseg.errors.DatasetError` only when the folder cannot be read as a dataset at all
    (no ``dataset.json``, malformed JSON); everything else becomes a :class:`Problem` in the report.
    """
    dataset = load_dataset(root)
    spec = dataset.spec
    report = ValidationReport(dataset)
    report.problems += [Problem("", p) for p in dataset.problems]
    known = {r.case_id for r in dataset.cases()}
    for case in sorted(set(spec.case_annotated) | set(spec.weak_labels)):
        if case not in known:
            report.problems.append(Problem(case, f"{dataset.root / 'dataset.json'}: case {case!r} has no files"))
    for case, names in sorted(spec.case_annotated.items()):
        unknown = sorted(set(names) - set(spec.structures))
        if unknown:
            report.problems.append(
                Problem(case, f"{dataset.root / 'dataset.json'}: case {case!r} annotates unknown structures {unknown}")
            )
    records = dataset.cases()
    items = track(records, "validating") if progress else records
    for record in items:
        report.problems += [Problem(record.case_id, p) for p in validate_case(record, spec)]
    for split in ("train", "test"):
        cases = dataset.cases(split)  # type: ignore[arg-type]
        if not cases:
            continue
        report.num_cases[split] = len(cases)
        report.structure_counts[split] = {s: sum(s in r.annotated for r in cases) for s in spec.structures}
        hist = Counter(len(r.annotated) for r in cases)
        report.completeness[split] = {k: hist.get(k, 0) for k in range(spec.num_structures + 1)}
    return report
