"""The head-OAR phantom's seed001 structure set, delineation rates and declared relations."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data import load_dataset
from clinseg.data.relations import Relations
from clinseg.errors import ConfigError
from clinseg.io import read_image
from clinseg.phantoms import generate_phantom
from clinseg.phantoms._delineation import (
    choose_by_rates,
    choose_delineated,
    expand_rates,
)
from clinseg.phantoms._head_anatomy import STRUCTURES
from clinseg.phantoms._head_structures import SEED001_RATES, STRUCTURE_SETS
from clinseg.phantoms.head_oar import PhantomCase, simulate_case

SEED001 = ("Brain", "Brainstem", "Hippocampus_L", "Hippocampus_R", "Eye_L", "Eye_R", "Lens_L", "Lens_R",
           "OpticNrv_L", "OpticNrv_R", "OpticChiasm", "Pituitary")
runner = CliRunner()


def violations(relations: Relations, masks: Mapping[str, np.ndarray]) -> list[str]:
    """Declared relations that the masks break (inside: inner not a subset of outer; outside: overlap)."""
    bad = [f"{a} not inside {b}" for a, b in relations.inside if (masks[a] & ~masks[b]).any()]
    return bad + [f"{a} overlaps {b}" for a, b in relations.outside if (masks[a] & masks[b]).any()]


def read_masks(root: Path, split: str, case_id: str) -> dict[str, np.ndarray]:
    folder = root / f"structures{split}" / case_id
    return {p.name.removesuffix(".nii.gz"): read_image(p).array > 0 for p in folder.glob("*.nii.gz")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 training + 2 test seed001 cases at 4 mm (48 x 48 x 40 voxels)."""
    return generate_phantom("head-oar", tmp_path_factory.mktemp("s1") / "ds", cases=3, test_cases=2,
                            spacing_mm=4.0, structures="seed001")


@pytest.fixture(scope="module")
def fine() -> PhantomCase:
    """One clean seed001 test case at the default 2 mm."""
    return simulate_case(0, "test", 0, spacing_mm=2.0, structures="seed001")


def test_seed001_dataset_names_labels_and_relations(tiny: Path) -> None:
    spec = json.loads((tiny / "dataset.json").read_text())
    assert spec["labels"] == {name: i + 1 for i, name in enumerate(SEED001)}
    assert spec["phantom"]["structures"] == "seed001"
    assert spec["phantom"]["delineation_rates"]["Pituitary"] == pytest.approx(29 / 44)
    relations = load_dataset(tiny).spec.relations
    assert ("Lens_L", "Eye_L") in relations.inside and ("Hippocampus_R", "Brain") in relations.inside
    assert ("Brainstem", "Brain") in relations.inside
    assert {("Eye_L", "Brain"), ("Lens_R", "Brain"), ("OpticNrv_L", "Eye_L")} <= set(relations.outside)
    assert relations.bilateral == {"Eye": ("Eye_L", "Eye_R"), "Lens": ("Lens_L", "Lens_R"),
                                   "OpticNrv": ("OpticNrv_L", "OpticNrv_R"),
                                   "Hippocampus": ("Hippocampus_L", "Hippocampus_R")}
    assert relations.merged().inside == (("Brainstem", "Brain"), ("Hippocampus", "Brain"), ("Lens", "Eye"))
    for case_id in ("head_test_000", "head_test_001"):
        assert spec["cases"][case_id]["annotated"] == list(SEED001)  # test set complete
        masks = read_masks(tiny, "Ts", case_id)
        assert sorted(masks) == sorted(SEED001)
        assert not violations(relations, masks)
        for inner in ("Brainstem", "Hippocampus_L", "Hippocampus_R"):
            assert masks[inner].any() and not (masks[inner] & ~masks["Brain"]).any()
    for case_id in ("head_000", "head_001", "head_002"):
        annotated = spec["cases"][case_id]["annotated"]
        assert sorted(p.name for p in (tiny / "structuresTr" / case_id).iterdir()) == sorted(
            f"{n}.nii.gz" for n in annotated)
        assert annotated == [n for n in SEED001 if n in annotated]  # label order


