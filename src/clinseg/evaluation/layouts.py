"""Where ``clinseg evaluate`` finds the predicted masks: clinseg's own layout or another tool's.

``--pred-layout`` (:data:`LAYOUTS`):

* ``clinseg`` (default): ``PRED/<case>/<structure>.nii.gz``, what ``clinseg predict`` writes.
* ``labelmap``: ``PRED/<case>.nii.gz`` (any image ending), one label map per case as nnU-Net writes it, in
  the reference dataset's label values (``dataset.json`` ``labels``).
* ``folder``: ``PRED/<case>/<name>.nii.gz`` (any image ending), a folder of binary masks per case as
  TotalSegmentator writes it, one file per structure.

``--names map.yaml`` says what the other tool calls our structures: ``our_name: their_name`` for ``folder``
(``Brainstem: brainstem``), ``our_name: label value`` for ``labelmap`` (``Parotid_L: 7``). With a map, only
the structures it lists are scored (others are left out of the tables, not counted as missed); without one,
every reference structure is looked up under its own name (``folder``) or the dataset's value
(``labelmap``). A prediction that is missing, or lies on another grid than the reference, is a
:class:`~clinseg.errors.DatasetError` naming the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clinseg.configfile import read_mapping
from clinseg.data.dataset import DatasetSpec
from clinseg.errors import ConfigError, DatasetError
from clinseg.io.image import has_supported_ending, read_image, strip_ending

log = logging.getLogger(__name__)


def _image_file(folder: Path, stem: str) -> Path | None:
    """The image file ``<stem>.<any supported ending>`` in ``folder`` (exact name first, then any case)."""
    if not folder.is_dir():
        return None
    candidates = [p for p in sorted(folder.iterdir()) if p.is_file() and has_supported_ending(p.name)
                  and not p.name.startswith(".")]
    for same in (lambda s: s == stem, lambda s: s.lower() == stem.lower()):
        found = [p for p in candidates if same(strip_ending(p.name))]
        if len(found) > 1:
            raise DatasetError(f"{folder}: several files for {stem!r} ({', '.join(p.name for p in found)})")
        if found:
            return found[0]
    return None


def _checked(array: np.ndarray, path: Path, shape: tuple[int, ...]) -> np.ndarray:
    if array.shape != tuple(shape):
        raise DatasetError(f"{path}: prediction shape {array.shape} differs from the reference {tuple(shape)}")
    return array


@dataclass
class MaskFolders:
    """``PRED/<case>/<file name>.<ending>`` binary masks; ``files`` maps our structure names to the file names
    (without ending); ``any_ending``: any image ending (else ``.nii.gz``, clinseg's)."""

    root: Path
    files: Mapping[str, str]
    any_ending: bool = True

    def has_case(self, case: str) -> bool:
        return (self.root / case).is_dir()

    def where(self, case: str) -> Path:
        return self.root / case

    def mask(self, case: str, structure: str, shape: tuple[int, ...]) -> np.ndarray:
        name = self.files[structure]
        path = (_image_file(self.root / case, name) if self.any_ending else None) \
            or self.root / case / f"{name}.nii.gz"
        if not path.is_file():
            raise DatasetError(f"{path}: prediction missing for case {case!r} structure {structure!r}")
        return _checked(read_image(path).array, path, shape) > 0


@dataclass
class LabelMaps:
    """``PRED/<case>.<ending>`` label maps; ``values`` maps our structure names to their label values."""

    root: Path
    values: Mapping[str, int]
    _cache: dict[str, tuple[Path, np.ndarray]] = field(default_factory=dict, repr=False)

    def has_case(self, case: str) -> bool:
        return _image_file(self.root, case) is not None

    def where(self, case: str) -> Path:
        return self.root / f"{case}.nii.gz"

    def mask(self, case: str, structure: str, shape: tuple[int, ...]) -> np.ndarray:
        if case not in self._cache:
            path = _image_file(self.root, case)
            if path is None:
                raise DatasetError(f"{self.where(case)}: label map missing for case {case!r}")
            self._cache.clear()  # one case at a time
            self._cache[case] = (path, read_image(path).array)
        path, labels = self._cache[case]
        return _checked(labels, path, shape) == self.values[structure]


@dataclass(frozen=True)
class Layout:
    """How to read one tool's predictions: ``source(pred_dir, names)`` builds the reader of the structures
    ``names`` maps (our name -> their file name or label value)."""

    name: str
    description: str
    read_names: Callable[[dict[str, object], str], dict[str, object]]
    source: Callable[[Path, Mapping[str, object]], MaskFolders | LabelMaps]


def _file_names(raw: dict[str, object], where: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for ours, theirs in raw.items():
        if not isinstance(theirs, str) or not theirs.strip():
            raise ConfigError(f"{where}: {ours!r} must map to a file name (their_name), got {theirs!r}")
        out[ours] = strip_ending(theirs.strip())
    return out


def _label_values(raw: dict[str, object], where: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for ours, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{where}: {ours!r} must map to a label value (a positive integer), got {value!r}")
        out[ours] = value
    return out


#: The prediction layouts of ``evaluate --pred-layout``.
LAYOUTS: dict[str, Layout] = {
    "clinseg": Layout("clinseg", "PRED/<case>/<structure>.nii.gz (clinseg predict)", _file_names,
                      lambda root, names: MaskFolders(root, {k: str(v) for k, v in names.items()}, False)),
    "labelmap": Layout("labelmap", "PRED/<case>.nii.gz label maps (nnU-Net)", _label_values,
                       lambda root, names: LabelMaps(root, {k: int(v) for k, v in names.items()})),  # type: ignore[call-overload]
    "folder": Layout("folder", "PRED/<case>/<name>.nii.gz binary masks (TotalSegmentator)", _file_names,
                     lambda root, names: MaskFolders(root, {k: str(v) for k, v in names.items()})),
}


def open_predictions(pred_dir: str | Path, spec: DatasetSpec, layout: str = "clinseg",
                     names: str | Path | Mapping[str, object] | None = None
                     ) -> tuple[MaskFolders | LabelMaps, tuple[str, ...]]:
    """The reader of ``pred_dir`` in ``layout`` and the reference structures it scores (dataset order).

    Parameters
    ----------
    pred_dir : the predictions folder.
    spec : the reference dataset's ``dataset.json``.
    layout : a key of :data:`LAYOUTS`.
    names : ``--names``: a YAML file (or mapping) ``our_name: their_name`` / ``our_name: label value``.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"--pred-layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DatasetError(f"{pred_dir}: prediction folder not found")
    chosen = LAYOUTS[layout]
    if names is None:
        default: dict[str, object] = dict(spec.label_values) if layout == "labelmap" \
            else {s: s for s in spec.structures}
        mapping = chosen.read_names(default, "dataset.json")
        return chosen.source(pred_dir, mapping), tuple(spec.structures)
    if layout == "clinseg":
        raise ConfigError("--names maps the names of another tool's predictions: use it with --pred-layout "
                          "folder or labelmap")
    where = str(names) if not isinstance(names, Mapping) else "--names"
    raw = dict(names) if isinstance(names, Mapping) else read_mapping(names, "names file")
    unknown = [k for k in raw if k not in spec.structures]
    if unknown:
        raise ConfigError(f"{where}: {', '.join(map(repr, unknown))} not a structure of the reference dataset "
                          f"({', '.join(spec.structures)}); write our_name: their_name")
    if not raw:
        raise ConfigError(f"{where}: the names map is empty (write our_name: their_name)")
    mapping = chosen.read_names(raw, where)
    scored = tuple(s for s in spec.structures if s in mapping)
    left_out = [s for s in spec.structures if s not in mapping]
    if left_out:
        log.info("not scored (not in %s): %s", where, ", ".join(left_out))
    return chosen.source(pred_dir, mapping), scored

