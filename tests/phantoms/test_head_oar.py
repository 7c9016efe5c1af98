"""The head-OAR phantom: layout, determinism, delineation statistics, anatomy, symmetry, errors, preview."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clinseg.data import load_dataset, validate_dataset
from clinseg.errors import ConfigError
from clinseg.io import read_image
from clinseg.phantoms import generate_phantom
from clinseg.phantoms._delineation import (
    DelineationRule,
    choose_delineated,
    propagation_error,
    shift_mask,
)
from clinseg.phantoms._head_anatomy import PAIRS, STRUCTURES
from clinseg.phantoms.head_oar import PhantomCase, grid_geometry, simulate_case


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 training + 2 test cases at 4 mm (48 x 48 x 40 voxels): cheap but real files."""
    return generate_phantom("head-oar", tmp_path_factory.mktemp("p") / "ds", cases=12, test_cases=2, spacing_mm=4.0)


@pytest.fixture(scope="module")
def upright() -> list[PhantomCase]:
    """Two clean test cases at the default 2 mm without pose jitter (mid-sagittal plane = grid centre)."""
    return [simulate_case(0, "test", i, spacing_mm=2.0, pose_jitter=False) for i in range(2)]


def test_layout_and_dataset_json(small: Path) -> None:
    spec = json.loads((small / "dataset.json").read_text())
    assert spec["name"] == "HeadOAR"
    assert spec["channel_names"] == {"0": "T1"}
    assert spec["labels"] == {n: i + 1 for i, n in enumerate(STRUCTURES)}
    assert list(spec["labels"])[:5] == ["Brainstem", "Pituitary", "OpticChiasm", "OpticNrv_L", "OpticNrv_R"]
    assert spec["label_mode"] == "multilabel" and spec["file_ending"] == ".nii.gz"
    assert spec["numTraining"] == 12 and spec["numTest"] == 2
    assert spec["phantom"]["name"] == "head-oar"
    assert (spec["phantom"]["seed"], spec["phantom"]["spacing_mm"], spec["phantom"]["version"]) == (0, 4.0, 1)
    train_ids = [f"head_{i:03d}" for i in range(12)]
    assert list(spec["cases"]) == train_ids + ["head_test_000", "head_test_001"]
    for case, info in spec["cases"].items():
        assert info["weak_labels"] == {"tumour": True}
        split = "Ts" if "test" in case else "Tr"
        assert (small / f"images{split}" / f"{case}_0000.nii.gz").is_file()
        files = sorted(p.name for p in (small / f"structures{split}" / case).iterdir())
        assert files == sorted(f"{n}.nii.gz" for n in info["annotated"])  # missing file = not delineated
    ds = load_dataset(small)
    assert [r.case_id for r in ds.train] == train_ids
    assert all(r.complete for r in ds.test)
    assert validate_dataset(small, progress=False).ok
    image = read_image(small / "imagesTr" / "head_000_0000.nii.gz")
    assert image.geometry.spacing == (4.0, 4.0, 4.0) and image.array.shape == (40, 48, 48)
    assert image.array.dtype == np.int16
    mask = read_image(small / "structuresTs" / "head_test_000" / "Eye_L.nii.gz")
    assert mask.array.dtype == np.uint8 and set(np.unique(mask.array)) == {0, 1}
    assert not image.geometry.mismatch(mask.geometry)


def test_grid_scales_with_spacing() -> None:
    assert grid_geometry(2.0).shape == (80, 96, 96)
    assert grid_geometry(1.0).shape == (160, 192, 192)
    geometry = grid_geometry(2.0)
    # symmetric about x = 0: the mid-sagittal plane of an upright head falls between the two centre columns
    assert geometry.origin[0] == pytest.approx(-95.0)


