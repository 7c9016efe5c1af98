"""A procedural multi-sequence brain tumour MRI phantom (BRATS-like): T1, T1c, T2 and FLAIR.

It imitates the data of seed 001 (sections 2.3.1 and 3.4.1): co-registered, skull-stripped T1, post-
contrast T1 (T1c), T2 and FLAIR volumes (zero outside the brain) with a glioma annotated as necrotic /
non-enhancing core (label 1), oedema (label 2) and contrast-enhancing tumour (label 3). Scans come "from
different MR systems and protocols": every sequence of every case has its own global scale (a factor ~4
apart), bias field and Rician noise, so per-patient, per-sequence normalisation matters (the seed divides
by the median of non-zero voxels: ``normalize_intensity(image, "median")``).

Unlike BRATS, about one case in seven (:func:`is_tumour_free`; at least one when ``cases >= 4``) has no
tumour, so image-level labels carry information; ``dataset.json`` states per case the weak labels
``{"tumour", "necrosis", "oedema", "enhancing"}`` (seed 001, chapter 3, mixed supervision; they are read
from the written label map, so they agree with it at any spacing), the grade, the compartment volumes and
the sequences missing in that case. With ``missing_sequences=P`` each training case drops each sequence
with probability P (never all four; seed 001 section 2.3.3 trains with missing sequences and tests on
complete cases, so the test set stays complete): a dropped sequence is an all-zero volume and is listed
under ``missing_channels``.

What each sequence shows (signal relative to white matter, :data:`CONTRAST`)::

    tissue          T1     T1c    T2     FLAIR
    white matter    1      1      1      1
    grey matter     0.72   0.75   1.4    1.25
    CSF/ventricles  0.28   0.30   3.2    0.30     bright on T2, dark on FLAIR
    oedema          0.68   0.70   2.2    2.0      bright on T2 and FLAIR
    enhancing rim   0.70   1.45-2.1  1.7 1.6      bright on T1c only
    necrosis        0.36   0.38   2.8    1.0      dark on T1/T1c, bright on T2
    non-enhancing   0.60   0.62   2.3    1.8      (low-grade core)

Layout written (the clinseg format, nnU-Net v2 compatible)::

    OUT/dataset.json
    OUT/imagesTr/brats_000_0000.nii.gz … _0003.nii.gz    T1, T1c, T2, FLAIR; int16
    OUT/labelsTr/brats_000.nii.gz                        uint8 label map 0..3
    OUT/imagesTs/brats_test_000_000{0..3}.nii.gz, OUT/labelsTs/brats_test_000.nii.gz
    OUT/preview.png

Geometry: identity direction (LPS), isotropic voxels of ``spacing_mm`` (2 mm: 80 x 96 x 80 voxels X x Y x Z
on a 160 x 192 x 160 mm field of view centred on the brain).

Examples
--------
>>> from clinseg.phantoms import generate_phantom
>>> generate_phantom("brain-tumour", "data/BrainTumour", cases=16, test_cases=6, missing_sequences=0.2)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from clinseg.errors import ConfigError
from clinseg.io import Geometry
from clinseg.phantoms._acquisition import acquire
from clinseg.phantoms._brain_anatomy import (
    LABELS,
    SEQUENCES,
    BrainModel,
    region_mask,
    render_brain,
    sample_brain,
)
from clinseg.phantoms._shapes import PoseGrid, SymmetricWarp, rotation_matrix
from clinseg.phantoms._writer import check_options, write_phantom
from clinseg.phantoms.abdomen_ct import _noise_field
from clinseg.phantoms.registry import register_phantom
from clinseg.viz.overlay import save_figure

logger = logging.getLogger(__name__)

#: Field of view in mm ``(x, y, z)``, centred on the world origin (the brain's centre).
FOV_MM = (160.0, 192.0, 160.0)
#: Typical white-matter signal of each sequence before the per-case scale (arbitrary scanner units).
NOMINAL_SCALE = {"T1": 500.0, "T1c": 600.0, "T2": 350.0, "FLAIR": 250.0}
#: Cases ``index % 7 == offset`` are tumour-free, ``offset`` in 1..3 drawn from the seed and split.
TUMOUR_FREE_PERIOD = 7
VERSION = 1
_SPLITS = {"train": 0, "test": 1}
_STREAMS = ("anatomy", "tumour", "pose", "texture", "scanner", "missing")
_COLOURS = {"necrosis": "#3b6fd8", "oedema": "#f2c12e", "enhancing": "#e0302b"}


@dataclass(frozen=True)
class BrainCase:
    """One simulated case.

    Attributes
    ----------
    case_id : ``brats_000`` … (train) or ``brats_test_000`` … (test).
    image : ``(4, Z, Y, X)`` int16 channels T1, T1c, T2, FLAIR (a missing sequence is all zero).
    geometry : the grid (spacing ``(x, y, z)`` mm).
    label_map : ``(Z, Y, X)`` uint8 labels (:data:`LABELS`), all zero for a tumour-free case.
    masks : empty (the labels are a label map, not per-structure masks).
    brain : ``(Z, Y, X)`` bool skull-stripping mask.
    regions : healthy reference regions for checks and studies, ``(Z, Y, X)`` bool: ``white_matter``
        (outside the ventricles and the lesion; includes the deep grey nuclei) and ``ventricles``.
    missing : names of the dropped sequences.
    model : the anatomy the case was drawn from (canonical frame).
    """

    case_id: str
    image: np.ndarray
    geometry: Geometry
    label_map: np.ndarray
    masks: dict[str, np.ndarray]
    brain: np.ndarray
    regions: dict[str, np.ndarray]
    missing: tuple[str, ...]
    model: BrainModel

    @property
    def grade(self) -> str:
        """``"high"``, ``"low"`` or ``"none"`` (tumour-free)."""
        return "none" if self.model.lesion is None else self.model.lesion.grade

    def weak_labels(self) -> dict[str, bool]:
        """Image-level labels read from the label map: tumour and each compartment present or not."""
        present = {name: bool((self.label_map == value).any()) for name, value in LABELS.items()}
        return {"tumour": bool(self.label_map.any()), **present}

    def weak_slices(self) -> dict[str, list[int]]:
        """Slice-level labels (seed 001 ch. 3 trains on axial slices tagged "tumour present"): the axial
        slices (Z indices) holding tumour and each compartment; every other slice is known to lack it."""
        def slices(mask: np.ndarray) -> list[int]:
            return [int(z) for z in np.flatnonzero(mask.any(axis=(1, 2)))]

        return {"tumour": slices(self.label_map > 0),
                **{name: slices(self.label_map == value) for name, value in LABELS.items()}}


def grid_geometry(spacing_mm: float) -> Geometry:
    """The output grid for an isotropic ``spacing_mm``: FOV ~160 x 192 x 160 mm centred on the origin."""
    shape_xyz = [max(8, round(f / spacing_mm)) for f in FOV_MM]
    origin = tuple(-(n - 1) * spacing_mm / 2 for n in shape_xyz)
    return Geometry((spacing_mm,) * 3, origin, shape=(shape_xyz[2], shape_xyz[1], shape_xyz[0]))  # type: ignore[arg-type]


def case_streams(seed: int, split: str, index: int) -> dict[str, np.random.Generator]:
    """Independent random streams of one case, derived from ``(seed, split, index)`` only.

    Seeded apart from the other phantoms (spawn key 4); a case is the same whatever the number of cases,
    and the ``missing`` stream only decides which sequences are dropped, so changing
    ``missing_sequences`` leaves the images of the kept sequences unchanged.
    """
    root = np.random.SeedSequence(entropy=seed, spawn_key=(4, _SPLITS[split], index))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, root.spawn(len(_STREAMS)))}


def is_tumour_free(seed: int, split: str, index: int) -> bool:
    """Whether case ``index`` has no tumour: one case in :data:`TUMOUR_FREE_PERIOD` (~14 %).

    The first tumour-free case is index 1, 2 or 3 (drawn from ``seed`` and ``split``), so any split of at
    least 4 cases has one and case 0, the preview, always has a tumour.
    """
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(4, _SPLITS[split], 2**20)))
    offset = int(rng.integers(1, 4))
    return index % TUMOUR_FREE_PERIOD == offset


def draw_missing(rng: np.random.Generator, probability: float) -> tuple[str, ...]:
    """Sequences to drop: each with ``probability``; when all four fall, one drawn at random is kept."""
    dropped = [seq for seq in SEQUENCES if rng.random() < probability]
    if len(dropped) == len(SEQUENCES):
        dropped.pop(int(rng.integers(len(SEQUENCES))))
    return tuple(dropped)


def _pose_grid(geometry: Geometry, rng: np.random.Generator, pose_jitter: bool) -> PoseGrid:
    """Residual pose after registration to the atlas (±~3°, ±~3 mm), brain scale (±~4 %) and warp."""
    angles = np.deg2rad(np.clip(rng.normal(0.0, 3.0, 3), -7.0, 7.0))
    shift = np.clip(rng.normal(0.0, 3.0, 3), -7.0, 7.0)
    scale = float(np.clip(rng.normal(1.0, 0.04), 0.92, 1.08))
    warp = SymmetricWarp(tuple(np.clip(rng.normal(0.0, 2.0, 3), -4.0, 4.0)), tuple(rng.uniform(0, 2 * np.pi, 6)))
    if not pose_jitter:
        return PoseGrid(geometry.shape, geometry.spacing, geometry.origin, scale=scale, warp=warp)  # type: ignore[arg-type]
    return PoseGrid(geometry.shape, geometry.spacing, geometry.origin, rotation_matrix(*angles),  # type: ignore[arg-type]
                    tuple(shift), scale, warp)


def scan_sequences(images: dict[str, np.ndarray], brain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Acquire each noise-free sequence: own global scale (x0.5-2 of :data:`NOMINAL_SCALE`, then the
    receiver gain), bias field and Rician noise; skull-strip (zero outside ``brain``). Returns
    ``(4, Z, Y, X)`` int16."""
    out = np.zeros((len(SEQUENCES), *brain.shape), dtype=np.int16)
    for c, seq in enumerate(SEQUENCES):
        scale = NOMINAL_SCALE[seq] * float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        acquired = acquire(images[seq] * np.float32(scale), rng, reference=scale, noise=(0.02, 0.05),
                           bias_strength=0.1)
        out[c] = np.where(brain, np.maximum(acquired, 1), 0)  # brain voxels stay non-zero, as BRATS
    return out


