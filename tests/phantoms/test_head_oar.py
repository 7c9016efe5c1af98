"""The head-OAR phantom: determinism, layout, delineation statistics, anatomy sizes, symmetry, errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from clinseg.data import load_dataset, validate_dataset
from clinseg.errors import ConfigError
from clinseg.io import read_image
from clinseg.phantoms import generate_phantom, list_phantoms
from clinseg.phantoms._head_anatomy import STRUCTURES, render, sample_anatomy
from clinseg.phantoms.head_oar import choose_delineated, head_frame_grid


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_phantom("head-oar", tmp_path_factory.mktemp("p") / "ds", cases=3, test_cases=1, spacing_mm=4.0)


def test_layout_and_dataset_json(small: Path) -> None:
    spec = json.loads((small / "dataset.json").read_text())
    assert spec["label_mode"] == "multilabel" and list(spec["labels"]) == list(STRUCTURES)
    assert spec["numTraining"] == 3 and spec["numTest"] == 1
    ds = load_dataset(small)
    assert [r.case_id for r in ds.train] == ["head_000", "head_001", "head_002"]
    assert [r.case_id for r in ds.test] == ["head_test_000"]
    for record in ds.train:
        assert sorted(record.annotated) == sorted(spec["cases"][record.case_id]["annotated"])
    assert ds.test[0].complete
    assert validate_dataset(small, progress=False).ok
    assert (small / "preview.png").stat().st_size > 20_000
    assert read_image(ds.train[0].images[0]).geometry.spacing == (4.0, 4.0, 4.0)


def test_deterministic_for_a_seed(small: Path, tmp_path: Path) -> None:
    again = generate_phantom("head-oar", tmp_path / "again", cases=3, test_cases=1, spacing_mm=4.0)
    other = generate_phantom("head-oar", tmp_path / "other", cases=3, test_cases=1, spacing_mm=4.0, seed=1)
    name = "imagesTr/head_001_0000.nii.gz"
    assert np.array_equal(read_image(small / name).array, read_image(again / name).array)
    assert (small / "dataset.json").read_text() == (again / "dataset.json").read_text()
    assert not np.array_equal(read_image(small / name).array, read_image(other / name).array)


def test_delineation_statistics_match_clinical_practice() -> None:
    counts = [len(choose_delineated(sample_anatomy(np.random.default_rng(i)), np.random.default_rng(1000 + i)))
              for i in range(300)]
    assert 9.0 <= np.mean(counts) <= 10.0  # seed 000: 9.4 of 11 on average
    assert 0.25 <= np.mean(np.array(counts) == 11) <= 0.42  # seed 000: 15 of 52 complete


def _masks(seed: int, spacing: float = 2.0, pose: bool = False) -> tuple[dict[str, np.ndarray], float]:
    rng = np.random.default_rng(seed)
    anatomy = sample_anatomy(rng)
    shape = tuple(int(round(f / spacing)) for f in (160.0, 192.0, 192.0))
    x, y, z, _ = head_frame_grid(shape, spacing, rng, pose)
    return render(anatomy, x, y, z, rng)[1], spacing**3 / 1000


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("Eye_L", 5.0, 9.5), ("Brainstem", 12.0, 30.0), ("Lens_L", 0.1, 0.35), ("OpticChiasm", 0.15, 0.6),
     ("Pituitary", 0.3, 0.8), ("Cochlea_R", 0.08, 0.35), ("OpticNrv_L", 0.3, 1.0)],
)
def test_structure_volumes_are_plausible(name: str, low: float, high: float) -> None:
    masks, ml = _masks(3)
    assert low <= masks[name].sum() * ml <= high


def test_lens_inside_eye_and_pairs_mirror() -> None:
    masks, _ = _masks(5)
    for side in ("L", "R"):
        assert np.all(masks[f"Eye_{side}"][masks[f"Lens_{side}"]])
    for left in ("Eye_L", "Lens_L", "Cochlea_L", "OpticNrv_L"):
        mirrored = masks[left.replace("_L", "_R")][:, :, ::-1]  # X axis, FOV centred on the mid-sagittal plane
        a, b = masks[left], mirrored
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.9
    # patient left is +x in LPS: Eye_L lies at larger X indices
    assert np.argwhere(masks["Eye_L"])[:, 2].mean() > np.argwhere(masks["Eye_R"])[:, 2].mean()


def test_training_masks_carry_propagation_errors_test_masks_are_clean(tmp_path: Path) -> None:
    from clinseg.phantoms.head_oar import propagation_error

    masks, _ = _masks(2)
    rng = np.random.default_rng(0)
    changed = [not np.array_equal(propagation_error(masks["Brainstem"], rng), masks["Brainstem"]) for _ in range(10)]
    assert sum(changed) >= 7


def test_unknown_phantom() -> None:
    assert "head-oar" in list_phantoms()
    with pytest.raises(ConfigError, match="unknown phantom 'nope'; known: head-oar"):
        generate_phantom("nope", "x")