def test_deterministic_for_a_seed(small: Path, tmp_path: Path) -> None:
    kw = {"cases": 2, "test_cases": 1, "spacing_mm": 4.0}
    a = generate_phantom("head-oar", tmp_path / "a", **kw)
    b = generate_phantom("head-oar", tmp_path / "b", **kw)
    c = generate_phantom("head-oar", tmp_path / "c", seed=1, **kw)
    assert (a / "dataset.json").read_text() == (b / "dataset.json").read_text()
    for name in ("imagesTr/head_001_0000.nii.gz", "imagesTs/head_test_000_0000.nii.gz", "structuresTs/head_test_000/Lens_R.nii.gz"):
        assert np.array_equal(read_image(a / name).array, read_image(b / name).array)
        # a case does not depend on how many cases are generated
        assert np.array_equal(read_image(a / name).array, read_image(small / name).array)
    assert not np.array_equal(read_image(a / "imagesTr/head_001_0000.nii.gz").array,
                              read_image(c / "imagesTr/head_001_0000.nii.gz").array)


def test_delineation_statistics_imitate_clinical_practice(small: Path) -> None:
    cases = json.loads((small / "dataset.json").read_text())["cases"]
    counts = np.array([len(v["annotated"]) for k, v in cases.items() if "test" not in k])
    assert 8.5 <= counts.mean() <= 10.5  # seed 000, section 2: 9.4 +- 1.8 of 11
    assert 0.15 <= (counts == 11).mean() <= 0.6  # 15 of 52 complete
    assert counts.min() >= 3
    test_counts = [len(v["annotated"]) for k, v in cases.items() if "test" in k]
    assert test_counts == [11, 11]
    together = [(a in v["annotated"]) == (b in v["annotated"]) for k, v in cases.items() for a, b in PAIRS]
    assert np.mean(together) >= 0.8  # contralateral twins usually both or neither


def test_delineation_rule_prefers_near_structures() -> None:
    rule = DelineationRule()
    assert rule.probability(0.0, "Brainstem") > 0.95 > 0.2 > rule.probability(200.0, "Brainstem")
    gaps = {"Brainstem": 0.0, "Eye_L": 300.0, "Eye_R": 300.0}
    rng = np.random.default_rng(0)
    chosen = [choose_delineated(gaps, [("Eye_L", "Eye_R")], rng, rule) for _ in range(200)]
    assert np.mean(["Brainstem" in c for c in chosen]) > 0.9
    assert np.mean(["Eye_L" in c for c in chosen]) < 0.05


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("Eye_L", 5.0, 9.0), ("Eye_R", 5.0, 9.0), ("Lens_L", 0.08, 0.35), ("Brainstem", 15.0, 35.0),
     ("OpticChiasm", 0.1, 0.5), ("Pituitary", 0.25, 0.8), ("OpticNrv_L", 0.3, 1.2), ("Cochlea_R", 0.05, 0.3)],
)
def test_structure_volumes_are_plausible(upright: list[PhantomCase], name: str, low: float, high: float) -> None:
    for case in upright:
        ml = case.geometry.voxel_volume_ml
        assert low <= case.clean[name].sum() * ml <= high, (case.case_id, name, case.clean[name].sum() * ml)


def test_anatomy_lens_in_eye_left_is_patient_left_and_t1_contrast(upright: list[PhantomCase]) -> None:
    for case in upright:
        m, image = case.clean, case.image.astype(float)
        for side in "LR":
            assert np.all(m[f"Eye_{side}"][m[f"Lens_{side}"]])  # lens inside its eye
            eye, lens = np.argwhere(m[f"Eye_{side}"]).mean(0), np.argwhere(m[f"Lens_{side}"]).mean(0)
            assert lens[1] < eye[1]  # lens in front (anterior = smaller Y index in LPS)
        # LPS: +x is the patient's left, so the left eye and cochlea lie at larger X indices
        assert np.argwhere(m["Eye_L"])[:, 2].mean() > np.argwhere(m["Eye_R"])[:, 2].mean()
        assert np.argwhere(m["Cochlea_L"])[:, 2].mean() > np.argwhere(m["Cochlea_R"])[:, 2].mean()
        vitreous = image[m["Eye_L"] & ~m["Lens_L"]].mean()
        assert vitreous < image[m["Lens_L"]].mean() < image[m["Brainstem"]].mean()  # dark vitreous on T1
        assert (m["Brainstem"] & (m["Eye_L"] | m["Eye_R"])).sum() == 0