def simulate_case(seed: int, split: str, index: int, spacing_mm: float = 2.0, missing_sequences: float = 0.0,
                  pose_jitter: bool = True) -> BrainCase:
    """Simulate one case in memory (no files).

    Parameters
    ----------
    seed, split, index : identify the case (``split`` is ``"train"`` or ``"test"``).
    spacing_mm : isotropic voxel size in mm.
    missing_sequences : probability that a training case lacks each sequence (test cases are complete).
    pose_jitter : residual rotation and shift of the brain (off: mid-sagittal plane at x = 0).
    """
    streams = case_streams(seed, split, index)
    geometry = grid_geometry(spacing_mm)
    model = sample_brain(streams["anatomy"], streams["tumour"], tumour=not is_tumour_free(seed, split, index))
    grid = _pose_grid(geometry, streams["pose"], pose_jitter)
    texture = _noise_field(geometry.shape, 6.0 / spacing_mm, streams["texture"])
    images, brain, labels = render_brain(model, grid, texture)
    image = scan_sequences(images, brain, streams["scanner"])
    missing = draw_missing(streams["missing"], missing_sequences if split == "train" else 0.0)
    for seq in missing:
        image[SEQUENCES.index(seq)] = 0
    case_id = f"brats_{index:03d}" if split == "train" else f"brats_test_{index:03d}"
    ventricles = region_mask(grid, model.ventricles) & (labels == 0)
    white = region_mask(grid, model.white_matter) & ~ventricles & (labels == 0)
    regions = {"white_matter": white, "ventricles": ventricles}
    return BrainCase(case_id, image, geometry, labels, {}, brain, regions, missing, model)


