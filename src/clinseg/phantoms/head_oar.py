"""The embedded default dataset: a head-and-neck OAR phantom imitating brain radiotherapy planning on T1 MRI.

It reproduces the data situation of seed 000 (Sec. 2): one T1-weighted scan per patient, 11 OARs, each
delineated only when it lies near the tumour (on average ~9.5 of 11 per case, about a third of the cases
complete), training delineations carrying CT-to-MR propagation errors (shifts, over/under-segmentation),
and a clean, completely delineated test set.

Case geometry: identity direction, 2 mm isotropic voxels by default on a ~192 x 192 x 160 mm field of view
(96 x 96 x 80 voxels, X x Y x Z); ``spacing_mm`` down to 1.0 keeps the field of view.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from clinseg.io.atomic import write_text
from clinseg.io.image import Geometry, write_image
from clinseg.phantoms._head_anatomy import STRUCTURES, HeadAnatomy, render, sample_anatomy, smooth_noise
from clinseg.phantoms.registry import register_phantom
from clinseg.progress import track
from clinseg.viz.overlay import overlay_figure, save_figure

FOV_MM = (192.0, 192.0, 160.0)  # x, y, z
#: Probability of k structures left undelineated in a training case; mean 1.45 -> ~9.5 of 11 delineated,
#: P(complete) = 0.33 (seed 000: 9.4 +- 1.8 of 11, 15 of 52 complete).
MISSING_COUNT_P = {0: 0.33, 1: 0.22, 2: 0.25, 3: 0.10, 4: 0.07, 5: 0.03}
_PAIRS = {"OpticNrv_L": "OpticNrv_R", "Eye_L": "Eye_R", "Cochlea_L": "Cochlea_R", "Lens_L": "Lens_R"}
_PAIRS.update({v: k for k, v in list(_PAIRS.items())})


def case_rng(seed: int, index: int, split: str) -> np.random.Generator:
    """The generator of one case, independent of how many cases are generated."""
    return np.random.default_rng([seed, index, 0 if split == "train" else 1])


def head_frame_grid(shape_zyx: tuple[int, int, int], spacing: float, rng: np.random.Generator,
                    pose_jitter: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, Geometry]:
    """Head-frame coordinates (mm) of every voxel, for a random pose, and the image geometry.

    World (LPS) coordinates are centred on the field of view; the head frame is the world frame rotated by
    a few degrees, shifted by a few mm and scaled by a per-patient factor.
    """
    nz, ny, nx = shape_zyx
    origin = tuple(-(n - 1) * spacing / 2 for n in (nx, ny, nz))
    geometry = Geometry((spacing,) * 3, origin, shape=shape_zyx)  # type: ignore[arg-type]
    if pose_jitter:
        rot = Rotation.from_euler("xyz", rng.uniform(-4, 4, 3), degrees=True).as_matrix().astype(np.float32)
        shift = rng.uniform(-6, 6, 3).astype(np.float32)
        scale = float(rng.uniform(0.92, 1.08))
    else:
        rot, shift, scale = np.eye(3, dtype=np.float32), np.zeros(3, np.float32), 1.0
    wz, wy, wx = np.meshgrid(*(origin[2 - i] + spacing * np.arange(n, dtype=np.float32)
                               for i, n in enumerate(shape_zyx)), indexing="ij")
    p = np.stack([wx - shift[0], wy - shift[1], wz - shift[2]])  # (3, Z, Y, X)
    head = np.einsum("ji,j...->i...", rot, p) / scale  # R^T (p - t) / s
    return head[0], head[1], head[2], geometry


def acquire(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scanner effects: smooth multiplicative bias field, global scaling and Rician noise; int16 output."""
    bias = np.exp(0.12 * smooth_noise(image.shape, rng, 3))
    signal = image * bias * rng.uniform(0.85, 1.15)
    sigma = rng.uniform(0.015, 0.035)
    noisy = np.hypot(signal + rng.normal(0, sigma, image.shape), rng.normal(0, sigma, image.shape))
    return np.round(noisy * 1000).astype(np.int16)


def choose_delineated(anatomy: HeadAnatomy, rng: np.random.Generator) -> list[str]:
    """Clinical practice: drop the structures farthest from the tumour (bilateral pairs usually together)."""
    ks, ps = zip(*MISSING_COUNT_P.items())
    missing_count = int(rng.choice(ks, p=ps))
    centre = np.array(anatomy.tumour.centre)
    shapes = anatomy.structures()
    distance = {n: float(np.linalg.norm(np.array(getattr(s, "centre", getattr(s, "end", (0, 0, 0)))) - centre))
                for n, s in shapes.items()}
    order = sorted(distance, key=distance.__getitem__, reverse=True)
    missing: list[str] = []
    for name in order:
        if len(missing) >= missing_count:
            break
        if name in missing:
            continue
        missing.append(name)
        partner = _PAIRS.get(name)
        if partner and partner not in missing and len(missing) < missing_count and rng.random() < 0.85:
            missing.append(partner)
    return [s for s in STRUCTURES if s not in missing]


