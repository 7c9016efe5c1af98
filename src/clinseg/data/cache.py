"""The preprocessed-case cache: each case cropped, resampled and normalised once, stored as arrays that
training reads a patch at a time.

Layout (``CACHE/<dataset>-<key>/``, ``key`` = a hash of the dataset's files and of the preprocessing)::

    cases/<case>.image.npy     (C, Z, Y, X) float16, normalised
    cases/<case>.labels.npy    (Z, Y, X) bit-packed binary targets (one bit per structure, then one bit for
                               unknown voxels, the ``ignore`` label; up to 63 structures) or
                               (N, Z, Y, X) uint8 (1, 0, UNKNOWN) for more structures
    cases/<case>.where.npz     per structure, up to LOCATIONS voxel indices inside it (patch centres)
    cases/<case>.json          shape, geometry, box, annotated structures (written last: the case is done)
    preprocessing.json         what was done (spacing, crop, normalisation), for people reading the folder

Runs and studies on the same data and plan share one folder (the key), building it once; a changed dataset
(its file hash) or plan gets a new folder. Each file is written atomically, so a build interrupted at any
point resumes with the cases not yet done, and two processes building the same cache at once only repeat
work. Arrays are opened memory-mapped and read a patch at a time (:meth:`CachedCase.read_patch`), then
unmapped: the memory of training does not grow with the number of cases.

The cache folder is ``$CLINSEG_CACHE`` when set, else ``~/.cache/clinseg``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clinseg.cores import available_cores
from clinseg.data.bitpack import pack_masks, packed_dtype, unpack_masks
from clinseg.data.dataset import CaseRecord, Dataset, DatasetSpec
from clinseg.data.loading import UNKNOWN, CaseData, load_image, load_targets
from clinseg.data.preprocess import Preprocessing, prepare_image, prepare_targets
from clinseg.errors import DatasetError
from clinseg.io.atomic import atomic_path, write_text
from clinseg.io.image import Geometry
from clinseg.progress import track

log = logging.getLogger(__name__)

#: Voxel indices kept per case and structure as candidate patch centres.
LOCATIONS = 1000
#: Bumped when the layout changes: an old cache is then rebuilt, not misread.
CACHE_VERSION = 2
_PACK_LIMIT = 64


def cache_root() -> Path:
    """``$CLINSEG_CACHE`` or ``~/.cache/clinseg``."""
    env = os.environ.get("CLINSEG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "clinseg"


def preprocessing_key(files_sha256: str, prep: Preprocessing, structures: Sequence[str]) -> str:
    """A short hash of the data and of how it is preprocessed: the cache folder's key."""
    record = {"version": CACHE_VERSION, "files": files_sha256, "structures": list(structures),
              "spacing": None if prep.spacing is None else [round(float(s), 6) for s in prep.spacing],
              "crop": prep.crop_to_body, "normalization": [n.to_json() for n in prep.normalization]}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedCase:
    """One preprocessed case in the cache (arrays stay on disk until read).

    Attributes
    ----------
    case_id : the case. folder : the cache's ``cases`` folder.
    shape : ``(Z, Y, X)`` on the preprocessed grid. geometry : that grid.
    annotated : ``(N,)`` bool, the structures the case delineates. num_structures : N.
    """

    case_id: str
    folder: Path
    shape: tuple[int, int, int]
    geometry: Geometry
    annotated: np.ndarray
    num_structures: int

    def _path(self, kind: str) -> Path:
        return self.folder / f"{self.case_id}.{kind}"

    def read_patch(self, corner: Sequence[int], size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Image ``(C, *size)`` float32 and targets ``(N, *size)`` uint8 of the box at ``corner`` (``(Z, Y, X)``,
        may reach outside the volume: the image is padded with its first voxel's value, air after cropping to the
        body with a margin, the targets with 0)."""
        image = np.load(self._path("image.npy"), mmap_mode="r")
        labels = np.load(self._path("labels.npy"), mmap_mode="r")
        try:
            src, dst = _overlap(corner, size, self.shape)
            img = np.full((image.shape[0], *size), _pad_value(image), dtype=np.float32)
            img[(slice(None), *dst)] = image[(slice(None), *src)]
            if labels.ndim == 3:
                packed = np.zeros(tuple(size), dtype=labels.dtype)
                packed[dst] = labels[src]
                target = _unpack(packed, self.num_structures)
            else:
                target = np.zeros((self.num_structures, *size), dtype=np.uint8)
                target[(slice(None), *dst)] = labels[(slice(None), *src)]
        finally:
            del image, labels  # unmap: the pages read leave this process's memory
        return img, target

    def locations(self) -> list[np.ndarray]:
        """Per structure, ``(K, 3)`` voxel indices inside it (empty when not delineated or empty)."""
        with np.load(self._path("where.npz")) as data:
            return [data[f"s{n}"] for n in range(self.num_structures)]

    def load(self) -> CaseData:
        """The whole case in memory as :class:`CaseData` (validation, and samplers that need whole cases)."""
        image = np.load(self._path("image.npy")).astype(np.float32)
        labels = np.load(self._path("labels.npy"))
        target = _unpack(labels, self.num_structures) if labels.ndim == 3 else labels.astype(np.uint8)
        return CaseData(self.case_id, image, target, self.annotated.copy(), self.geometry)


def _pack(target: np.ndarray) -> np.ndarray:
    """Bit-pack ``(N, Z, Y, X)`` targets: bit ``n`` = structure ``n`` inside, bit ``N`` = unknown voxel."""
    unknown = (target == UNKNOWN).any(axis=0)
    return pack_masks(np.concatenate([target == 1, unknown[None]]))


def _unpack(packed: np.ndarray, n: int) -> np.ndarray:
    """The ``(N, Z, Y, X)`` targets (1, 0, UNKNOWN) of :func:`_pack`'s array."""
    masks = unpack_masks(packed, n + 1)
    target, unknown = masks[:n], masks[n].astype(bool)
    if unknown.any():
        target[:, unknown] = UNKNOWN
    return target


def _pad_value(image: np.ndarray) -> float:
    """The value outside a cached image: its corner voxel's (air: the body box has a margin of air)."""
    return float(np.asarray(image[(slice(None), 0, 0, 0)]).min())


def _overlap(corner: Sequence[int], size: Sequence[int], shape: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Source slices in the volume and destination slices in the patch for a box that may stick out."""
    src, dst = [], []
    for c, p, s in zip(corner, size, shape):
        lo, hi = max(int(c), 0), min(int(c) + int(p), int(s))
        if hi <= lo:
            lo = hi = 0
        src.append(slice(lo, hi))
        dst.append(slice(lo - int(c), lo - int(c) + (hi - lo)))
    return tuple(src), tuple(dst)


def _geometry_json(g: Geometry) -> dict:
    return {"spacing": list(g.spacing), "origin": list(g.origin), "direction": list(g.direction), "shape": list(g.shape)}


def _geometry_from(raw: dict) -> Geometry:
    return Geometry(tuple(raw["spacing"]), tuple(raw["origin"]), tuple(raw["direction"]), tuple(raw["shape"]))  # type: ignore[arg-type]


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)


def build_case(record: CaseRecord, spec: DatasetSpec, prep: Preprocessing, folder: Path) -> None:
    """Preprocess one case into ``folder`` (its ``.json`` last)."""
    image, geometry = load_image(record, "none")  # intensities as stored, channels checked
    prepared = prepare_image(image, geometry, prep)
    target, annotated = load_targets(record, spec, geometry)
    target = prepare_targets(target, prepared)
    _save_npy(folder / f"{record.case_id}.image.npy", prepared.image.astype(np.float16))
    n = target.shape[0]
    _save_npy(folder / f"{record.case_id}.labels.npy", _pack(target) if n < _PACK_LIMIT else target)
    rng = np.random.default_rng(zlib.crc32(record.case_id.encode()))
    where = {}
    for s in range(n):
        coords = np.argwhere(target[s] == 1) if annotated[s] else np.zeros((0, 3), dtype=np.int64)
        if len(coords) > LOCATIONS:
            coords = coords[rng.choice(len(coords), LOCATIONS, replace=False)]
        where[f"s{s}"] = coords.astype(np.int32)
    with atomic_path(folder / f"{record.case_id}.where.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **where)
    info = {"case": record.case_id, "shape": list(prepared.image.shape[1:]), "geometry": _geometry_json(prepared.geometry),
            "box": [list(b) for b in prepared.box], "input_geometry": _geometry_json(geometry),
            "annotated": [bool(a) for a in annotated]}
    write_text(folder / f"{record.case_id}.json", json.dumps(info))


def _build_job(args: tuple[CaseRecord, DatasetSpec, Preprocessing, Path]) -> str:
    build_case(*args)
    return args[0].case_id


def _read_entry(folder: Path, case_id: str, num_structures: int) -> CachedCase | None:
    path = folder / f"{case_id}.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return CachedCase(case_id, folder, tuple(info["shape"]), _geometry_from(info["geometry"]),  # type: ignore[arg-type]
                          np.asarray(info["annotated"], dtype=bool), num_structures)
    except (ValueError, KeyError, TypeError):
        return None


def cache_folder(dataset: Dataset, files_sha256: str, prep: Preprocessing, root: Path | None = None) -> Path:
    """The cache folder of ``dataset`` preprocessed by ``prep``."""
    key = preprocessing_key(files_sha256, prep, dataset.spec.structures)
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.spec.name)[:40] or "dataset"
    return (root or cache_root()) / "preprocessed" / f"{safe_name}-{key}"


def build_cache(dataset: Dataset, records: Sequence[CaseRecord], files_sha256: str, prep: Preprocessing, *,
                root: Path | None = None, workers: int | None = None) -> dict[str, CachedCase]:
    """Preprocess ``records`` of ``dataset`` into the cache (only those not yet there) and return their entries.

    Parameters
    ----------
    dataset : the dataset the records belong to.
    records : the cases to have in the cache.
    files_sha256 : the dataset's file hash (:func:`clinseg.training.fingerprint.dataset_fingerprint`).
    prep : how to preprocess.
    root : cache root (default :func:`cache_root`).
    workers : processes preprocessing cases (default: the cores this process may use, at most 4).
    """
    folder = cache_folder(dataset, files_sha256, prep, root) / "cases"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot create the preprocessed-case cache ({exc.strerror}); set "
                           "CLINSEG_CACHE to a writable folder") from exc
    write_text(folder.parent / "preprocessing.json", json.dumps(
        {"dataset": str(dataset.root.resolve()), "files_sha256": files_sha256, "spacing": prep.spacing,
         "crop_to_body": prep.crop_to_body, "normalization": [n.to_json() for n in prep.normalization]}, indent=1))
    n = dataset.spec.num_structures
    todo = [r for r in records if _read_entry(folder, r.case_id, n) is None]
    if todo:
        log.info("preprocessing %d case(s) into %s", len(todo), folder.parent)
        jobs = [(r, dataset.spec, prep, folder) for r in todo]
        workers = workers or min(4, available_cores())
        if workers > 1 and len(jobs) > 2:
            with ProcessPoolExecutor(workers) as pool:
                for _ in track(pool.map(_build_job, jobs), "preprocessing", total=len(jobs)):
                    pass
        else:
            for job in track(jobs, "preprocessing"):
                _build_job(job)
    entries = {}
    for r in records:
        entry = _read_entry(folder, r.case_id, n)
        if entry is None:  # pragma: no cover - a concurrent writer removed it
            raise DatasetError(f"{folder}: case {r.case_id} missing from the cache after preprocessing")
        entries[r.case_id] = entry
    return entries


def packed_bytes_per_voxel(num_structures: int) -> int:
    """Bytes per voxel of the cached labels (for memory estimates)."""
    return packed_dtype(num_structures + 1).itemsize if num_structures < _PACK_LIMIT else num_structures
