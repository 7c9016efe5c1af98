"""The ct-bone phantom: layout, validity, HU scaling, fibula beside the tibia, distractor leg, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data import validate_dataset
from clinseg.errors import ConfigError
from clinseg.io import read_image
from clinseg.phantoms import generate_phantom, list_phantoms
from clinseg.phantoms.ct_bone import (
    LegCase,
    grid_geometry,
    hu_to_unit,
    simulate_case,
    unit_to_hu,
)

INTENSITY = "HU clipped to [-1024, 3000], scaled to [0, 1]"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 training + 1 test case at 8 mm (20 x 20 x 25 voxels): cheap but real files."""
    return generate_phantom("ct-bone", tmp_path_factory.mktemp("p") / "ds", cases=2, test_cases=1, spacing_mm=8.0)


@pytest.fixture(scope="module")
def coarse_cases() -> list[LegCase]:
    """Ten training cases at 8 mm, in memory (both sides of the body occur)."""
    return [simulate_case(0, "train", i, spacing_mm=8.0) for i in range(10)]


@pytest.fixture(scope="module")
def fine_case() -> LegCase:
    """One test case at 2.5 mm (64 x 64 x 80 voxels): thin cortex and the fibula's size resolved."""
    return simulate_case(0, "test", 0, spacing_mm=2.5)


def test_registered_with_defaults() -> None:
    assert "ct-bone" in list_phantoms()
    assert grid_geometry(1.5).shape == (133, 107, 107)  # 160 x 160 x 200 mm at the default 1.5 mm
    assert grid_geometry(8.0).shape == (25, 20, 20)
    assert grid_geometry(8.0).origin == pytest.approx((-76.0, -76.0, -96.0))  # centred on the origin


def test_hu_scaling_by_hand() -> None:
    hu = np.array([-3000.0, -1024.0, -1000.0, 0.0, 1250.0, 3000.0, 4000.0])
    unit = hu_to_unit(hu)
    assert unit.dtype == np.float32
    assert unit == pytest.approx([0.0, 0.0, 24 / 4024, 1024 / 4024, 2274 / 4024, 1.0, 1.0], abs=1e-6)
    assert unit_to_hu(unit[1:6]) == pytest.approx(hu[1:6], abs=0.05)
    assert hu[0] == -3000.0  # input untouched


