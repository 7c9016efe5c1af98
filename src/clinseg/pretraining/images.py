"""The unlabeled images of a pretraining run: found in a dataset folder or a plain folder, loaded, fingerprinted.

Restoration pretraining needs images only (seed 002 §2.2: "the training process does not need any expert
created annotations"). Two kinds of source:

* a **dataset folder** (``dataset.json`` present): the training images ``imagesTr/<case>_<channel>`` only;
  test images (``imagesTs``) are never used, and label maps and structure masks are never opened;
* a **plain folder** of images (``*.nii.gz``, ``*.nii``, ``*.nrrd``, ``*.mha`` … see
  :data:`clinseg.io.SUPPORTED_ENDINGS`; not recursive): files named ``<image>_<4-digit channel>`` are the
  channels of one image, any other file is a one-channel image of its own. Every image needs the same
  number of channels.

Loaded images are ``(C, Z, Y, X)`` float32, normalised per channel and clipped to [0, 1] (the range the
distortions assume).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from clinseg.data.dataset import CaseRecord, load_dataset
from clinseg.data.loading import Normalization, load_image
from clinseg.errors import DatasetError
from clinseg.io.image import SUPPORTED_ENDINGS, has_supported_ending, strip_ending
from clinseg.progress import track

__all__ = ["ImageGroup", "ImageSet", "find_images", "image_fingerprint", "load_images"]

log = logging.getLogger(__name__)
_CHANNEL_RE = re.compile(r"^(?P<image>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class ImageGroup:
    """One image: its id and one file per channel, in channel order."""

    image_id: str
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class ImageSet:
    """The images of a pretraining source.

    Attributes
    ----------
    root : the source folder.
    kind : ``"dataset"`` (imagesTr of a dataset folder) or ``"folder"`` (a plain folder of images).
    images : the images, sorted by id.
    channel_names : channel names from ``dataset.json``, or None for a plain folder.
    """

    root: Path
    kind: str
    images: tuple[ImageGroup, ...]
    channel_names: tuple[str, ...] | None

    @property
    def num_channels(self) -> int:
        return len(self.images[0].paths)

    def ids(self) -> list[str]:
        return [g.image_id for g in self.images]


def _from_dataset(root: Path) -> ImageSet:
    dataset = load_dataset(root)
    groups = []
    for record in dataset.train:
        if not any(p.is_file() for p in record.images):  # a case with references but no image
            log.warning("%s: case %s has no image in imagesTr; skipped", root, record.case_id)
            continue
        groups.append(ImageGroup(record.case_id, tuple(record.images)))
    if not groups:
        raise DatasetError(f"{root}: no training images in imagesTr/ (test images are never used)")
    return ImageSet(root, "dataset", tuple(groups), tuple(dataset.spec.channels))


def _from_folder(root: Path) -> ImageSet:
    files = sorted(p for p in root.iterdir() if p.is_file() and has_supported_ending(p.name))
    if not files:
        raise DatasetError(f"{root}: no images ({', '.join('*' + e for e in SUPPORTED_ENDINGS)}) and no "
                           "dataset.json")
    channels: dict[str, dict[int, Path]] = {}
    for file in files:
        match = _CHANNEL_RE.match(strip_ending(file.name))
        image, channel = (match["image"], int(match["channel"])) if match else (strip_ending(file.name), 0)
        if channel in channels.setdefault(image, {}):
            raise DatasetError(f"{file}: image {image!r} channel {channel} also in "
                               f"{channels[image][channel].name}")
        channels[image][channel] = file
    groups = []
    for image, by_channel in sorted(channels.items()):
        if sorted(by_channel) != list(range(len(by_channel))):
            raise DatasetError(f"{root}: image {image!r} has channels {sorted(by_channel)}; expected "
                               f"0..{len(by_channel) - 1} (<image>_0000, <image>_0001, …)")
        groups.append(ImageGroup(image, tuple(by_channel[c] for c in range(len(by_channel)))))
    counts = {len(g.paths) for g in groups}
    if len(counts) > 1:
        examples = {len(g.paths): g.image_id for g in groups}
        raise DatasetError(f"{root}: images have different channel counts "
                           f"({', '.join(f'{n} in {examples[n]!r}' for n in sorted(examples))}); "
                           "all need the same")
    return ImageSet(root, "folder", tuple(groups), None)


def find_images(source: str | Path) -> ImageSet:
    """List the images of ``source`` (dataset folder or plain folder, see the module doc); reads no image.

    Raises :class:`~clinseg.errors.DatasetError` naming the folder when there is nothing usable.
    """
    root = Path(source)
    if not root.is_dir():
        raise DatasetError(f"{root}: pretraining source folder not found")
    return _from_dataset(root) if (root / "dataset.json").is_file() else _from_folder(root)


def image_fingerprint(images: ImageSet) -> dict[str, Any]:
    """``{"kind", "images": [[relative path, size in bytes], …]}``: a resumed run refuses another image set.

    Sizes rather than contents keep it instant while catching added, removed or rewritten files in practice
    (as :func:`clinseg.training.fingerprint.dataset_fingerprint`).
    """
    files = []
    for group in images.images:
        for path in group.paths:
            files.append([path.relative_to(images.root).as_posix(), path.stat().st_size if path.exists() else -1])
    return {"kind": images.kind, "images": files}


def load_images(groups: list[ImageGroup], normalization: str = "none") -> list[np.ndarray]:
    """Read each image as ``(C, Z, Y, X)`` float32, normalised per channel, then clipped to [0, 1].

    The clip is there because the Models Genesis distortions assume intensities in [0, 1]; choose a
    normalisation that maps the useful range there (``percentile``; ``none`` for data already in [0, 1]).
    """
    out = []
    for group in track(groups, "loading images"):
        record = CaseRecord(group.image_id, "train", group.paths, None, {}, frozenset())
        image, _ = load_image(record, cast(Normalization, normalization))
        out.append(np.clip(image, 0.0, 1.0, out=image))
    return out
