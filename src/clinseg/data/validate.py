"""Validate a dataset folder: every problem of every case at once, plus annotation statistics.

This is what ``clinseg validate DATASET`` runs, and what ``clinseg train`` runs before training
(:mod:`clinseg.training.preflight`). It reads every file (headers and voxels) and collects problems instead
of stopping at the first, so a user fixing a clinical export sees the whole list.

Each problem is an *error* (training on the dataset would be wrong: a case in both the training and the test
set, two files for one channel, a mask whose name is not a declared structure …) or a *warning* (worth a
look but harmless to training: an empty mask, a ``dataset.json`` entry without files).
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem: the case it belongs to ('' for dataset-level problems), the message (names the file) and
    its severity (``error``: training refuses the dataset; ``warning``: training goes on and says so)."""

    case: str
    message: str
    severity: Severity = "error"


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
        """No problem at all (``clinseg validate`` exits with 1 otherwise)."""
        return not self.problems

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


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


def _unknown_structure(path: Path, name: str, spec: DatasetSpec) -> str:
    """The problem of a mask whose name is not a declared structure, with the closest declared name."""
    lower = {s.lower(): s for s in spec.structures}
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    hint = f"; did you mean {lower[close[0]]!r}?" if close else ""
    return f"{path}: unknown structure {name!r} (not in dataset.json labels: {', '.join(spec.structures)}){hint}"


def validate_case(record: CaseRecord, spec: DatasetSpec) -> list[Problem]:
    """All problems of one case (missing or unreadable files, grids, values, masks); an empty mask is a
    warning (the structure is then learned as absent from the case), everything else an error."""
    problems: list[str] = []
    warnings: list[str] = []
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
        if name not in spec.label_values:  # a misnamed mask would count its structure as not delineated
            problems.append(_unknown_structure(path, name, spec))
            continue
        read = _read_checked(path, problems, reference)
        if read is None:
            continue
        binary = check_binary(read[0], path)
        problems += binary
        warnings += [] if binary else check_nonempty(read[0], path)
    case = record.case_id
    return [Problem(case, p) for p in problems] + [Problem(case, w, "warning") for w in warnings]


def layout_problems(dataset: Dataset) -> list[Problem]:
    """The problems found without reading an image: the folder layout (duplicates, stray files, a case in
    both sets) and ``dataset.json`` entries that match no case or name unknown structures."""
    spec = dataset.spec
    problems = [Problem("", p) for p in dataset.problems]
    known = {r.case_id for r in dataset.cases()}
    for case in sorted(set(spec.case_annotated) | set(spec.weak_labels)):
        if case not in known:
            problems.append(Problem(case, f"{dataset.root / 'dataset.json'}: case {case!r} has no files", "warning"))
    for case, names in sorted(spec.case_annotated.items()):
        unknown = sorted(set(names) - set(spec.structures))
        if unknown:
            problems.append(
                Problem(case, f"{dataset.root / 'dataset.json'}: case {case!r} annotates unknown structures {unknown}")
            )
    return problems


def case_problems(dataset: Dataset, progress: bool = True) -> list[Problem]:
    """The problems of every case's files (reads every image: headers and voxels)."""
    records = dataset.cases()
    items = track(records, "validating") if progress else records
    return [p for record in items for p in validate_case(record, dataset.spec)]


def validate_dataset(root: str | Path | Dataset, progress: bool = True) -> ValidationReport:
    """Check every case of the dataset at ``root`` (a folder, or a listed :class:`Dataset`) and gather
    annotation statistics.

    Raises :class:`~clinseg.errors.DatasetError` only when the folder cannot be read as a dataset at all
    (no ``dataset.json``, malformed JSON, a name that cannot be a file name); everything else becomes a
    :class:`Problem` in the report.
    """
    dataset = root if isinstance(root, Dataset) else load_dataset(root)
    report = ValidationReport(dataset)
    report.problems += layout_problems(dataset)
    report.problems += case_problems(dataset, progress)
    summarise_annotations(report)
    return report


def summarise_annotations(report: ValidationReport) -> None:
    """Fill the report's per-split case counts, delineations per structure and completeness histogram."""
    dataset, spec = report.dataset, report.dataset.spec
    for split in ("train", "test"):
        cases = dataset.cases(split)  # type: ignore[arg-type]
        if not cases:
            continue
        report.num_cases[split] = len(cases)
        report.structure_counts[split] = {s: sum(s in r.annotated for r in cases) for s in spec.structures}
        hist = Counter(len(r.annotated) for r in cases)
        report.completeness[split] = {k: hist.get(k, 0) for k in range(spec.num_structures + 1)}
