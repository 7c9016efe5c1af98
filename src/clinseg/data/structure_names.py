"""Structure-name harmonisation: clinical ROI names ("L Eye", "Globe_L", "OS" …) -> standard names.

A mapping file is YAML, ``standard name: [synonyms…]``; clinseg ships a default based on the AAPM TG-263
nomenclature for head-and-neck and brain organs at risk (``tg263_names.yaml`` beside this module).
Matching is case-insensitive and treats runs of spaces, ``_``, ``-`` and ``.`` as one separator
(:func:`name_key`), so ``Eye_L``, ``eye l`` and ``EYE-L`` are the same name. A standard name always maps to
itself. A synonym listed under two standard names is an error (it would make the mapping ambiguous).
Standard names become file names (``structuresTr/<case>/<standard>.nii.gz``), so they must be file-name-safe
identifiers that pass :func:`clinseg.names.name_problem`.

Examples
--------
>>> names = load_name_map()
>>> names.standardise("Globe_L"), names.standardise("od"), names.standardise("PTV_70")
('Eye_L', 'Eye_R', None)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from clinseg.errors import ConfigError
from clinseg.names import MAX_NAME_LENGTH, name_problem

DEFAULT_NAMES_FILE = "tg263_names.yaml"


def name_key(name: str) -> str:
    """The matching key of a name: lower case, separators (space ``_`` ``-`` ``.``) collapsed to one space."""
    return re.sub(r"[\s_\-.]+", " ", str(name).strip().lower()).strip()


@dataclass(frozen=True)
class NameMap:
    """Synonym keys -> standard names, and the standard names in file order."""

    synonyms: Mapping[str, str]
    standard: tuple[str, ...]
    source: str = "<memory>"

    def standardise(self, name: str) -> str | None:
        """The standard name of ``name`` (None when the mapping does not know it)."""
        return self.synonyms.get(name_key(name))

    @classmethod
    def from_mapping(cls, raw: object, source: str = "<memory>") -> NameMap:
        """Build from ``{standard: [synonyms…]}``; raises :class:`ConfigError` naming ``source``."""
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(f"{source}: expected a mapping 'standard name: [synonyms…]'")
        synonyms: dict[str, str] = {}
        for standard, names in raw.items():
            standard = str(standard)
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", standard) or name_problem(standard):
                raise ConfigError(f"{source}: standard name {standard!r} must be a file-name-safe identifier "
                                  f"(letters, digits, '_', '-', '.'; at most {MAX_NAME_LENGTH} characters): "
                                  "it becomes the structure's file name")
            if names is None:
                names = []
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list):
                raise ConfigError(f"{source}: synonyms of {standard!r} must be a list, got {names!r}")
            for name in [standard, *names]:
                if isinstance(name, bool):  # YAML 1.1 reads ON/OFF/YES/NO as booleans
                    raise ConfigError(f"{source}: a synonym of {standard!r} was read as {name}; quote it")
                key = name_key(str(name))
                previous = synonyms.setdefault(key, standard)
                if previous != standard:
                    raise ConfigError(f"{source}: {name!r} is listed for both {previous!r} and {standard!r}")
        return cls(synonyms, tuple(str(s) for s in raw), source)


def load_name_map(path: str | os.PathLike[str] | None = None) -> NameMap:
    """Read a mapping file (default: the TG-263 based one shipped with clinseg)."""
    if path is None:
        text = resources.files("clinseg.data").joinpath(DEFAULT_NAMES_FILE).read_text(encoding="utf-8")
        source = f"clinseg default names ({DEFAULT_NAMES_FILE})"
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: names mapping file not found")
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from exc
    return NameMap.from_mapping(raw, source)
