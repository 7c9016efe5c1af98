"""The study grid and its folder: which runs exist, their subsets, and where everything lives.

Study folder::

    STUDY/study.yaml                     the resolved specification (dataset path absolute)
    STUDY/study.json                     structures, validation cases, runs: what the report needs
    STUDY/subsets/<mode>-M<size>-r<k>.json   the training subsets (shared by every arm: paired arms)
    STUDY/runs/<arm>/<mode>-M<size>-r<k>/    a normal clinseg run folder, plus predictions/, evaluation/
                                              and done.json (finished) or failed.json
    STUDY/results.csv, summary.csv, report.html, figures/*.png   written by ``clinseg study report``

Subsets are drawn once and kept: re-running a study (after an interruption, or with more sizes, repeats or
arms) reuses every subset and finished run and computes only what is missing. An arm whose configuration
changed (``base``, its ``config``, ``method`` or ``options``) is accepted while none of its runs finished:
its unfinished runs start again with the new configuration. Once one finished, the change is refused.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from clinseg.data.dataset import Dataset, load_dataset
from clinseg.data.subsets import MODES, Subset, sample_subset
from clinseg.errors import ConfigError
from clinseg.io.atomic import write_text
from clinseg.studies.check import check_study, validate_datasets
from clinseg.studies.spec import StudySpec, load_study_spec, study_from_dict
from clinseg.training.config import config_from_dict
from clinseg.training.run import choose_validation

#: Spec fields that define the subsets and the scores; a study folder refuses a spec that changes them
#: (finished runs would otherwise mix two settings under one name). ``base`` is compared arm by arm.
_FIXED_FIELDS = ("dataset", "validation", "seed", "patients_order", "regions")
#: Training options that say where and how fast a cell trains, not what it trains (the executor sets them).
_EXECUTION_OPTIONS = ("device", "threads")
_UNSET = "(unset)"


@dataclass(frozen=True, order=True)
class RunKey:
    """One cell of the grid: an arm trained on one subset."""

    arm: str
    mode: str
    size: int
    repeat: int

    @property
    def cell(self) -> str:
        """The subset's name, shared by the arms: ``distributed-M3-r0``."""
        return f"{self.mode}-M{self.size}-r{self.repeat}"

    @property
    def name(self) -> str:
        """``arm/cell``: the run folder relative to ``STUDY/runs``."""
        return f"{self.arm}/{self.cell}"


def subset_seed(seed: int, mode: str, size: int, repeat: int) -> int:
    """The seed of one subset (and of its networks), a function of the study seed and the cell only."""
    return int(np.random.SeedSequence([seed, MODES.index(mode), size, repeat]).generate_state(1)[0] % 2**31)


@dataclass(frozen=True)
class StudyPlan:
    """A study folder with its specification, subsets and runs."""

    study_dir: Path
    spec: StudySpec
    structures: tuple[str, ...]
    val_ids: tuple[str, ...]
    runs: tuple[RunKey, ...]

    def run_dir(self, key: RunKey) -> Path:
        return self.study_dir / "runs" / key.arm / key.cell

    def subset_path(self, key: RunKey) -> Path:
        return self.study_dir / "subsets" / f"{key.cell}.json"

    def subset(self, key: RunKey) -> Subset:
        return Subset.from_json(self.subset_path(key).read_text(encoding="utf-8"))

    def status(self, key: RunKey) -> str:
        """``done``, ``failed`` or ``pending`` (never started, or interrupted: it will resume)."""
        run = self.run_dir(key)
        if (run / "done.json").is_file():
            return "done"
        return "failed" if (run / "failed.json").is_file() else "pending"


def grid(spec: StudySpec) -> list[RunKey]:
    """Every run of the study, arm-major (so one arm's learning curve fills in first)."""
    return [RunKey(arm.name, mode, size, repeat)
            for arm in spec.arms for mode in spec.modes for size in spec.sizes for repeat in range(spec.repeats)]


def _validation(dataset: Dataset, spec: StudySpec) -> tuple[str, ...]:
    if isinstance(spec.validation, int):
        return tuple(choose_validation(dataset, spec.validation, spec.seed))
    train_ids = {r.case_id for r in dataset.train}
    unknown = sorted(set(spec.validation) - train_ids)
    if unknown:
        raise ConfigError(f"study {spec.name}: validation case(s) {unknown} are not training cases of {dataset.root}")
    return tuple(sorted(spec.validation))


def _arm_settings(base: dict[str, Any], arm: dict[str, Any]) -> dict[str, Any]:
    """What an arm of a spec mapping trains with, flat: ``method``, ``options.<key>`` and every training
    option of ``base`` + the arm's ``config`` (built, so that a preset and a default written out compare equal
    to their values)."""
    values = {**(base or {}), **(arm.get("config") or {})}
    try:
        config: dict[str, Any] = dataclasses.asdict(config_from_dict(values))
    except ConfigError:  # a configuration that never trained (a folder from before the spec checks)
        config = values
    options = {f"options.{key}": value for key, value in (arm.get("options") or {}).items()}
    return {"method": arm.get("method", "segment"), **options,
            **{k: v for k, v in config.items() if k not in _EXECUTION_OPTIONS}}