def propagation_error(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Imitate CT->MR propagated delineations: a shift of up to one voxel per axis, then maybe a dilation or
    an erosion by one voxel (erosion skipped when it would remove more than half of a tiny structure)."""
    out = np.roll(mask, tuple(int(v) for v in rng.integers(-1, 2, 3)), axis=(0, 1, 2))
    u = rng.random()
    if u < 0.3:
        out = ndimage.binary_dilation(out)
    elif u < 0.6:
        eroded = ndimage.binary_erosion(out)
        if eroded.sum() >= 0.5 * out.sum():
            out = eroded
    return out if out.any() else mask


def _case(out: Path, split: str, case: str, index: int, seed: int, spacing: float, pose_jitter: bool,
          folders: tuple[str, str]) -> tuple[list[str], np.ndarray, dict[str, np.ndarray], Geometry]:
    rng = case_rng(seed, index, split)
    anatomy = sample_anatomy(rng)
    shape = tuple(int(round(f / spacing)) for f in FOV_MM[::-1])
    x, y, z, geometry = head_frame_grid(shape, spacing, rng, pose_jitter)  # type: ignore[arg-type]
    clean, masks = render(anatomy, x, y, z, rng)
    image = acquire(clean, rng)
    write_image(image, geometry, out / folders[0] / f"{case}_0000.nii.gz")
    delineated = choose_delineated(anatomy, rng) if split == "train" else list(STRUCTURES)
    written = {}
    for name in delineated:
        mask = masks[name]
        if not mask.any():
            continue
        if split == "train":
            mask = propagation_error(mask, rng)
        write_image(mask.astype(np.uint8), geometry, out / folders[1] / case / f"{name}.nii.gz")
        written[name] = mask
    return list(written), image, written, geometry


@register_phantom("head-oar")
def generate_head_oar(
    out_dir: Path, *, cases: int = 16, test_cases: int = 6, seed: int = 0, spacing_mm: float = 2.0,
    pose_jitter: bool = True,
) -> Path:
    """Write the head-OAR phantom dataset to ``out_dir`` (replaced atomically when it exists).

    Parameters
    ----------
    cases, test_cases : number of training and test cases.
    seed : the dataset is identical for identical arguments.
    spacing_mm : isotropic voxel size (1.0-4.0 mm); the field of view stays ~192 x 192 x 160 mm.
    pose_jitter : random head pose per case (off only for tests of the anatomy itself).
    """
    if not 0.5 <= spacing_mm <= 8.0:
        raise ValueError(f"spacing_mm must be within [0.5, 8] mm, got {spacing_mm}")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        info: dict[str, dict] = {}
        previews = []
        jobs = [("train", f"head_{i:03d}", i) for i in range(cases)]
        jobs += [("test", f"head_test_{i:03d}", i) for i in range(test_cases)]
        for split, case, index in track(jobs, "generating head-oar phantom"):
            folders = ("imagesTr", "structuresTr") if split == "train" else ("imagesTs", "structuresTs")
            annotated, image, masks, geometry = _case(tmp, split, case, index, seed, spacing_mm, pose_jitter, folders)
            info[case] = {"annotated": annotated, "weak_labels": {"tumour": True}}
            if index == 0:
                previews.append((case, image, masks, geometry))
        spec = {
            "name": "HeadOAR",
            "description": "Procedural T1 head MRI with 11 OARs; training delineations partial (near the "
                           "tumour only) with propagation errors, test set clean and complete.",
            "channel_names": {"0": "T1"},
            "labels": {name: i + 1 for i, name in enumerate(STRUCTURES)},
            "label_mode": "multilabel",
            "file_ending": ".nii.gz",
            "numTraining": cases,
            "numTest": test_cases,
            "cases": info,
            "phantom": {"name": "head-oar", "seed": seed, "spacing_mm": spacing_mm, "version": 1},
        }
        write_text(tmp / "dataset.json", json.dumps(spec, indent=2))
        _write_preview(tmp / "preview.png", previews)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_preview(path: Path, previews: list) -> None:
    """One overlay figure per split (first case of each), stacked into one PNG."""
    import matplotlib.pyplot as plt

    images = []
    for case, image, masks, geometry in previews:
        fig = overlay_figure(image, masks, geometry.spacing_zyx, title=f"{case} ({len(masks)} delineated)")
        fig.canvas.draw()
        images.append(np.asarray(fig.canvas.buffer_rgba()))
        plt.close(fig)
    width = max(i.shape[1] for i in images)
    stacked = np.concatenate([np.pad(i, ((0, 0), (0, width - i.shape[1]), (0, 0)), constant_values=255)
                              for i in images])
    fig = plt.figure(figsize=(stacked.shape[1] / 100, stacked.shape[0] / 100), dpi=100)
    fig.figimage(stacked)
    save_figure(fig, path, dpi=100)
