"""Write a person's corrected delineations into a dataset folder, ready for fine-tuning.

The corrective-annotation loop: segment a new image with ``clinseg interact``, correct it with clicks and
the brush, save the corrections into a dataset (this module), then fine-tune:
``clinseg train NEWDATASET --out RUN2 --init RUN/checkpoints/best.pt``.

Only the structures a person *touched* are written: ``structuresTr/<case>/<structure><ending>``. The others
are simply absent, which the dataset format reads as *not delineated* (loss weight 0), never as background
(docs/dataset-format.md). The image channels are copied from the original files, un-normalised. Every write
is atomic; the input image is only read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from clinseg.errors import ClinsegError, DatasetError
from clinseg.io.atomic import atomic_path, write_text
from clinseg.io.image import Geometry, read_image, strip_ending, write_image

DEFAULT_ENDING = ".nii.gz"


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


def save_case(dataset_dir: str | Path, case_id: str, image_path: str | Path, channels: Sequence[str],
              structures: Sequence[str], masks: Mapping[str, np.ndarray], geometry: Geometry) -> list[Path]:
    """Add (or update) ``case_id`` in the dataset at ``dataset_dir``; returns the files written.

    Parameters
    ----------
    dataset_dir : dataset folder; created with a new ``dataset.json`` when missing.
    case_id : the case's name in the dataset (``imagesTr/<case_id>_0000<ending>`` …).
    image_path : the original image (single file, or the ``_0000`` file of a multi-channel case).
    channels, structures : the run's channel names and structures (``dataset.json`` labels get their union).
    masks : structure -> ``(Z, Y, X)`` mask, only for the structures to write (the touched ones).
    geometry : geometry of the image grid, written with every mask.
    """
    if not masks:
        raise ClinsegError("nothing to save: no structure has a click or a brush stroke yet")
    if not case_id or "/" in case_id or case_id.startswith("."):
        raise DatasetError(f"{case_id!r} is not a valid case id")
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
    return written