def case_info(case: BrainCase) -> dict[str, Any]:
    """The case's entry under ``cases`` in ``dataset.json``."""
    voxel_ml = case.geometry.voxel_volume_ml
    return {
        "weak_labels": case.weak_labels(),
        "weak_slices": case.weak_slices(),
        "missing_channels": list(case.missing),
        "grade": case.grade,
        "volume_ml": {name: round(float((case.label_map == v).sum()) * voxel_ml, 2) for name, v in LABELS.items()},
    }


@register_phantom("brain-tumour")
def generate_brain_tumour(
    out_dir: Path,
    *,
    cases: int = 16,
    test_cases: int = 6,
    seed: int = 0,
    spacing_mm: float = 2.0,
    missing_sequences: float = 0.0,
    pose_jitter: bool = True,
    preview: bool = True,
) -> Path:
    """Write the multi-sequence brain tumour phantom to ``out_dir`` and return it.

    The folder is built beside ``out_dir`` and renamed into place at the end; an existing ``out_dir`` is
    replaced only if it is empty or a generated phantom.

    Parameters
    ----------
    out_dir : dataset folder to write.
    cases, test_cases : number of training and test cases (ids ``brats_000`` …, ``brats_test_000`` …).
    seed : the dataset is identical for identical arguments.
    spacing_mm : isotropic voxel size in mm, 1.0-8.0; the field of view stays ~160 x 192 x 160 mm.
    missing_sequences : probability (0-1) that a training case lacks each sequence; at most 3 of 4 go.
    pose_jitter : residual rotation and shift of the brain per case.
    preview : write ``preview.png`` (the four sequences of the first training and test case, axial slice
        through the tumour, and the labels).

    Raises
    ------
    ConfigError
        For invalid options or an ``out_dir`` that is not a phantom folder.
    """
    check_options("brain-tumour", cases, test_cases, seed, spacing_mm)
    if not 0.0 <= missing_sequences <= 1.0:
        raise ConfigError(f"brain-tumour: missing_sequences must be a probability in [0, 1], got {missing_sequences}")

    def spec(info: dict[str, dict]) -> dict:
        return {
            "name": "BrainTumour",
            "description": (
                "Procedural skull-stripped multi-sequence brain MRI (clinseg brain-tumour phantom): T1, T1c, T2 "
                "and FLAIR with a glioma-like lesion (necrotic/non-enhancing core, oedema, enhancing rim) as in "
                "BRATS, some tumour-free cases, image-level weak labels and optionally missing sequences."
            ),
            "reference": "imitates seed 001, sections 2.3.1 and 3.4.1 (BRATS 2017/2018, 4 sequences, labels 1-3)",
            "intensity": "arbitrary MR units (int16), own scale per case and sequence; normalise with 'median'",
            "channel_names": {str(i): seq for i, seq in enumerate(SEQUENCES)},
            "labels": dict(LABELS),
            "label_mode": "multiclass",
            "file_ending": ".nii.gz",
            "numTraining": int(cases),
            "numTest": int(test_cases),
            "cases": info,
            "phantom": {"name": "brain-tumour", "seed": int(seed), "spacing_mm": float(spacing_mm),
                        "version": VERSION, "missing_sequences": float(missing_sequences),
                        "pose_jitter": bool(pose_jitter), "fov_mm": list(FOV_MM),
                        "tumour_free_cases": sorted(c for c, v in info.items() if not v["weak_labels"]["tumour"])},
        }

    return write_phantom(
        Path(out_dir), "brain-tumour", cases, test_cases,
        simulate=lambda split, index: simulate_case(seed, split, index, spacing_mm, missing_sequences, pose_jitter),
        case_info=case_info, spec=spec, preview=_write_preview if preview else None)  # type: ignore[arg-type]


