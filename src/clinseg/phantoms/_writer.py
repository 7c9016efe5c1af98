"""What every phantom generator shares: option checks and writing the dataset folder atomically.

A generator simulates cases one by one; :func:`write_phantom` writes their images and structure masks in
the clinseg layout inside a temporary folder beside the target, adds ``dataset.json`` and the preview, and
renames the folder into place, so a reader never sees a half-written dataset and no stale structure file of
an earlier run survives (a missing file means "not delineated").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from clinseg.data.dataset import SPLIT_FOLDERS
from clinseg.errors import ConfigError
from clinseg.io import Geometry, write_image, write_text
from clinseg.io.atomic import folder_mode
from clinseg.progress import track

logger = logging.getLogger(__name__)


class SimulatedCase(Protocol):
    """A generated case: id, its image, its grid and the delineated masks.

    ``image`` is ``(Z, Y, X)`` (one channel) or ``(C, Z, Y, X)`` (several channels, e.g. MR sequences,
    written as ``_0000`` … ``_{C-1:04d}``). A case may also carry ``label_map``, a ``(Z, Y, X)`` label map
    written to ``labelsTr``/``labelsTs``; its structures folder is then written only when ``masks`` is not
    empty.
    """

    case_id: str
    image: np.ndarray
    geometry: Geometry
    masks: Mapping[str, np.ndarray]


def check_options(name: str, cases: int, test_cases: int, seed: int, spacing_mm: float) -> None:
    """Raise :class:`ConfigError` for case counts, seed or spacing a phantom cannot use."""
    if int(cases) != cases or int(test_cases) != test_cases or cases < 0 or test_cases < 0:
        raise ConfigError(f"{name}: cases and test_cases must be whole numbers >= 0, got {cases}, {test_cases}")
    if cases + test_cases < 1:
        raise ConfigError(f"{name}: nothing to generate (cases + test_cases must be >= 1)")
    if int(seed) != seed or seed < 0:
        raise ConfigError(f"{name}: seed must be a whole number >= 0, got {seed}")
    if not 1.0 <= spacing_mm <= 8.0:
        raise ConfigError(f"{name}: spacing_mm must be within [1.0, 8.0] mm, got {spacing_mm}")


def prepare_target(out_dir: Path) -> None:
    """Refuse to replace a folder that is not empty and not a previously generated phantom."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder")
    if any(out_dir.iterdir()):
        spec = out_dir / "dataset.json"
        try:
            is_phantom = "phantom" in json.loads(spec.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            is_phantom = False
        if not is_phantom:
            raise ConfigError(f"{out_dir}: folder exists and is not a generated phantom; refusing to replace it")


def dataset_spec(name: str, description: str, reference: str, channel: str, structures: Sequence[str],
                 cases: int, test_cases: int, info: dict[str, dict], phantom: dict[str, Any],
                 **extra: Any) -> dict[str, Any]:
    """The ``dataset.json`` of a phantom: a multilabel, one-channel NIfTI dataset whose labels are
    ``structures`` numbered from 1; ``extra`` keys follow ``reference``, ``phantom`` records the options."""
    return {"name": name, "description": description, "reference": reference, **extra,
            "channel_names": {"0": channel},
            "labels": {structure: i + 1 for i, structure in enumerate(structures)},
            "label_mode": "multilabel", "file_ending": ".nii.gz",
            "numTraining": int(cases), "numTest": int(test_cases), "cases": info, "phantom": phantom}


def write_phantom(
    out_dir: Path,
    name: str,
    cases: int,
    test_cases: int,
    simulate: Callable[[str, int], SimulatedCase],
    case_info: Callable[[SimulatedCase], dict[str, Any]],
    spec: Callable[[dict[str, dict]], dict[str, Any]],
    preview: Callable[[Path, list[SimulatedCase]], None] | None,
) -> Path:
    """Simulate and write ``cases`` training and ``test_cases`` test cases into ``out_dir``.

    ``simulate(split, index)`` makes one case; ``case_info(case)`` is its entry under ``cases`` in
    ``dataset.json``; ``spec(info)`` returns the whole ``dataset.json`` given those entries; ``preview``
    draws the first training and test case into ``preview.png`` (None: no preview).
    """
    out_dir = Path(out_dir)
    prepare_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    os.chmod(tmp, folder_mode())  # the dataset folder gets a plain mkdir's permissions, not mkdtemp's 0700
    try:
        info: dict[str, dict] = {}
        shown: list[SimulatedCase] = []
        jobs = [("train", i) for i in range(int(cases))] + [("test", i) for i in range(int(test_cases))]
        for split, index in track(jobs, f"{name} phantom"):
            case = simulate(split, index)
            images, labels, structures = SPLIT_FOLDERS[split]
            channels = case.image if case.image.ndim == 4 else case.image[None]
            for c, channel in enumerate(channels):
                write_image(channel, case.geometry, tmp / images / f"{case.case_id}_{c:04d}.nii.gz")
            label_map = getattr(case, "label_map", None)
            if label_map is not None:
                write_image(label_map.astype(np.uint8), case.geometry, tmp / labels / f"{case.case_id}.nii.gz")
            if label_map is None or case.masks:
                (tmp / structures / case.case_id).mkdir(parents=True, exist_ok=True)
            for structure, mask in case.masks.items():
                write_image(mask.astype(np.uint8), case.geometry,
                            tmp / structures / case.case_id / f"{structure}.nii.gz")
            info[case.case_id] = case_info(case)
            if index == 0 and preview is not None:
                shown.append(case)
        write_text(tmp / "dataset.json", json.dumps(spec(info), indent=2) + "\n")
        if shown and preview is not None:
            preview(tmp / "preview.png", shown)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("%s: %d training + %d test cases in %.1f s -> %s", name, cases, test_cases,
                time.perf_counter() - start, out_dir)
    return out_dir
