"""The abdomen-CT phantom: layout, validity, HU ranges, organ sizes and positions, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data import validate_dataset
from clinseg.errors import ConfigError
from clinseg.io import read_image
from clinseg.phantoms import generate_phantom, list_phantoms
from clinseg.phantoms._abdomen_anatomy import STRUCTURES
from clinseg.phantoms.abdomen_ct import AbdomenCase, grid_geometry, scan, simulate_case

#: Per-case foreground percent bands at the default 2.5 mm (measured on seed 0: see the module docstring).
BANDS = {"Spleen": (0.4, 1.3), "Pancreas": (0.15, 0.55), "Heart": (1.4, 3.6), "Kidney_L": (0.18, 0.7),
         "Kidney_R": (0.18, 0.7)}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 training + 1 test case at 8 mm (40 x 40 x 30 voxels): cheap but real files."""
    return generate_phantom("abdomen-ct", tmp_path_factory.mktemp("p") / "ds", cases=2, test_cases=1, spacing_mm=8.0)


@pytest.fixture(scope="module")
def default_case() -> AbdomenCase:
    """One test case at the default 2.5 mm (128 x 128 x 96 voxels), in memory."""
    return simulate_case(0, "test", 0)


def outside_air(image: np.ndarray) -> np.ndarray:
    """Voxels < -500 HU connected to the in-plane border of a ``(Z, Y, X)`` image (lungs and gas stay out)."""
    labels, _ = ndimage.label(image < -500)
    border = np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(), labels[:, :, 0].ravel(), labels[:, :, -1].ravel()])
    return np.isin(labels, list(set(border.tolist()) - {0}))


def test_registered_with_defaults() -> None:
    assert "abdomen-ct" in list_phantoms()
    assert grid_geometry(2.5).shape == (96, 128, 128)
    assert grid_geometry(8.0).shape == (30, 40, 40)
    assert grid_geometry(2.5).origin[0] == pytest.approx(-158.75)  # symmetric about x = 0