@pytest.mark.parametrize("name", ["seed000", "seed001"])
def test_declared_relations_hold_on_clean_masks(name: str) -> None:
    relations = STRUCTURE_SETS[name].relations()
    for index in range(3):
        case = simulate_case(5, "test", index, spacing_mm=4.0, structures=name)
        assert list(case.clean) == list(STRUCTURE_SETS[name].structures)
        assert not violations(relations, case.clean), (name, index)


def test_volumes_and_signals_at_2mm(fine: PhantomCase) -> None:
    ml = {name: float(mask.sum()) * 8.0 / 1000.0 for name, mask in fine.clean.items()}
    assert 2.0 <= ml["Hippocampus_L"] <= 4.5 and 2.0 <= ml["Hippocampus_R"] <= 4.5  # ~3 ml each
    assert 850.0 <= ml["Brain"] <= 1500.0
    assert not violations(STRUCTURE_SETS["seed001"].relations(), fine.clean)
    for side in "LR":
        hippocampus = np.argwhere(fine.clean[f"Hippocampus_{side}"])
        assert 30.0 <= np.ptp(hippocampus[:, 1]) * 2.0 + 2.0 <= 50.0  # ~40 mm long, mostly along y
    # Grey-matter-like: darker than the brainstem (white-matter-like signal) in the same image.
    image = fine.image.astype(float)
    assert np.median(image[fine.clean["Hippocampus_L"]]) < 0.9 * np.median(image[fine.clean["Brainstem"]])
    # Seed 001 §4.2.2.2 drops nerve voxels above 80 % of the 98th percentile near the eye (orbital fat).
    for side in "LR":
        nerve, eye = fine.clean[f"OpticNrv_{side}"], fine.clean[f"Eye_{side}"]
        points = np.argwhere(nerve)
        near_eye = points[np.argsort(np.linalg.norm(points - np.argwhere(eye).mean(axis=0), axis=1))[:30]]
        landmark = near_eye.mean(axis=0).round().astype(int)
        box = image[tuple(slice(max(0, c - 5), c + 6) for c in landmark)]
        assert (image[nerve] > 0.8 * np.percentile(box, 98)).mean() < 0.02


@pytest.mark.parametrize("rate", [0.0, 1.0])
@pytest.mark.parametrize("name", ["seed000", "seed001"])
def test_delineation_rate_override(name: str, rate: float) -> None:
    cases = [simulate_case(2, "train", i, spacing_mm=8.0, structures=name, delineation_rates={"Lens": rate})
             for i in range(4)]
    for case in cases:
        assert all((lens in case.masks) == bool(rate) for lens in ("Lens_L", "Lens_R"))
    plain = simulate_case(2, "train", 0, spacing_mm=8.0, structures=name)
    assert np.array_equal(plain.image, cases[0].image)  # a rate changes delineations only
    others = [n for n in plain.masks if not n.startswith("Lens")]
    assert others == [n for n in cases[0].masks if not n.startswith("Lens")]  # other organs' decisions kept


