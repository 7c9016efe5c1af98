"""The dataset fingerprint: what the planner needs to know about a dataset (nnU-Net's "dataset fingerprint").

Every training case is read once: its spacing and shape, its body box (non-air region), per channel a
random sample of the intensities inside its delineated structures, and per delineated structure its volume,
extent and number of connected components. The fingerprint is summarised into JSON-ready statistics
(:class:`DatasetFingerprint`) that :func:`clinseg.planning.rules.make_plan` turns into a plan.

Reading every voxel of a clinical dataset takes a while (about a minute for 200 CTs of 128³ on 2 cores),
so cases are read in worker processes and the fingerprint is cached by the dataset's file hash
(:func:`fingerprint_dataset` with ``cache_dir``).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cc3d
import numpy as np

from clinseg.cores import available_cores
from clinseg.data.body import body_box
from clinseg.data.crop import box_size
from clinseg.data.dataset import CaseRecord, Dataset, DatasetSpec
from clinseg.data.loading import load_image, load_targets
from clinseg.errors import ClinsegError, DatasetError
from clinseg.io.atomic import write_text
from clinseg.io.image import Geometry
from clinseg.progress import track

log = logging.getLogger(__name__)

#: Foreground intensities sampled per case and channel (nnU-Net samples 10 000 per case).
SAMPLES_PER_CASE = 10_000
#: Version of the fingerprint's JSON layout; a cached fingerprint of another version is recomputed.
FINGERPRINT_VERSION = 1


@dataclass
class CaseFingerprint:
    """What one case contributes (see :func:`fingerprint_case`).

    Attributes
    ----------
    case_id : the case.
    spacing : voxel size in mm ``(x, y, z)``.
    shape : array shape ``(Z, Y, X)``.
    body_shape : shape ``(Z, Y, X)`` of the body box.
    lr_axis : the array axis (0=Z, 1=Y, 2=X) that runs along the patient's left-right direction.
    samples : per channel, foreground intensities (inside any delineated structure; the body when none).
    structures : per delineated, non-empty structure: ``voxels``, ``extent`` ``(Z, Y, X)`` voxels,
        ``components`` (26-connected).
    """

    case_id: str
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    body_shape: tuple[int, int, int]
    lr_axis: int
    samples: list[np.ndarray]
    structures: dict[str, dict] = field(default_factory=dict)


def lr_axis_of(geometry: Geometry) -> int:
    """The array axis (0=Z, 1=Y, 2=X) whose direction is closest to the patient's left-right axis.

    ITK's direction matrix has one column per index axis ``(i, j, k)`` = array axes ``(X, Y, Z)``, in LPS
    coordinates whose first component is right-to-left.
    """
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    index_axis = int(np.argmax(np.abs(direction[0])))
    return 2 - index_axis


def fingerprint_case(record: CaseRecord, spec: DatasetSpec, seed: int = 0) -> CaseFingerprint:
    """Read one case and measure it (intensities as stored, before any normalisation)."""
    image, geometry = load_image(record, "none")  # intensities as stored, channels checked
    box = body_box(image)
    target, annotated = load_targets(record, spec, geometry)
    rng = np.random.default_rng([seed, zlib.crc32(record.case_id.encode())])
    foreground = target.any(axis=0) if annotated.any() else np.zeros(geometry.shape, dtype=bool)
    where = foreground if foreground.any() else np.zeros(geometry.shape, dtype=bool)
    if not where.any():  # no delineation: sample the body box
        where[tuple(slice(a, b) for a, b in box)] = True
    flat = np.flatnonzero(where)
    pick = flat if flat.size <= SAMPLES_PER_CASE else rng.choice(flat, SAMPLES_PER_CASE, replace=False)
    samples = [c.ravel()[pick].astype(np.float32) for c in image]
    structures = {}
    for n, name in enumerate(spec.structures):
        if not annotated[n] or not target[n].any():
            continue
        hits = [np.flatnonzero(target[n].any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
        components = int(cc3d.connected_components(target[n], connectivity=26, return_N=True)[1])
        structures[name] = {"voxels": int(target[n].sum()), "extent": [int(h[-1] - h[0] + 1) for h in hits],
                            "components": components}
    return CaseFingerprint(record.case_id, tuple(geometry.spacing), tuple(geometry.shape),  # type: ignore[arg-type]
                           box_size(box), lr_axis_of(geometry), samples, structures)


def _fingerprint_job(args: tuple[CaseRecord, DatasetSpec]) -> CaseFingerprint | str:
    """A case's fingerprint, or the one-line problem of a case that cannot be read (a dataset trained with
    ``--skip-validation`` may hold one; the plan is made from the others)."""
    try:
        return fingerprint_case(*args)
    except ClinsegError as exc:
        return str(exc)


@dataclass
class StructureStats:
    """Summary of one structure over the training cases that delineate it (volumes in ml, extents in mm
    ``(Z, Y, X)``, medians)."""

    cases: int
    volume_ml: float
    extent_mm: list[float]
    single_component_share: float


@dataclass
class ChannelStats:
    """Foreground intensity statistics of one channel pooled over the training cases."""

    name: str
    modality: str
    percentile_00_5: float
    percentile_99_5: float
    mean: float
    std: float
    clipped_mean: float
    clipped_std: float


@dataclass
class DatasetFingerprint:
    """The summarised fingerprint (JSON: :meth:`to_json` / :meth:`from_json`).

    Attributes
    ----------
    dataset : dataset name; files_sha256 : the hash of its files (:mod:`clinseg.training.fingerprint`).
    spacings : per training case, ``(x, y, z)`` mm. shapes, body_shapes : per case ``(Z, Y, X)`` voxels.
    lr_axis : the array axis running left-right in most cases.
    channels : per channel :class:`ChannelStats`. structures : per structure :class:`StructureStats`.
    """

    dataset: str
    files_sha256: str
    spacings: list[list[float]]
    shapes: list[list[int]]
    body_shapes: list[list[int]]
    lr_axis: int
    channels: list[ChannelStats]
    structures: dict[str, StructureStats]
    version: int = FINGERPRINT_VERSION

    @property
    def median_spacing(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.median(np.asarray(self.spacings), axis=0))  # type: ignore[return-value]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> DatasetFingerprint:
        values = dict(raw)
        values["channels"] = [ChannelStats(**c) for c in raw["channels"]]
        values["structures"] = {k: StructureStats(**v) for k, v in raw["structures"].items()}
        return cls(**values)


def channel_modality(name: str) -> str:
    """``CT`` for a channel named like CT (``CT``, ``ct``, ``CT_HU``, ``planning CT``), else ``MR``.

    nnU-Net decides by the channel name alone; so does clinseg (an MR channel named ``CT`` would be
    normalised as CT).
    """
    tokens = "".join(ch if ch.isalnum() else " " for ch in name.upper()).split()
    return "CT" if "CT" in tokens else "MR"


def summarise(cases: Sequence[CaseFingerprint], spec: DatasetSpec, files_sha256: str) -> DatasetFingerprint:
    """Pool per-case fingerprints into a :class:`DatasetFingerprint`."""
    channels = []
    for c, name in enumerate(spec.channels):
        pooled = np.concatenate([case.samples[c] for case in cases]).astype(np.float64)
        low, high = np.percentile(pooled, [0.5, 99.5])
        clipped = np.clip(pooled, low, high)
        channels.append(ChannelStats(name, channel_modality(name), float(low), float(high), float(pooled.mean()),
                                     float(pooled.std()), float(clipped.mean()), float(max(clipped.std(), 1e-6))))
    structures = {}
    for name in spec.structures:
        found = [(case, case.structures[name]) for case in cases if name in case.structures]
        if not found:
            continue
        volumes = [s["voxels"] * float(np.prod(case.spacing)) / 1000.0 for case, s in found]
        extents = [np.asarray(s["extent"]) * np.asarray(case.spacing[::-1]) for case, s in found]
        structures[name] = StructureStats(len(found), float(np.median(volumes)),
                                          [float(v) for v in np.median(extents, axis=0)],
                                          float(np.mean([s["components"] == 1 for _, s in found])))
    axes = [case.lr_axis for case in cases]
    return DatasetFingerprint(
        dataset=spec.name, files_sha256=files_sha256,
        spacings=[[float(v) for v in case.spacing] for case in cases],
        shapes=[list(case.shape) for case in cases], body_shapes=[list(case.body_shape) for case in cases],
        lr_axis=int(max(set(axes), key=axes.count)), channels=channels, structures=structures)


def fingerprint_dataset(dataset: Dataset, files_sha256: str, *, cache_dir: str | Path | None = None,
                        workers: int | None = None) -> DatasetFingerprint:
    """Fingerprint the training cases of ``dataset`` (cached as ``cache_dir/fingerprint.json``).

    Parameters
    ----------
    dataset : the dataset (its training cases are read).
    files_sha256 : the hash of the dataset's files; a cached fingerprint of another hash is recomputed.
    cache_dir : folder for ``fingerprint.json``; ``None`` = no cache.
    workers : processes reading cases (default: the cores this process may use, at most 4).
    """
    cached = Path(cache_dir) / "fingerprint.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            raw = json.loads(cached.read_text(encoding="utf-8"))
            if raw.get("files_sha256") == files_sha256 and raw.get("version") == FINGERPRINT_VERSION:
                return DatasetFingerprint.from_json(raw)
        except (ValueError, TypeError, KeyError):
            log.warning("%s: unreadable cached fingerprint, recomputing", cached)
    records = list(dataset.train) or list(dataset.test)
    jobs = [(r, dataset.spec) for r in records]
    workers = workers or min(4, available_cores())
    if workers > 1 and len(jobs) > 4:
        with ProcessPoolExecutor(workers) as pool:
            cases = list(track(pool.map(_fingerprint_job, jobs, chunksize=2), "fingerprinting", total=len(jobs)))
    else:
        cases = [_fingerprint_job(j) for j in track(jobs, "fingerprinting")]
    problems = [c for c in cases if isinstance(c, str)]
    for problem in problems:
        log.warning("fingerprint: case left out (%s)", problem)
    readable = [c for c in cases if not isinstance(c, str)]
    if not readable:
        raise DatasetError(f"{dataset.root}: no training case could be read to plan the dataset "
                           f"({problems[0] if problems else 'no cases'})")
    fingerprint = summarise(readable, dataset.spec, files_sha256)
    if cached is not None:
        write_text(cached, json.dumps(fingerprint.to_json(), indent=1))
    return fingerprint