def _show(value: Any) -> str:
    return value if isinstance(value, str) and value else json.dumps(value)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``option: old -> new`` for each option that differs, in the order of ``new`` then ``old``."""
    keys = list(dict.fromkeys([*new, *old]))
    return [f"{k}: {_show(old.get(k, _UNSET))} -> {_show(new.get(k, _UNSET))}"
            for k in keys if old.get(k, _UNSET) != new.get(k, _UNSET)]


def _check_same_study(study_dir: Path, spec: StudySpec) -> list[Path]:
    """Refuse a spec the folder was not made with; return the folders of runs that never finished whose
    arm changed configuration (they start again with the new one)."""
    saved_path = study_dir / "study.yaml"
    if not saved_path.is_file():
        return []
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    new = spec.to_dict()
    changed = [f for f in _FIXED_FIELDS if saved.get(f) != new.get(f)]
    if changed:
        raise ConfigError(f"{study_dir}: this study folder was made with another {', '.join(changed)}; "
                          "use a new --out folder (sizes, modes, repeats and arms may be extended)")
    stale: list[Path] = []
    saved_arms = {a.get("name"): a for a in saved.get("arms", []) if isinstance(a, dict)}
    for arm in new["arms"]:  # a changed arm would mix two configurations under one name
        old = saved_arms.get(arm["name"])
        if old is None:
            continue
        differences = _differences(_arm_settings(saved.get("base") or {}, old), _arm_settings(new["base"], arm))
        if not differences:
            continue
        runs = study_dir / "runs" / arm["name"]
        finished = sorted(p.parent.name for p in runs.glob("*/done.json"))
        if finished:
            raise ConfigError(f"{study_dir}: arm {arm['name']!r} was run with another configuration "
                              f"({'; '.join(differences)}), and these of its runs finished: {', '.join(finished)}; "
                              "give the changed arm a new name (or use a new --out folder)")
        stale += [p for p in sorted(runs.glob("*")) if p.is_dir()]
        stale += [p for p in [study_dir / "pretrain" / arm["name"]] if p.is_dir()]  # what the arm shared
    return stale


def prepare_study(spec: StudySpec, study_dir: str | Path, *, skip_validation: bool = False) -> StudyPlan:
    """Create (or reopen) the study folder: check the spec, draw missing subsets, write the records.

    Everything is checked before anything is written: every arm against the dataset and the registries
    (:func:`clinseg.studies.check.check_study`), the folder's earlier spec, every subset (e.g. concentrated M
    larger than the number of complete cases), and, unless ``skip_validation``, every dataset the study reads
    with the checks of ``clinseg validate`` (once here, so that the cells skip them). A failure leaves no
    half-made study. Runs of an arm whose configuration changed, none of them finished, are removed here so
    that they start again with the new configuration.
    """
    study_dir = Path(study_dir)
    dataset = load_dataset(spec.dataset)
    datasets = check_study(spec, dataset)
    stale = _check_same_study(study_dir, spec)
    structures = dataset.spec.structures
    val_ids = _validation(dataset, spec)
    pool = {r.case_id: r.annotated for r in sorted(dataset.train, key=lambda r: r.case_id)
            if r.case_id not in val_ids}
    if not dataset.test:
        raise ConfigError(f"study {spec.name}: {dataset.root} has no test cases (imagesTs) to evaluate on")
    runs = grid(spec)
    plan = StudyPlan(study_dir, spec, structures, val_ids, tuple(runs))
    new_subsets: dict[Path, Subset] = {}
    for key in runs:
        path = plan.subset_path(key)
        if path.is_file() or path in new_subsets:
            continue
        try:
            new_subsets[path] = sample_subset(pool, structures, key.mode, key.size,
                                              subset_seed(spec.seed, key.mode, key.size, key.repeat),
                                              patients_order=spec.patients_order)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError(f"study {spec.name} ({len(pool)} training cases after {len(val_ids)} for "
                              f"validation): {exc}") from None
    if not skip_validation:
        validate_datasets(datasets)
    for folder in stale:
        shutil.rmtree(folder)
    for path, subset in new_subsets.items():
        write_text(path, subset.to_json())
    write_text(study_dir / "study.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    record = {"name": spec.name, "dataset": str(spec.dataset), "structures": list(structures),
              "validation": list(val_ids), "tolerance": spec.tolerance, "test": spec.test,
              "arms": [a.name for a in spec.arms], "modes": list(spec.modes), "sizes": list(spec.sizes),
              "repeats": spec.repeats, "runs": [k.name for k in runs], "scored": _scored(spec, structures)}
    write_text(study_dir / "study.json", json.dumps(record, indent=2))
    return plan


def _scored(spec: StudySpec, structures: tuple[str, ...]) -> list[str]:
    """What the results rows name, in report order: the regions (``spec.regions``) or the structures."""
    if not spec.regions:
        return list(structures)
    from clinseg.evaluation.regions import get_regions

    return [region.name for region in get_regions(spec.regions)]


def open_study(study_dir: str | Path) -> StudyPlan:
    """Reopen a prepared study folder from its ``study.yaml`` (what workers and the report do)."""
    study_dir = Path(study_dir)
    path = study_dir / "study.yaml"
    if not path.is_file():
        raise ConfigError(f"{study_dir}: not a study folder (no study.yaml); run 'clinseg study run' first")
    spec = study_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), study_dir, str(path))
    record = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    return StudyPlan(study_dir, spec, tuple(record["structures"]), tuple(record["validation"]),
                     tuple(grid(spec)))


def load_and_prepare(spec_path: str | Path, study_dir: str | Path, *, skip_validation: bool = False) -> StudyPlan:
    """:func:`load_study_spec` then :func:`prepare_study`."""
    return prepare_study(load_study_spec(spec_path), study_dir, skip_validation=skip_validation)
