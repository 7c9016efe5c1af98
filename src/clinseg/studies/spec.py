"""The study specification: a YAML file naming the dataset, the grid (sizes x modes x repeats x arms) and the
base training configuration. See ``examples/study-head-oar.yaml`` for a commented example.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinseg.configfile import read_mapping
from clinseg.data.subsets import MODES
from clinseg.errors import ConfigError, DatasetError
from clinseg.names import check_name
from clinseg.training.config import TrainConfig, config_from_dict

_TESTS = ("wilcoxon", "ttest")


@dataclass(frozen=True)
class ArmSpec:
    """One method compared in the study.

    Attributes
    ----------
    name : label in tables and plots, and the folder of the arm's runs (:func:`clinseg.names.check_name`).
    method : registered arm method (``clinseg.studies.arms``); ``segment`` = train, predict, evaluate.
    config : training options layered over the study's ``base`` (any :class:`TrainConfig` field).
    options : method-specific options (e.g. a pretrained run for ``init``), passed to the method.
    """

    name: str
    method: str = "segment"
    config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    """A learning-curve study.

    Attributes
    ----------
    name : study name.
    dataset : dataset folder (relative paths are relative to the spec file).
    sizes : subset sizes M (references per class; patients in ``patients`` mode).
    modes : sampling modes (:data:`clinseg.data.subsets.MODES`).
    repeats : subsets drawn per size and mode (different seeds).
    arms : methods to compare; every arm is trained on the same subsets (paired comparisons).
    validation : validation case ids, or a count chosen once (complete cases first); excluded from sampling.
    base : the base training configuration (``TrainConfig`` fields, ``preset:`` allowed).
    seed : seeds the subsets and the networks (a run's seed depends on mode, size and repeat).
    patients_order : ``random`` or ``first`` M patients in ``patients`` mode.
    largest_component : keep the largest component per structure in the test predictions.
    tolerance : saturation tolerance (absolute Dice) for the report.
    test : ``wilcoxon`` (default) or ``ttest`` for comparisons in the report.
    resources : per run, for Ray: ``{"cpus": 2, "gpus": 0}``.
    regions : score label unions instead of single structures (``brats``: whole tumour, core, enhancing;
        :mod:`clinseg.evaluation.regions`); None = per structure.
    source : where the spec was read from (the spec file), for messages; not part of the study.
    """

    name: str
    dataset: Path
    sizes: tuple[int, ...]
    modes: tuple[str, ...] = ("concentrated", "distributed")
    repeats: int = 1
    arms: tuple[ArmSpec, ...] = (ArmSpec("baseline"),)
    validation: tuple[str, ...] | int = 2
    base: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    patients_order: str = "random"
    largest_component: bool = True
    tolerance: float = 0.02
    test: str = "wilcoxon"
    resources: dict[str, float] = field(default_factory=lambda: {"cpus": 1, "gpus": 0})
    regions: str | None = None
    source: str = field(default="", compare=False, repr=False)

    def arm(self, name: str) -> ArmSpec:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ConfigError(f"study {self.name}: no arm {name!r}")

    def arm_source(self, arm: ArmSpec) -> str:
        """How messages name an arm: ``SPEC_FILE: arm 'name'``."""
        return f"{self.source or f'study {self.name}'}: arm {arm.name!r}"

    def train_config(self, arm: ArmSpec) -> TrainConfig:
        """The arm's configuration: ``base`` with the arm's ``config`` laid over it (a preset in the arm
        replaces the base preset; other keys override); a :class:`ConfigError` names the spec and the arm."""
        source = self.arm_source(arm)
        try:
            return config_from_dict({**self.base, **arm.config}, source)
        except ConfigError as exc:  # a value's check (TrainConfig.validate) does not name the source
            raise ConfigError(str(exc) if str(exc).startswith(source) else f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The spec as ``study.yaml`` records it (without ``source``)."""
        raw = dataclasses.asdict(self)
        del raw["source"]
        raw["dataset"] = str(self.dataset)
        raw["validation"] = self.validation if isinstance(self.validation, int) else list(self.validation)
        raw["sizes"], raw["modes"] = list(self.sizes), list(self.modes)
        raw["arms"] = [dataclasses.asdict(a) for a in self.arms]
        return raw


def _arm(raw: Any, source: str) -> ArmSpec:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{source}: each arm needs a name (got {raw!r})")
    unknown = sorted(set(raw) - {"name", "method", "config", "options"})
    if unknown:
        raise ConfigError(f"{source}: arm {raw['name']!r}: unknown key(s) {unknown}")
    try:  # the arm's runs live in STUDY/runs/<name>: one rule for every name that becomes a path
        name = check_name(raw["name"], "arm name", source)
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None
    for key in ("config", "options"):
        if not isinstance(raw.get(key) or {}, dict):
            raise ConfigError(f"{source}: arm {name!r}: {key} must be a mapping, got {raw[key]!r}")
    return ArmSpec(name, str(raw.get("method", "segment")), dict(raw.get("config") or {}),
                   dict(raw.get("options") or {}))


def study_from_dict(raw: dict[str, Any], base_dir: Path, source: str = "study") -> StudySpec:
    """Build and check a :class:`StudySpec` from a parsed mapping (paths relative to ``base_dir``).

    Checks what the mapping alone decides: keys, grid, arm names and each arm's training configuration. What
    needs the dataset and the registries (methods, networks, losses, samplers) is checked by
    :func:`clinseg.studies.check.check_study` before the study folder is written.
    """
    fields = {f.name for f in dataclasses.fields(StudySpec)} - {"source"}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {', '.join(sorted(fields))}")
    for key in ("dataset", "sizes"):
        if key not in raw:
            raise ConfigError(f"{source}: '{key}' is required")
    values = dict(raw)
    values["name"] = str(raw.get("name") or Path(source).stem)
    dataset = Path(str(raw["dataset"])).expanduser()
    values["dataset"] = dataset if dataset.is_absolute() else (base_dir / dataset)
    sizes = raw["sizes"] if isinstance(raw["sizes"], list) else [raw["sizes"]]
    if not sizes or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
        raise ConfigError(f"{source}: sizes must be a list of integers >= 1, got {raw['sizes']!r}")
    values["sizes"] = tuple(sorted(set(sizes)))
    modes = raw.get("modes", ["concentrated", "distributed"])
    modes = [modes] if isinstance(modes, str) else list(modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(f"{source}: unknown mode(s) {bad}; use {', '.join(MODES)}")
    values["modes"] = tuple(dict.fromkeys(modes))
    if not isinstance(raw.get("repeats", 1), int) or raw.get("repeats", 1) < 1:
        raise ConfigError(f"{source}: repeats must be an integer >= 1")
    arms = tuple(_arm(a, source) for a in (raw.get("arms") or ["baseline"]))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: arm names must be unique, got {names}")
    values["arms"] = arms
    validation = raw.get("validation", 2)
    values["validation"] = validation if isinstance(validation, int) else tuple(str(v) for v in validation)
    if not isinstance(raw.get("base") or {}, dict):
        raise ConfigError(f"{source}: base must be a mapping of training options, got {raw['base']!r}")
    values["base"] = dict(raw.get("base") or {})
    if values.get("test", "wilcoxon") not in _TESTS:
        raise ConfigError(f"{source}: test must be one of {_TESTS}")
    if values.get("patients_order", "random") not in ("random", "first"):
        raise ConfigError(f"{source}: patients_order must be 'random' or 'first'")
    spec = StudySpec(**values, source=source)
    for arm in spec.arms:
        spec.train_config(arm)  # unknown options fail now, not in the middle of the study
    return spec


def load_study_spec(path: str | Path) -> StudySpec:
    """Read a study YAML file."""
    path = Path(path)
    return study_from_dict(read_mapping(path, "study file"), path.parent.resolve(), str(path))