def _write_preview(path: Path, cases: list[BrainCase]) -> None:
    """One row per shown case: T1, T1c, T2, FLAIR on the axial slice through the tumour, then the labels
    filled over FLAIR (or another sequence when FLAIR is missing); anterior up, patient left on the right."""
    columns = [*SEQUENCES, "labels"]
    fig = Figure(figsize=(2.4 * len(columns), 2.9 * len(cases) + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    rows = fig.subfigures(len(cases), 1, squeeze=False)[:, 0]  # one per case, so a title sits on its row
    label_cmap = ListedColormap([(0, 0, 0, 0)] + [_COLOURS[n] for n in LABELS])
    for sub, case in zip(rows, cases):
        row = sub.subplots(1, len(columns))
        tumour = np.argwhere(case.label_map > 0)
        z = round(float(tumour[:, 0].mean())) if len(tumour) else case.image.shape[1] // 2
        base = next(s for s in ("FLAIR", "T2", "T1c", "T1") if s not in case.missing)  # under the labels
        for ax, name in zip(row, columns):
            channel = case.image[SEQUENCES.index(name if name != "labels" else base)][z].astype(np.float32)
            inside = channel[channel > 0]
            hi = float(np.percentile(inside, 99.5)) if inside.size else 1.0
            ax.imshow(channel, cmap="gray", vmin=0.0, vmax=hi, interpolation="nearest")
            if name == "labels":
                ax.imshow(np.ma.masked_equal(case.label_map[z], 0), cmap=label_cmap, vmin=0, vmax=3, alpha=0.55,
                          interpolation="nearest")
            elif name in case.missing:
                ax.text(0.5, 0.5, "missing", color="white", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(name if name != "labels" else f"labels on {base}", fontsize=9)
            ax.set_axis_off()
        kind = f"{case.grade} grade" if case.model.lesion is not None else "no tumour"
        sub.suptitle(f"{case.case_id} ({kind}), axial slice z = {z}", fontsize=10, fontweight="bold")
    fig.legend(handles=[Patch(color=c, label=f"{LABELS[n]} {n}") for n, c in _COLOURS.items()], loc="outside lower center",
               ncol=3, fontsize=8, frameon=False)
    save_figure(fig, path)