def test_rate_rules_by_hand() -> None:
    bilateral = {"Lens": ("Lens_L", "Lens_R")}
    assert expand_rates({"Lens": 0.25, "Brain": 1}, ["Brain", "Lens_L", "Lens_R"], bilateral) == {
        "Lens_L": 0.25, "Lens_R": 0.25, "Brain": 1.0}
    for bad in ({"Lens_L": 0.5}, {"Cochlea": 0.5}, {"Lens": 1.5}, {"Lens": "x"}):
        with pytest.raises(ConfigError):
            expand_rates(bad, ["Brain", "Lens_L", "Lens_R"], bilateral)
    rng = np.random.default_rng(0)
    rates = {"Brain": 0.8, "Lens_L": 0.3, "Lens_R": 0.3}
    draws = [choose_by_rates(["Brain", "Lens_L", "Lens_R"], bilateral, rates, rng) for _ in range(2000)]
    assert all(("Lens_L" in d) == ("Lens_R" in d) for d in draws)  # a pair is decided together
    assert np.mean(["Brain" in d for d in draws]) == pytest.approx(0.8, abs=0.03)
    assert np.mean(["Lens_L" in d for d in draws]) == pytest.approx(0.3, abs=0.03)
    gaps = {"Eye_L": 300.0, "Eye_R": 300.0, "Brainstem": 0.0}
    far = choose_delineated(gaps, [("Eye_L", "Eye_R")], np.random.default_rng(1), rates={"Eye_L": 1, "Eye_R": 1})
    assert far[:2] == ["Eye_L", "Eye_R"]  # the rate replaces the distance rule
    assert SEED001_RATES["Lens"] == 34 / 44 and SEED001_RATES["Brain"] == 37 / 44


def test_seed000_default_is_unchanged_and_deterministic(tmp_path: Path) -> None:
    kw = {"cases": 1, "test_cases": 1, "spacing_mm": 8.0, "preview": False}
    a = generate_phantom("head-oar", tmp_path / "a", **kw)
    b = generate_phantom("head-oar", tmp_path / "b", structures="seed000", **kw)
    spec = json.loads((a / "dataset.json").read_text())
    assert list(spec["labels"]) == list(STRUCTURES) and len(STRUCTURES) == 11
    assert "Brain" not in spec["labels"] and not any(n.startswith("Hippocampus") for n in spec["labels"])
    assert spec["cases"] == json.loads((b / "dataset.json").read_text())["cases"]
    for name in ("imagesTr/head_000_0000.nii.gz", "imagesTs/head_test_000_0000.nii.gz",
                 "structuresTs/head_test_000/Lens_L.nii.gz"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert load_dataset(a).spec.relations.inside == (("Lens_L", "Eye_L"), ("Lens_R", "Eye_R"))
    # seed001 paints hippocampi: its image differs from seed000's for the same case
    s1 = simulate_case(0, "test", 0, spacing_mm=8.0, structures="seed001")
    assert not np.array_equal(s1.image, simulate_case(0, "test", 0, spacing_mm=8.0).image)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown structure set"):
        generate_phantom("head-oar", tmp_path / "x", cases=1, test_cases=0, structures="seed002")
    with pytest.raises(ConfigError, match="Cochlea"):
        generate_phantom("head-oar", tmp_path / "x", cases=1, test_cases=0, structures="seed001",
                         delineation_rates={"Cochlea": 0.5})
    assert not (tmp_path / "x").exists()


def test_cli_structures_and_rates(tmp_path: Path) -> None:
    out = tmp_path / "ph"
    result = runner.invoke(app, ["phantom", "head-oar", str(out), "--cases", "2", "--test-cases", "1",
                                 "--spacing", "8", "--structures", "seed001", "--delineation-rate", "Lens=0.2",
                                 "--delineation-rate", "Pituitary=1,Brain=0"])
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "dataset.json").read_text())
    assert list(spec["labels"]) == list(SEED001) and (out / "preview.png").is_file()
    assert spec["phantom"]["delineation_rates"]["Lens"] == 0.2
    for case_id in ("head_000", "head_001"):
        assert "Pituitary" in spec["cases"][case_id]["annotated"]
        assert "Brain" not in spec["cases"][case_id]["annotated"]
    result = runner.invoke(app, ["phantom", "head-oar", str(tmp_path / "y"), "--delineation-rate", "Lens"])
    assert result.exit_code == 1 and "NAME=P" in result.output
    result = runner.invoke(app, ["phantom", "ct-bone", str(tmp_path / "z"), "--structures", "seed001"])
    assert result.exit_code == 1 and "structures" in result.output
