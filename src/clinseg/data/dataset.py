"""The clinseg dataset format: an nnU-Net v2 / MSD folder extended for incomplete and weak labels.

Layout (see ``docs/dataset-format.md``)::

    DATASET/dataset.json
    DATASET/imagesTr/<case>_<channel:04d><ending>      one file per channel
    DATASET/labelsTr/<case><ending>                     label map (exclusive classes), and/or
    DATASET/structuresTr/<case>/<structure><ending>     one binary mask per delineated structure
    DATASET/imagesTs, labelsTs, structuresTs            optional held-out test set

:func:`load_dataset` only reads ``dataset.json`` and lists files: it never opens an image. Problems that
make the folder unusable raise :class:`~clinseg.errors.DatasetError`; problems of individual files are
left to :mod:`clinseg.data.validate`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from clinseg.data.labels import parse_labels
from clinseg.data.relations import Relations, parse_relations
from clinseg.errors import DatasetError
from clinseg.io.image import has_supported_ending, strip_ending
from clinseg.io.jsonfile import read_json
from clinseg.names import check_name

LabelMode = Literal["multiclass", "multilabel"]
Split = Literal["train", "test"]
SPLIT_FOLDERS: dict[str, tuple[str, str, str]] = {
    "train": ("imagesTr", "labelsTr", "structuresTr"),
    "test": ("imagesTs", "labelsTs", "structuresTs"),
}
_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
#: Key of ``weak_slices`` (and ``weak_labels``) that stands for "any structure" (the union of all classes).
ANY_STRUCTURE = "tumour"


@dataclass(frozen=True)
class DatasetSpec:
    """What ``dataset.json`` declares.

    Attributes
    ----------
    name : dataset name.
    channels : channel names in channel order (index = the 4-digit suffix of the image files).
    structures : foreground structure (class) names in model output order (background excluded).
    label_values : value of each structure in label maps (``labelsTr``); for a multilabel dataset given as a
        list of names the values are 1..N.
    label_mode : ``"multilabel"`` (one sigmoid per structure, overlaps allowed) or ``"multiclass"``
        (mutually exclusive classes, softmax).
    file_ending : the declared image ending (``.nii.gz``, ``.nrrd``, ``.mha`` …).
    case_annotated : per case, the structures delineated in its label map (absent classes then mean "not
        delineated" rather than background); cases not listed are fully annotated.
    case_absent : per case, structures known to be absent from it (e.g. a kidney after nephrectomy, or the
        classes of another task in a multi-task union): delineated as empty, so they are learned as negative
        everywhere in the case instead of being left out of the loss.
    weak_labels : per case, image-level labels such as ``{"tumour": True}``.
    weak_slices : per case, slice-level labels: structure name (or :data:`ANY_STRUCTURE`, "any structure")
        -> the axial slices (Z indices of the ``(Z, Y, X)`` array) that contain it; a listed name is absent
        from every other slice of the case. For mixed supervision (seed 001 chapter 3).
    missing_channels : per case, the channels (names) that were not acquired; their image files hold zeros.
    relations : containment, exclusion and left/right pairing between structures (:mod:`relations`).
    regions : nnU-Net v2 region labels (``"Eyes": [2, 3]``): a structure that is the union of label values
        (multilabel datasets only: regions overlap).
    ignore_value : nnU-Net v2's ``ignore`` label (the highest value): its voxels are unknown for every
        structure, in training, validation and evaluation; ``None`` when the dataset has none.
    """

    name: str
    channels: tuple[str, ...]
    structures: tuple[str, ...]
    label_values: Mapping[str, int]
    label_mode: LabelMode = "multilabel"
    file_ending: str = ".nii.gz"
    case_annotated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    case_absent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    weak_labels: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    weak_slices: Mapping[str, Mapping[str, tuple[int, ...]]] = field(default_factory=dict)
    missing_channels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    relations: Relations = field(default_factory=Relations)
    regions: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    ignore_value: int | None = None

    def values_of(self, name: str) -> tuple[int, ...]:
        """The label-map values of a structure: its value, or every value of a region."""
        return tuple(self.regions.get(name, (self.label_values[name],)))

    @property
    def allowed_values(self) -> tuple[int, ...]:
        """Every value a label map may hold: background, the labels, the regions' and ``ignore``."""
        values = {0, *self.label_values.values(), *(v for r in self.regions.values() for v in r)}
        return tuple(sorted(values | ({self.ignore_value} if self.ignore_value is not None else set())))

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def num_structures(self) -> int:
        return len(self.structures)


@dataclass(frozen=True)
class CaseRecord:
    """One case: where its files are and which structures it delineates.

    ``images`` lists the expected path of every declared channel, whether it exists or not (validation
    reports missing ones). ``annotated`` is the set of structures with a reference in this case: a
    structure outside it is *not delineated* (loss weight 0), never background.
    """

    case_id: str
    split: Split
    images: tuple[Path, ...]
    label_map: Path | None
    structure_files: Mapping[str, Path]
    annotated: frozenset[str]
    weak_labels: Mapping[str, bool] = field(default_factory=dict)
    complete: bool = False
    """Whether every structure of the dataset is delineated in this case."""


@dataclass(frozen=True)
class Dataset:
    """A dataset folder: its spec and its case records per split."""

    root: Path
    spec: DatasetSpec
    train: tuple[CaseRecord, ...]
    test: tuple[CaseRecord, ...]
    problems: tuple[str, ...] = ()
    """Layout problems found while listing (duplicates, stray files); :mod:`validate` reports them."""

    def cases(self, split: Split | None = None) -> tuple[CaseRecord, ...]:
        """Records of one split, or of both (train first)."""
        if split is None:
            return self.train + self.test
        return self.train if split == "train" else self.test

    def case(self, case_id: str) -> CaseRecord:
        for record in self.cases():
            if record.case_id == case_id:
                return record
        raise DatasetError(f"{self.root}: no case {case_id!r}")


def parse_spec(raw: Mapping, path: Path) -> DatasetSpec:
    """Build a :class:`DatasetSpec` from the parsed ``dataset.json`` (``path`` is used in messages).

    Accepts the clinseg extension and a plain nnU-Net v2 ``dataset.json`` (read as multiclass, all labels
    annotated; the ``background`` label is dropped from the structures).
    """
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{path}: top level must be a JSON object")
    channel_names = raw.get("channel_names", raw.get("modality"))
    if not isinstance(channel_names, Mapping) or not channel_names:
        raise DatasetError(f"{path}: 'channel_names' must map channel indices to names, e.g. {{\"0\": \"T1\"}}")
    try:
        indices = sorted(int(k) for k in channel_names)
    except ValueError as exc:
        raise DatasetError(f"{path}: channel_names keys must be integers, got {list(channel_names)}") from exc
    if indices != list(range(len(indices))):
        raise DatasetError(f"{path}: channel indices must be 0..{len(indices) - 1}, got {indices}")
    channels = tuple(str(channel_names[str(i)] if str(i) in channel_names else channel_names[i]) for i in indices)
    for channel in channels:  # channel names become folder names (subnet_<channel> of --method 2d)
        check_name(channel, "channel name", path)

    label_values, regions, ignore_value = parse_labels(raw.get("labels"), path)
    structures = tuple(sorted(label_values, key=label_values.__getitem__))

    mode = raw.get("label_mode", "multilabel" if regions else "multiclass")
    if mode not in ("multiclass", "multilabel"):
        raise DatasetError(f"{path}: label_mode must be 'multiclass' or 'multilabel', got {mode!r}")
    if regions and mode == "multiclass":
        raise DatasetError(f"{path}: region labels {sorted(regions)} overlap other labels, so they cannot be "
                           "exclusive classes: set \"label_mode\": \"multilabel\" (one sigmoid per structure)")
    ending = str(raw.get("file_ending", ".nii.gz"))
    if not has_supported_ending("x" + ending):
        raise DatasetError(f"{path}: unsupported file_ending {ending!r}")

    case_annotated: dict[str, tuple[str, ...]] = {}
    case_absent: dict[str, tuple[str, ...]] = {}
    weak: dict[str, dict[str, bool]] = {}
    weak_slices: dict[str, dict[str, tuple[int, ...]]] = {}
    missing: dict[str, tuple[str, ...]] = {}
    cases = raw.get("cases", {})
    if not isinstance(cases, Mapping):
        raise DatasetError(f"{path}: 'cases' must be an object keyed by case id")
    for case_id, info in cases.items():
        check_name(case_id, "case id", path)
        if not isinstance(info, Mapping):
            raise DatasetError(f"{path}: cases[{case_id!r}] must be an object")
        if "annotated" in info:
            names = info["annotated"]
            if not isinstance(names, list):
                raise DatasetError(f"{path}: cases[{case_id!r}].annotated must be a list of structure names")
            case_annotated[str(case_id)] = tuple(str(n) for n in names)
        if "absent" in info:
            case_absent[str(case_id)] = _names(info["absent"], label_values,
                                               f"{path}: cases[{case_id!r}].absent", "structure")
        if "weak_labels" in info:
            wl = info["weak_labels"]
            if not isinstance(wl, Mapping) or not all(isinstance(v, bool) for v in wl.values()):
                raise DatasetError(f"{path}: cases[{case_id!r}].weak_labels must map names to true/false")
            weak[str(case_id)] = {str(k): bool(v) for k, v in wl.items()}
        if "weak_slices" in info:
            weak_slices[str(case_id)] = _parse_weak_slices(info["weak_slices"], label_values,
                                                           f"{path}: cases[{case_id!r}].weak_slices")
        if "missing_channels" in info:
            missing[str(case_id)] = _names(info["missing_channels"], channels,
                                           f"{path}: cases[{case_id!r}].missing_channels", "channel")
    return DatasetSpec(
        name=str(raw.get("name", path.parent.name)),
        channels=channels,
        structures=structures,
        label_values=label_values,
        label_mode=mode,
        file_ending=ending,
        case_annotated=case_annotated,
        case_absent=case_absent,
        weak_labels=weak,
        weak_slices=weak_slices,
        missing_channels=missing,
        relations=parse_relations(raw.get("relations"), structures, str(path)),
        regions=regions,
        ignore_value=ignore_value,
    )


def _parse_weak_slices(raw: object, label_values: Mapping[str, int], where: str) -> dict[str, tuple[int, ...]]:
    """``{structure or "tumour": [slice indices]}`` -> sorted, de-duplicated tuples (``where`` names it)."""
    if not isinstance(raw, Mapping):
        raise DatasetError(f"{where} must map structure names to lists of axial slice indices")
    out = {}
    for name, indices in raw.items():
        if name != ANY_STRUCTURE and name not in label_values:
            raise DatasetError(f"{where}: unknown structure {name!r} (known: {sorted(label_values)} or "
                               f"{ANY_STRUCTURE!r})")
        if not isinstance(indices, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices):
            raise DatasetError(f"{where}[{name!r}] must be a list of slice indices >= 0, got {indices!r}")
        out[str(name)] = tuple(sorted(set(indices)))
    return out


def read_spec(root: str | Path) -> DatasetSpec:
    """Read and parse ``root/dataset.json``."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise DatasetError(f"{path}: not found (is {Path(root)} a dataset folder?)")
    return parse_spec(read_json(path), path)


def _names(value: object, allowed: Sequence[str] | Mapping[str, int], where: str, kind: str) -> tuple[str, ...]:
    """``value`` as a tuple of names, each one of ``allowed``; else a :class:`DatasetError` naming ``where``."""
    if not isinstance(value, list) or not set(map(str, value)) <= set(allowed):
        raise DatasetError(f"{where} must be a list of {kind} names ({', '.join(allowed)}), got {value!r}")
    return tuple(str(n) for n in value)


def _visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` in name order, hidden ones (``.name``: temporary files of an interrupted write,
    macOS ``._`` files) left out."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in _visible(folder) if p.is_file() and has_supported_ending(p.name)]


def _list_split(root: Path, spec: DatasetSpec, split: Split, problems: list[str]) -> list[CaseRecord]:
    images_dir, labels_dir, structures_dir = (root / f for f in SPLIT_FOLDERS[split])
    channel_files: dict[str, dict[int, Path]] = {}
    for file in _image_files(images_dir):
        match = _CHANNEL_RE.match(strip_ending(file.name))
        if match is None:
            problems.append(f"{file}: image name must be <case>_<4-digit channel>{spec.file_ending}")
            continue
        case, channel = check_name(match["case"], "case id", file), int(match["channel"])
        if channel >= spec.num_channels:
            problems.append(f"{file}: channel {channel} is not declared in dataset.json channel_names")
            continue
        previous = channel_files.setdefault(case, {}).get(channel)
        if previous is not None:
            problems.append(f"{file}: duplicate case {case!r} channel {channel} (also {previous.name})")
            continue
        channel_files[case][channel] = file
    label_files: dict[str, Path] = {}
    for file in _image_files(labels_dir):
        case = check_name(strip_ending(file.name), "case id", file)
        if case in label_files:
            problems.append(f"{file}: duplicate label map for case {case!r} (also {label_files[case].name})")
            continue
        label_files[case] = file
    structure_files: dict[str, dict[str, Path]] = {}
    if structures_dir.is_dir():
        for case_dir in (p for p in _visible(structures_dir) if p.is_dir()):
            check_name(case_dir.name, "case id", case_dir)
            masks: dict[str, Path] = {}
            for file in _image_files(case_dir):
                name = strip_ending(file.name)
                if name in masks:
                    problems.append(f"{file}: duplicate mask for structure {name!r} (also {masks[name].name})")
                    continue
                masks[name] = file
            structure_files[case_dir.name] = masks

    records = []
    for case in sorted(set(channel_files) | set(label_files) | set(structure_files)):
        images = tuple(
            channel_files.get(case, {}).get(c, images_dir / f"{case}_{c:04d}{spec.file_ending}")
            for c in range(spec.num_channels)
        )
        masks = structure_files.get(case, {})
        annotated = {n for n in masks if n in spec.label_values}
        label_map = label_files.get(case)
        if label_map is not None:
            annotated |= set(spec.case_annotated.get(case, spec.structures)) & set(spec.structures)
        absent = set(spec.case_absent.get(case, ()))
        if clash := sorted(absent & set(masks)):
            problems.append(f"{case}: structure(s) {clash} are declared absent in dataset.json but have masks")
        annotated |= absent
        records.append(
            CaseRecord(
                case_id=case,
                split=split,
                images=images,
                label_map=label_map,
                structure_files=dict(masks),
                annotated=frozenset(annotated),
                weak_labels=dict(spec.weak_labels.get(case, {})),
                complete=annotated >= set(spec.structures),
            )
        )
    return records


def load_dataset(root: str | Path) -> Dataset:
    """List a dataset folder and return typed case records (no image is read).

    Parameters
    ----------
    root : the dataset folder holding ``dataset.json`` (clinseg or plain nnU-Net v2 raw layout).

    Raises
    ------
    DatasetError
        When the folder or ``dataset.json`` is missing or malformed; messages name the file.

    Examples
    --------
    >>> ds = load_dataset("demo/HeadOAR")          # doctest: +SKIP
    >>> [c.case_id for c in ds.train][:2]          # doctest: +SKIP
    ['head_000', 'head_001']
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    spec = read_spec(root)
    problems: list[str] = []
    train = _list_split(root, spec, "train", problems)
    test = _list_split(root, spec, "test", problems)
    overlap = sorted({r.case_id for r in train} & {r.case_id for r in test})
    for case in overlap:
        problems.append(f"{root}: duplicate case {case!r} appears in both the training and the test set")
    if not train and not test:
        raise DatasetError(f"{root}: no cases found in imagesTr/ or imagesTs/")
    return Dataset(root=root, spec=spec, train=tuple(train), test=tuple(test), problems=tuple(problems))