def test_layout_dataset_json_and_validation(small: Path) -> None:
    spec = json.loads((small / "dataset.json").read_text())
    assert spec["name"] == "AbdomenCT" and spec["channel_names"] == {"0": "CT"}
    assert spec["labels"] == {"Spleen": 1, "Pancreas": 2, "Heart": 3, "Kidney_L": 4, "Kidney_R": 5}
    assert spec["label_mode"] == "multilabel" and spec["file_ending"] == ".nii.gz"
    assert (spec["numTraining"], spec["numTest"]) == (2, 1)
    assert spec["description"] and "003" in spec["reference"]
    assert spec["phantom"]["name"] == "abdomen-ct" and spec["phantom"]["spacing_mm"] == 8.0
    assert list(spec["cases"]) == ["abdomen_000", "abdomen_001", "abdomen_test_000"]
    assert set(spec["phantom"]["foreground_percent"]) == set(STRUCTURES)
    for case, info in spec["cases"].items():
        split = "Ts" if "test" in case else "Tr"
        assert info["annotated"] == list(STRUCTURES)  # complete labels, train and test
        assert (small / f"images{split}" / f"{case}_0000.nii.gz").is_file()
        for name in STRUCTURES:
            mask = read_image(small / f"structures{split}" / case / f"{name}.nii.gz").array
            assert mask.dtype == np.uint8 and mask.any(), (case, name)
            assert 100 * mask.mean() == pytest.approx(info["foreground_percent"][name], abs=1e-3)
    assert validate_dataset(small, progress=False).ok
    image = read_image(small / "imagesTr" / "abdomen_000_0000.nii.gz")
    assert image.array.dtype == np.int16 and image.array.shape == (30, 40, 40)
    assert image.geometry.spacing == (8.0, 8.0, 8.0)
    assert (small / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hounsfield_units(default_case: AbdomenCase) -> None:
    image = default_case.image.astype(float)
    assert image.shape == (96, 128, 128) and default_case.image.dtype == np.int16
    assert image[:, :4, :4].mean() == pytest.approx(-1000, abs=15)  # air in the corners
    outside = outside_air(default_case.image)
    assert 0.25 < outside.mean() < 0.6  # a large field of view around the body
    bone = image > 300
    assert 0.003 < bone.mean() < 0.05 and np.percentile(image, 99.9) > 600  # spine and ribs
    spine = bone[:, :, 60:68].sum(axis=(0, 2))  # midline columns: bone lies posterior to the centre row
    assert spine[64:].sum() > 5 * spine[:64].sum()
    body = ~outside
    fat = (image > -150) & (image < -50) & body
    assert fat.mean() > 0.03
    for name, mask in default_case.masks.items():
        assert -20 < image[mask].mean() < 260, name  # soft tissue, not fat, air or bone


def test_organs_not_separable_by_a_hu_window(default_case: AbdomenCase) -> None:
    image = default_case.image.astype(float)
    body = ~outside_air(default_case.image)
    for name in ("Spleen", "Pancreas", "Kidney_L"):
        mask = default_case.masks[name]
        lo, hi = np.percentile(image[mask], [10, 90])
        window = (image >= lo) & (image <= hi) & body
        assert mask[window].mean() < 0.3, name  # most voxels in the organ's HU range are other tissue


def test_foreground_fractions_and_positions(default_case: AbdomenCase) -> None:
    m = default_case.masks
    assert list(m) == list(STRUCTURES)
    for name, (low, high) in BANDS.items():
        assert low <= 100 * m[name].mean() <= high, (name, 100 * m[name].mean())
    assert sum(mask.astype(int) for mask in m.values()).max() == 1  # structures do not overlap
    centre = {name: np.argwhere(mask).mean(axis=0) for name, mask in m.items()}  # (z, y, x) voxels
    assert centre["Heart"][0] == max(c[0] for c in centre.values())  # heart at the cranial end
    assert centre["Spleen"][2] > 64 and centre["Kidney_L"][2] > 64 > centre["Kidney_R"][2]  # LPS: +x = left
    assert centre["Spleen"][1] > centre["Pancreas"][1] > centre["Heart"][1]  # spleen posterior, heart anterior
    near_air = ndimage.binary_dilation(outside_air(default_case.image))
    assert not any((mask & near_air).any() for mask in m.values())  # organs inside the body


@pytest.mark.parametrize(("split", "index"), [("train", 0), ("train", 1), ("test", 0)])
def test_every_organ_in_every_case_at_coarse_spacing(small: Path, split: str, index: int) -> None:
    case = simulate_case(0, split, index, spacing_mm=8.0)
    for name, mask in case.masks.items():
        low, high = BANDS[name]
        assert 0.5 * low <= 100 * mask.mean() <= 1.5 * high, (case.case_id, name)
    folder = "imagesTr" if split == "train" else "imagesTs"
    written = read_image(small / folder / f"{case.case_id}_0000.nii.gz").array
    assert np.array_equal(written, case.image)  # files = the in-memory simulation


def test_deterministic_for_a_seed(small: Path) -> None:
    a, b = simulate_case(0, "train", 1, spacing_mm=8.0), simulate_case(0, "train", 1, spacing_mm=8.0)
    assert np.array_equal(a.image, b.image)
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in STRUCTURES)
    c = simulate_case(1, "train", 1, spacing_mm=8.0)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.masks["Spleen"], c.masks["Spleen"])
    d = simulate_case(0, "test", 1, spacing_mm=8.0)  # train and test cases of one seed differ too
    assert not np.array_equal(a.image, d.image)


def test_scan_noise_level() -> None:
    flat = np.full((40, 40, 40), 40.0, dtype=np.float32)
    out = scan(flat, np.random.default_rng(0), noise_hu=(15.0, 15.0))
    assert out.dtype == np.int16 and out.mean() == pytest.approx(40.0, abs=1.0)
    assert 12.0 < out.std() < 18.0
    assert np.all(flat == 40.0)  # input untouched


def test_invalid_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spacing_mm"):
        generate_phantom("abdomen-ct", tmp_path / "x", spacing_mm=0.5)
    with pytest.raises(ConfigError, match="nothing to generate"):
        generate_phantom("abdomen-ct", tmp_path / "x", cases=0, test_cases=0)
    with pytest.raises(ConfigError, match="no option"):
        generate_phantom("abdomen-ct", tmp_path / "x", propagation_errors=False)


def test_cli_command(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "abd"
    result = runner.invoke(app, ["phantom", "abdomen-ct", str(out), "--cases", "1", "--test-cases", "1", "--spacing", "8"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    # without --spacing the phantom's own default (2.5 mm) is used
    result = runner.invoke(app, ["phantom", "abdomen-ct", str(tmp_path / "d"), "--cases", "1", "--test-cases", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["phantom"]["spacing_mm"] == 2.5
