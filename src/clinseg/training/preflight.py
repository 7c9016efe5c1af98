"""The checks of ``clinseg validate`` before training, their result remembered in the run folder.

Training on a dataset that ``clinseg validate`` finds errors in is wrong in silence: a case in both the
training and the test set trains on test data, a ``.nii`` and a ``.nii.gz`` copy of one channel make the
listing pick one, a misnamed mask (``Eye_Left`` for the label ``Eye_L``) leaves its structure counted as not
delineated. :func:`check_for_training` refuses such a dataset with every error listed, and logs warnings.

Reading every voxel takes a while on a large dataset, so a passing result is written to
``RUN/validation.json`` together with the dataset fingerprint (:mod:`clinseg.training.fingerprint`): a
resumed run on unchanged data reads that instead of the images. The layout checks (duplicates, stray files,
a case in both sets, ``dataset.json`` entries) read no image and always run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from clinseg.data.dataset import Dataset
from clinseg.data.validate import Problem, case_problems, layout_problems
from clinseg.errors import DatasetError
from clinseg.io.atomic import write_text
from clinseg.training.fingerprint import dataset_fingerprint

log = logging.getLogger(__name__)

#: The run folder's record of a passing validation (``RUN/validation.json``).
VALIDATION_FILE = "validation.json"
#: Errors listed in the refusal; the rest are counted (``clinseg validate`` lists all).
MAX_LISTED = 20


def _cached(run_dir: Path, fingerprint: dict[str, Any]) -> list[Problem] | None:
    """The case warnings of a passing validation of the same data, or ``None`` (none recorded, other data,
    or an unreadable record: validate again)."""
    path = run_dir / VALIDATION_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record["fingerprint"] != fingerprint:
            return None
        return [Problem(p["case"], p["message"], "warning") for p in record["warnings"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refusal(root: str | Path, errors: list[Problem], refused: str = "training") -> str:
    """The message that refuses the dataset at ``root`` for ``refused`` (``"training"``, ``"study"`` …): the
    first :data:`MAX_LISTED` errors of ``clinseg validate``, one per indented line, and how to go on.

    Examples
    --------
    >>> print(refusal("ds", [Problem("case_0", "ds/x.nii.gz: unknown structure 'x'", "error")]))  # doctest: +ELLIPSIS
    ds: the checks of 'clinseg validate' found 1 error(s); training refused (fix them, or go on anyway ...):
      case_0: ds/x.nii.gz: unknown structure 'x'
    """
    lines = [f"  {p.case or '-'}: {p.message}" for p in errors[:MAX_LISTED]]
    if len(errors) > MAX_LISTED:
        lines.append(f"  … and {len(errors) - MAX_LISTED} more (clinseg validate {root} lists them all)")
    return (f"{root}: the checks of 'clinseg validate' found {len(errors)} error(s); {refused} refused (fix them, "
            "or go on anyway with --skip-validation):\n" + "\n".join(lines))


def check_for_training(dataset: Dataset, run_dir: str | Path, fingerprint: dict[str, Any] | None = None,
                       progress: bool = True) -> list[Problem]:
    """Run the checks of ``clinseg validate`` on ``dataset`` before training into ``run_dir``.

    Errors raise :class:`DatasetError` listing them; warnings are logged (``logging.warning``) and returned.
    A passing result is recorded in ``RUN/validation.json`` keyed by the dataset fingerprint, so the images
    are read again only when the data changed.

    Parameters
    ----------
    dataset : the listed dataset (:func:`clinseg.data.load_dataset`).
    run_dir : the run folder (it must exist).
    fingerprint : :func:`dataset_fingerprint` of ``dataset`` when the caller has it.
    progress : show a progress bar while reading the images.
    """
    run_dir = Path(run_dir)
    fingerprint = fingerprint or dataset_fingerprint(dataset)
    problems = layout_problems(dataset)
    cases = _cached(run_dir, fingerprint)
    if cases is None:
        cases = case_problems(dataset, progress)
        if not any(p.severity == "error" for p in problems + cases):
            record = {"fingerprint": fingerprint,
                      "warnings": [dataclasses.asdict(p) for p in cases if p.severity == "warning"]}
            write_text(run_dir / VALIDATION_FILE, json.dumps(record, indent=2))
    else:
        log.info("dataset unchanged since its validation (%s): its images are not read again",
                 run_dir / VALIDATION_FILE)
    errors = [p for p in problems + cases if p.severity == "error"]
    if errors:
        raise DatasetError(refusal(dataset.root, errors))
    warnings = [p for p in problems + cases if p.severity == "warning"]
    for p in warnings:
        log.warning("dataset warning (%s): %s", p.case or "-", p.message)
    if warnings:
        log.warning("training on %s despite %d warning(s) of 'clinseg validate'", dataset.root, len(warnings))
    return warnings


def check_dataset_for_training(dataset_dir: str | Path, run_dir: str | Path) -> list[Problem]:
    """:func:`check_for_training` on the dataset folder ``dataset_dir`` (the run folder is created): what a
    method that trains several networks on one dataset runs once, before them."""
    from clinseg.data.dataset import load_dataset
    from clinseg.io.atomic import ensure_folder

    return check_for_training(load_dataset(dataset_dir), ensure_folder(run_dir, "run folder"))