def test_pairs_are_mirror_images(upright: list[PhantomCase]) -> None:
    for case in upright:
        m = case.clean
        for left, right in PAIRS:
            mirrored = m[right][:, :, ::-1]  # flip X about the grid centre = the head's mid-sagittal plane
            floor = 0.9 if left in ("Eye_L", "OpticNrv_L") else 0.6  # lens/cochlea: a few voxels at 2 mm
            assert dice(m[left], mirrored) > floor, (case.case_id, left, dice(m[left], mirrored))


def test_training_masks_carry_propagation_errors_test_masks_are_clean(small: Path) -> None:
    diffs, dices = 0, []
    for i in range(3):
        case = simulate_case(0, "train", i, spacing_mm=4.0)
        for name, mask in case.masks.items():
            diffs += not np.array_equal(mask, case.clean[name])
            dices.append(dice(mask, case.clean[name]))
        exact = simulate_case(0, "train", i, spacing_mm=4.0, propagation_errors=False)
        assert list(exact.masks) == list(case.masks)  # same delineation choice, only the errors differ
        assert all(np.array_equal(exact.masks[n], exact.clean[n]) for n in exact.masks)
    assert diffs >= 0.6 * len(dices) and np.mean(dices) < 0.9
    written = read_image(small / "structuresTr" / "head_000" / "Brainstem.nii.gz").array.astype(bool)
    assert np.array_equal(written, simulate_case(0, "train", 0, spacing_mm=4.0).masks["Brainstem"])
    clean = simulate_case(0, "test", 1, spacing_mm=4.0).clean
    for name in STRUCTURES:
        on_disk = read_image(small / "structuresTs" / "head_test_001" / f"{name}.nii.gz").array.astype(bool)
        assert np.array_equal(on_disk, clean[name])


def test_propagation_error_is_a_small_shift_or_resize() -> None:
    mask = np.zeros((20, 20, 20), bool)
    mask[5:15, 6:14, 7:13] = True
    assert np.array_equal(shift_mask(mask, (1, 0, -1))[6:16, 6:14, 6:12], mask[5:15, 6:14, 7:13])
    rng = np.random.default_rng(1)
    for _ in range(20):
        out = propagation_error(mask, rng, (1, 0, 0))
        assert out.any() and 0.25 < out.sum() / mask.sum() < 2.5 and dice(out, mask) > 0.4
    assert mask.sum() == 480  # input untouched


def test_preview_png(small: Path) -> None:
    import matplotlib.image as mpimg

    path = small / "preview.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 400 and pixels.shape[1] > 600 and pixels[..., :3].std() > 0.1


def test_invalid_options_and_foreign_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spacing_mm"):
        generate_phantom("head-oar", tmp_path / "x", spacing_mm=0.5)
    with pytest.raises(ConfigError, match="nothing to generate"):
        generate_phantom("head-oar", tmp_path / "x", cases=0, test_cases=0)
    with pytest.raises(ConfigError, match="no option"):
        generate_phantom("head-oar", tmp_path / "x", colour="red")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="refusing"):
        generate_phantom("head-oar", foreign, cases=1, test_cases=0, spacing_mm=8.0)
    assert (foreign / "notes.txt").read_text() == "keep me"
    again = generate_phantom("head-oar", tmp_path / "p", cases=2, test_cases=0, spacing_mm=8.0)
    assert generate_phantom("head-oar", again, cases=1, test_cases=0, spacing_mm=8.0, preview=False) == again
    assert sorted(p.name for p in (again / "imagesTr").iterdir()) == ["head_000_0000.nii.gz"]  # no stale case
    assert not (again / "preview.png").exists()
