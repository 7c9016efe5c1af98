"""Write a person's corrected delineations into a dataset folder, ready for fine-tuning.

The corrective-annotation loop: segment a new image with ``clinseg interact``, correct it with clicks and
the brush, save the corrections into a dataset (this module), then fine-tune:
``clinseg train NEWDATASET --out RUN2 --init RUN/checkpoints/best.pt``.

Only the structures a person *touched* are written: ``structuresTr/<case>/<structure><ending>``. The others
are simply absent, which the dataset format reads as *not delineated* (loss weight 0), never as background
(docs/dataset-format.md). The image channels are copied from the original files, un-normalised. Every write
is atomic; the input image is only read.

An existing case is never given another patient's image: when the dataset already holds the case id with a
different image (or any file or ``dataset.json`` entry of it without the same image), the corrections go to
the first free id of ``<case>_2``, ``<case>_3`` … (:func:`free_case_id`). Saving the same image again — the
same session twice, or the dataset's own case opened in the viewer — updates that case.
"""

from __future__ import annotations

import filecmp
import glob
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clinseg.errors import ClinsegError, DatasetError, ImageReadError
from clinseg.io.atomic import atomic_path, write_text
from clinseg.io.image import Geometry, read_image, strip_ending, write_image
from clinseg.names import check_name

DEFAULT_ENDING = ".nii.gz"
#: Ids tried after ``<case>`` itself when it holds another image: ``<case>_2`` … ``<case>_<MAX_RENAMES + 1>``.
MAX_RENAMES = 999


@dataclass(frozen=True)
class SavedCase:
    """What :func:`save_case` wrote.

    Attributes
    ----------
    case_id : the id the case was saved as (``requested``, or ``<requested>_<n>`` when that id holds another
        image).
    requested : the id asked for.
    files : the files written, ``dataset.json`` last.
    """

    case_id: str
    requested: str
    files: list[Path]

    @property
    def renamed(self) -> bool:
        """True when the requested id held another image and the case was saved under a new id."""
        return self.case_id != self.requested


def updated_spec(existing: Mapping | None, name: str, channels: Sequence[str],
                 structures: Sequence[str], source: Path) -> dict:
    """The ``dataset.json`` content after adding a case of ``channels`` delineating some of ``structures``.

    A new dataset is multilabel with labels 1..N in ``structures`` order. An existing one keeps its content
    (name, cases, other keys); its labels become the union with ``structures`` (new ones get the next free
    values). Refuses (:class:`DatasetError`, naming ``source``) a dataset of other channels, or a multiclass
    one — changing its label mode would change the meaning of its other cases' label maps.
    """
    channel_names = {str(i): str(c) for i, c in enumerate(channels)}
    if existing is None:
        return {
            "name": name,
            "channel_names": channel_names,
            "labels": {s: i + 1 for i, s in enumerate(structures)},
            "label_mode": "multilabel",
            "file_ending": DEFAULT_ENDING,
        }
    spec = dict(existing)
    have = spec.get("channel_names", spec.get("modality"))
    have = {str(k): str(v) for k, v in have.items()} if isinstance(have, Mapping) else None
    if have != channel_names:
        raise DatasetError(f"{source}: the dataset's channels {have} differ from the run's {channel_names}; "
                           "save the corrections into another dataset folder")
    if spec.get("label_mode", "multiclass") != "multilabel":
        raise DatasetError(f"{source}: a {spec.get('label_mode', 'multiclass')} dataset; corrections are "
                           "saved as per-structure masks of a multilabel dataset — choose another folder")
    labels = spec.get("labels")
    if isinstance(labels, list):
        values = {str(n): i + 1 for i, n in enumerate(labels)}
    elif isinstance(labels, Mapping):
        values = dict(labels)
    else:
        raise DatasetError(f"{source}: 'labels' must be an object or a list of structure names")
    next_value = max([v for v in values.values() if isinstance(v, int)] + [0]) + 1
    for structure in structures:
        if structure not in values:
            values[structure] = next_value
            next_value += 1
    spec["labels"] = values
    spec.setdefault("file_ending", DEFAULT_ENDING)
    return spec


def channel_files(image_path: str | Path, num_channels: int) -> list[Path]:
    """The original file of each channel: ``image_path`` itself for one channel, else the ``_0000`` file and
    its ``_0001``… siblings (the layout :meth:`InteractiveNetwork.load_image` reads)."""
    path = Path(image_path)
    if num_channels == 1:
        return [path]
    stem = strip_ending(path.name)
    ending = path.name[len(stem):]
    return [path.with_name(f"{stem[:-5]}_{c:04d}{ending}") for c in range(num_channels)]


def _copy_channel(source: Path, dest: Path) -> None:
    """Copy an image file; re-encode through SimpleITK when the ending differs (or uses a detached header)."""
    src_ending = source.name[len(strip_ending(source.name)):].lower()
    dst_ending = dest.name[len(strip_ending(dest.name)):].lower()
    if src_ending == dst_ending and src_ending in (".nii.gz", ".nii", ".nrrd", ".mha"):
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
        return
    image = read_image(source)
    write_image(image.array, image.geometry, dest)