def test_layout_dataset_json_and_validation(small: Path) -> None:
    spec = json.loads((small / "dataset.json").read_text())
    assert spec["name"] == "CtBone" and spec["channel_names"] == {"0": "CT"}
    assert spec["labels"] == {"Fibula": 1} and spec["label_mode"] == "multilabel"
    assert spec["intensity"] == INTENSITY and spec["phantom"]["intensity"] == INTENSITY
    assert (spec["numTraining"], spec["numTest"]) == (2, 1)
    assert spec["description"] and "002" in spec["reference"]
    phantom = spec["phantom"]
    assert phantom["name"] == "ct-bone" and phantom["spacing_mm"] == 8.0 and phantom["second_leg"] is True
    assert list(spec["cases"]) == ["leg_000", "leg_001", "leg_test_000"]
    percents = []
    for case, info in spec["cases"].items():
        split = "Ts" if "test" in case else "Tr"
        assert info["annotated"] == ["Fibula"] and info["side"] in ("left", "right")
        assert sorted(p.name for p in (small / f"structures{split}" / case).iterdir()) == ["Fibula.nii.gz"]
        mask = read_image(small / f"structures{split}" / case / "Fibula.nii.gz").array
        assert mask.dtype == np.uint8 and mask.any()
        assert 100 * mask.mean() == pytest.approx(info["foreground_percent"]["Fibula"], abs=1e-3)
        percents.append(info["foreground_percent"]["Fibula"])
    assert phantom["foreground_percent"]["Fibula"]["mean"] == pytest.approx(np.mean(percents), abs=1e-3)
    assert validate_dataset(small, progress=False).ok
    image = read_image(small / "imagesTr" / "leg_000_0000.nii.gz")
    assert image.array.dtype == np.float32 and image.array.shape == (25, 20, 20)
    assert 0.0 <= image.array.min() and image.array.max() <= 1.0
    assert image.geometry.spacing == (8.0, 8.0, 8.0)
    assert np.array_equal(image.array, simulate_case(0, "train", 0, spacing_mm=8.0).image)  # files = simulation
    assert (small / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_intensities_are_scaled_hu(fine_case: LegCase) -> None:
    image, tibia, fibula = fine_case.image, fine_case.tibia, fine_case.masks["Fibula"]
    assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    assert image[:, :3, :3].mean() == pytest.approx(24 / 4024, abs=0.002)  # air (-1000 HU) in the corners
    assert np.percentile(image[tibia], 90) > 0.5  # cortical bone, > 1000 HU
    assert image[fibula].max() > 0.4  # the thin fibula cortex, blurred
    tissue = unit_to_hu(image[(image > 0.2) & ~tibia & ~fibula])
    assert -40 < np.median(tissue) < 90  # the leg is mostly muscle (40-60 HU) and some fat


def test_fibula_is_thin_and_smaller_than_the_tibia(fine_case: LegCase) -> None:
    fibula, tibia = fine_case.masks["Fibula"], fine_case.tibia
    assert fibula.any(axis=(1, 2)).all()  # in every slice
    diameter = 2 * np.sqrt(fibula.sum(axis=(1, 2)) * 2.5**2 / np.pi)  # equivalent diameter per slice, mm
    assert 9.0 < np.median(diameter) < 17.0
    assert 2.5 * fibula.sum() < tibia.sum()


def test_fibula_lateral_and_posterior_to_the_tibia(coarse_cases: list[LegCase]) -> None:
    assert {case.side for case in coarse_cases} == {"left", "right"}
    for case in coarse_cases:
        fibula, tibia = case.masks["Fibula"], case.tibia
        assert fibula.any() and 2.5 * fibula.sum() < tibia.sum(), case.case_id
        assert not (fibula & tibia).any()
        _, dy, dx = np.argwhere(fibula).mean(axis=0) - np.argwhere(tibia).mean(axis=0)  # voxels, LPS grid
        lateral = dx if case.side == "left" else -dx  # +x is the patient's left
        assert lateral > 1.5 and dy > 0.5, (case.case_id, case.side, dx, dy)


def test_second_leg_is_an_unlabelled_distractor() -> None:
    on = simulate_case(0, "train", 2, spacing_mm=2.5)  # a case whose other tibia shows at the edge
    off = simulate_case(0, "train", 2, spacing_mm=2.5, second_leg=False)
    assert np.array_equal(on.masks["Fibula"], off.masks["Fibula"]) and np.array_equal(on.tibia, off.tibia)
    assert (on.image > 0.2).sum() > (off.image > 0.2).sum()  # more tissue (> ~-220 HU) in view

    def unlabelled_bone(case: LegCase) -> int:  # > ~790 HU outside both bone masks
        return int(((case.image > 0.45) & ~case.masks["Fibula"] & ~case.tibia).sum())

    assert unlabelled_bone(on) > unlabelled_bone(off) + 100


def test_deterministic_for_a_seed() -> None:
    a, b = simulate_case(0, "train", 1, spacing_mm=8.0), simulate_case(0, "train", 1, spacing_mm=8.0)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks["Fibula"], b.masks["Fibula"])
    c = simulate_case(1, "train", 1, spacing_mm=8.0)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.masks["Fibula"], c.masks["Fibula"])
    d = simulate_case(0, "test", 1, spacing_mm=8.0)  # train and test cases of one seed differ too
    assert not np.array_equal(a.image, d.image)


def test_invalid_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spacing_mm"):
        generate_phantom("ct-bone", tmp_path / "x", spacing_mm=0.5)
    with pytest.raises(ConfigError, match="no option"):
        generate_phantom("ct-bone", tmp_path / "x", tibia=True)


def test_cli_command(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "leg"
    result = runner.invoke(app, ["phantom", "ct-bone", str(out), "--cases", "1", "--test-cases", "1", "--spacing", "8"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    assert json.loads((out / "dataset.json").read_text())["labels"] == {"Fibula": 1}