def same_image(existing: Path, source: Path) -> bool:
    """True when the image file ``existing`` holds the same voxels and geometry as ``source``: the same file,
    byte-identical files, or (after a re-encoding copy) equal arrays on the same grid."""
    if existing.resolve() == source.resolve() or filecmp.cmp(existing, source, shallow=False):
        return True
    try:
        a, b = read_image(existing), read_image(source)
    except ImageReadError:
        return False
    return (a.array.shape == b.array.shape and a.geometry.mismatch(b.geometry) == []
            and bool(np.array_equal(a.array, b.array)))


def _case_traces(root: Path, case_id: str) -> list[Path]:
    """Every file or folder of ``case_id`` in the dataset at ``root``, training and test set alike."""
    name = glob.escape(case_id)
    patterns = [f"images{s}/{name}_[0-9][0-9][0-9][0-9].*" for s in ("Tr", "Ts")]
    patterns += [f"labels{s}/{name}.*" for s in ("Tr", "Ts")] + [f"structures{s}/{name}" for s in ("Tr", "Ts")]
    return sorted(p for pattern in patterns for p in root.glob(pattern))


def _holds_this_image(root: Path, case_id: str, sources: Sequence[Path], ending: str,
                      listed: Mapping) -> bool | None:
    """None when ``case_id`` is free in ``root``; True when its training images are ``sources``' images
    (channel for channel); False when it holds anything else (another image, or files without an image)."""
    traces = _case_traces(root, case_id)
    if not traces and case_id not in listed:
        return None
    ours = [root / "imagesTr" / f"{case_id}_{c:04d}{ending}" for c in range(len(sources))]
    images = [p for p in traces if p.parent.name in ("imagesTr", "imagesTs")]
    if sorted(images) != sorted(ours):
        return False
    return all(same_image(dest, source) for dest, source in zip(ours, sources))


def free_case_id(root: Path, case_id: str, sources: Sequence[Path], ending: str,
                 listed: Mapping | None = None) -> str:
    """The id to save the image ``sources`` (one file per channel) under in the dataset at ``root``.

    ``case_id`` itself when the dataset does not know it or holds exactly this image under it (an update);
    else the first of ``<case_id>_2``, ``<case_id>_3`` … that is free or holds this image. ``listed`` are the
    ``cases`` entries of ``dataset.json`` (an id listed there is taken even without files). Never the id of
    a case holding another image, so another patient's masks are never paired with this image.
    """
    for candidate in [case_id] + [f"{case_id}_{n}" for n in range(2, MAX_RENAMES + 2)]:
        if _holds_this_image(root, candidate, sources, ending, listed or {}) is not False:
            return candidate
    raise DatasetError(f"{root}: case ids {case_id} to {case_id}_{MAX_RENAMES + 1} all hold other images; "
                       "start the viewer with another --case")


def save_case(dataset_dir: str | Path, case_id: str, image_path: str | Path, channels: Sequence[str],
              structures: Sequence[str], masks: Mapping[str, np.ndarray], geometry: Geometry) -> SavedCase:
    """Add ``case_id`` to the dataset at ``dataset_dir`` (or update it when it holds this same image).

    When the dataset holds ``case_id`` with another image, the case is saved under a new id
    (:func:`free_case_id`): an existing case's image is never replaced.

    Parameters
    ----------
    dataset_dir : dataset folder; created with a new ``dataset.json`` when missing.
    case_id : the case's name in the dataset (``imagesTr/<case_id>_0000<ending>`` …).
    image_path : the original image (single file, or the ``_0000`` file of a multi-channel case).
    channels, structures : the run's channel names and structures (``dataset.json`` labels get their union).
    masks : structure -> ``(Z, Y, X)`` mask, only for the structures to write (the touched ones).
    geometry : geometry of the image grid, written with every mask.

    Returns
    -------
    SavedCase : the id used and the files written.
    """
    if not masks:
        raise ClinsegError("nothing to save: no structure has a click or a brush stroke yet")
    check_name(case_id, "case id", dataset_dir)
    root = Path(dataset_dir)
    json_path = root / "dataset.json"
    existing = None
    if json_path.is_file():
        try:
            existing = json.loads(json_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{json_path}: invalid JSON ({exc})") from exc
        if not isinstance(existing, Mapping):
            raise DatasetError(f"{json_path}: top level must be a JSON object")
    elif root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root}: exists and is not a dataset folder (no dataset.json); choose another folder")
    spec = updated_spec(existing, root.name, channels, structures, json_path)
    ending = str(spec["file_ending"])
    sources = channel_files(image_path, len(channels))
    missing = [str(s) for s in sources if not s.is_file()]
    if missing:
        raise DatasetError(f"image file(s) not found: {', '.join(missing)}")
    listed = spec.get("cases") if isinstance(spec.get("cases"), Mapping) else {}
    requested, case_id = case_id, free_case_id(root, case_id, sources, ending, listed)
    written: list[Path] = []
    for c, source in enumerate(sources):
        dest = root / "imagesTr" / f"{case_id}_{c:04d}{ending}"
        if dest.resolve() != source.resolve():  # the image may already be this dataset's own file
            _copy_channel(source, dest)
        written.append(dest)
    for structure, mask in masks.items():
        dest = root / "structuresTr" / case_id / f"{structure}{ending}"
        write_image(np.asarray(mask, dtype=np.uint8), geometry, dest)
        written.append(dest)
    write_text(json_path, json.dumps(spec, indent=2) + "\n")
    written.append(json_path)
    return SavedCase(case_id, requested, written)
