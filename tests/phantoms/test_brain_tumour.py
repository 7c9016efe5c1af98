"""The brain-tumour phantom: layout, validity, nested compartments, contrasts, weak labels, missing
sequences, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data import load_case, load_dataset, validate_dataset
from clinseg.errors import ConfigError
from clinseg.io import read_image
from clinseg.phantoms import generate_phantom, list_phantoms
from clinseg.phantoms.brain_tumour import (
    BrainCase,
    draw_missing,
    grid_geometry,
    is_tumour_free,
    simulate_case,
)

SEQUENCES = ["T1", "T1c", "T2", "FLAIR"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training + 2 test cases at 8 mm (20 x 24 x 20 voxels), some sequences missing."""
    return generate_phantom("brain-tumour", tmp_path_factory.mktemp("p") / "ds", cases=4, test_cases=2,
                            spacing_mm=8.0, missing_sequences=0.4)


@pytest.fixture(scope="module")
def cases() -> list[BrainCase]:
    """The first eight training cases at 3 mm, in memory: high and low grade, with and without tumour."""
    return [simulate_case(0, "train", i, spacing_mm=3.0) for i in range(8)]


def test_registered_with_defaults() -> None:
    assert "brain-tumour" in list_phantoms()
    assert grid_geometry(2.0).shape == (80, 96, 80)  # 160 x 192 x 160 mm at the default 2 mm
    assert grid_geometry(8.0).shape == (20, 24, 20)
    assert grid_geometry(8.0).origin == pytest.approx((-76.0, -92.0, -76.0))


def test_layout_dataset_json_and_validation(small: Path) -> None:
    spec = json.loads((small / "dataset.json").read_text())
    assert spec["channel_names"] == {"0": "T1", "1": "T1c", "2": "T2", "3": "FLAIR"}
    assert spec["labels"] == {"necrosis": 1, "oedema": 2, "enhancing": 3} and spec["label_mode"] == "multiclass"
    assert (spec["numTraining"], spec["numTest"]) == (4, 2) and "001" in spec["reference"]
    assert spec["phantom"]["name"] == "brain-tumour" and spec["phantom"]["missing_sequences"] == 0.4
    assert validate_dataset(small, progress=False).ok
    ds = load_dataset(small)
    assert [r.case_id for r in ds.train] == ["brats_000", "brats_001", "brats_002", "brats_003"]
    assert [r.case_id for r in ds.test] == ["brats_test_000", "brats_test_001"]
    assert ds.spec.channels == tuple(SEQUENCES) and ds.spec.structures == ("necrosis", "oedema", "enhancing")
    assert not (small / "structuresTr").exists()
    for record in ds.cases():
        info = spec["cases"][record.case_id]
        assert record.weak_labels == info["weak_labels"] and record.complete
        grids = [read_image(path).geometry for path in record.images]
        assert all(g == grids[0] for g in grids) and grids[0].shape == (20, 24, 20)
        labels = read_image(record.label_map).array
        assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2, 3}
        assert info["weak_labels"] == {"tumour": bool(labels.any()), "necrosis": bool((labels == 1).any()),
                                       "oedema": bool((labels == 2).any()), "enhancing": bool((labels == 3).any())}
        assert info["volume_ml"]["oedema"] == pytest.approx((labels == 2).sum() * 0.512, abs=0.01)
    data = load_case(ds.train[0], ds.spec, normalization="median")
    assert data.image.shape == (4, 20, 24, 20) and data.target.shape == (3, 20, 24, 20)
    image = read_image(small / "imagesTr" / "brats_000_0000.nii.gz").array
    assert image.dtype == np.int16 and image[:, :2].max() == 0  # skull-stripped: zero outside the brain
    assert (small / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tumour_free_cases(small: Path, cases: list[BrainCase]) -> None:
    free = [i for i in range(70) if is_tumour_free(0, "train", i)]
    assert len(free) == 10 and 1 <= free[0] <= 3  # 1 in 7, the first among cases 1-3 (never the preview)
    for seed in range(20):
        assert any(is_tumour_free(seed, split, i) for split in ("train", "test") for i in range(4))
    spec = json.loads((small / "dataset.json").read_text())
    empty = [c for c, info in spec["cases"].items() if not info["weak_labels"]["tumour"]]
    assert empty and sorted(empty) == spec["phantom"]["tumour_free_cases"]
    for case_id in empty:
        split = "Ts" if "test" in case_id else "Tr"
        assert not read_image(small / f"labels{split}" / f"{case_id}.nii.gz").array.any()
        assert spec["cases"][case_id]["grade"] == "none"
    assert {c.grade for c in cases} == {"high", "low", "none"}
    for case in cases:
        assert case.label_map.any() == (case.grade != "none")
        assert not case.label_map[~case.brain].any()


def test_compartments_are_nested(cases: list[BrainCase]) -> None:
    necrotic = 0
    for case in cases:
        labels = case.label_map
        if case.grade == "low":  # non-enhancing core (label 1) inside oedema, no enhancement
            assert not (labels == 3).any() and (labels == 1).any() and (labels == 2).any()
        if case.grade != "high":
            continue
        # Distance (mm) to the nearest voxel outside the whole tumour: necrosis deepest, then rim, then oedema.
        depth = ndimage.distance_transform_edt(labels > 0, sampling=3.0)
        means = {v: depth[labels == v].mean() for v in (1, 2, 3) if (labels == v).any()}
        assert 3 in means and 2 in means and means[3] > means[2], case.case_id
        if 1 in means:
            necrotic += 1
            assert means[1] > means[3], case.case_id
            shell = ndimage.binary_dilation(labels == 1) & (labels != 1)
            assert (labels[shell] == 3).mean() > 0.9, case.case_id  # the rim (>= 2 mm) closes around the necrosis
        # The oedema wraps the rim: at 3 mm only a few rim voxels touch healthy tissue where it is thin.
        shell = ndimage.binary_dilation(labels > 0) & (labels == 0) & case.brain
        touching = ndimage.binary_dilation(shell) & (labels == 3)
        assert touching.sum() < 0.05 * (labels == 3).sum(), case.case_id
    assert necrotic >= 1


def test_sequence_contrasts(cases: list[BrainCase]) -> None:
    def mean(case: BrainCase, seq: str, mask: np.ndarray) -> float:
        return float(case.image[SEQUENCES.index(seq)][mask].mean())

    for case in cases:
        wm, csf, labels = case.regions["white_matter"], case.regions["ventricles"], case.label_map
        assert csf.sum() > 20 and wm.sum() > 1000
        assert mean(case, "FLAIR", csf) < 0.6 * mean(case, "FLAIR", wm)  # free water dark on FLAIR
        assert mean(case, "T2", csf) > 1.8 * mean(case, "T2", wm)  # and bright on T2
        assert mean(case, "T1", csf) < 0.6 * mean(case, "T1", wm)
        oedema = labels == 2
        if oedema.sum() > 10:
            assert mean(case, "FLAIR", oedema) > 1.4 * mean(case, "FLAIR", wm)
            assert mean(case, "T2", oedema) > 1.4 * mean(case, "T2", wm)
        rim = labels == 3
        if rim.sum() > 5:
            assert mean(case, "T1c", rim) > 1.3 * mean(case, "T1c", oedema)  # enhancement on T1c …
            assert mean(case, "T1", rim) < mean(case, "T1", wm)  # … and not on T1
        if case.grade == "high" and (labels == 1).sum() > 5:
            necrosis = labels == 1
            assert mean(case, "T1", necrosis) < 0.6 * mean(case, "T1", wm)
            assert mean(case, "T1c", necrosis) < 0.6 * mean(case, "T1c", rim)
            assert mean(case, "T2", necrosis) > 1.8 * mean(case, "T2", wm)
    # Every sequence has its own global scale per case: normalisation matters.
    ratios = np.array([[mean(c, s, c.regions["white_matter"]) for s in SEQUENCES] for c in cases])
    assert (ratios.max(axis=0) / ratios.min(axis=0)).min() > 1.5


def test_missing_sequences(small: Path) -> None:
    rng = np.random.default_rng(0)
    assert all(0 < len(SEQUENCES) - len(draw_missing(rng, 1.0)) for _ in range(20))
    assert draw_missing(rng, 0.0) == ()
    spec = json.loads((small / "dataset.json").read_text())
    ds = load_dataset(small)
    dropped = 0
    for case_id, info in spec["cases"].items():
        missing = info["missing_channels"]
        assert ds.spec.missing_channels.get(case_id, ()) == tuple(missing)
        assert len(missing) < 4 and ("test" not in case_id or not missing)  # test cases stay complete
        split = "Ts" if "test" in case_id else "Tr"
        for c, seq in enumerate(SEQUENCES):
            volume = read_image(small / f"images{split}" / f"{case_id}_{c:04d}.nii.gz").array
            assert volume.any() == (seq not in missing), (case_id, seq)
        dropped += len(missing)
    assert dropped > 0
    # Dropping a sequence leaves the kept ones, and the labels, as without the option.
    full = simulate_case(0, "train", 0, spacing_mm=8.0)
    part = simulate_case(0, "train", 0, spacing_mm=8.0, missing_sequences=0.4)
    kept = [c for c, s in enumerate(SEQUENCES) if s not in part.missing]
    assert np.array_equal(full.image[kept], part.image[kept]) and np.array_equal(full.label_map, part.label_map)


def test_deterministic_for_a_seed() -> None:
    a, b = simulate_case(0, "train", 2, spacing_mm=8.0), simulate_case(0, "train", 2, spacing_mm=8.0)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label_map, b.label_map)
    c = simulate_case(1, "train", 2, spacing_mm=8.0)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.image, simulate_case(0, "test", 2, spacing_mm=8.0).image)


def test_invalid_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing_sequences"):
        generate_phantom("brain-tumour", tmp_path / "x", missing_sequences=1.5)
    with pytest.raises(ConfigError, match="spacing_mm"):
        generate_phantom("brain-tumour", tmp_path / "x", spacing_mm=0.5)


def test_cli_command(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "brain"
    result = runner.invoke(app, ["phantom", "brain-tumour", str(out), "--cases", "2", "--test-cases", "1",
                                 "--spacing", "8", "--missing-sequences", "0.5", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["phantom"]["seed"] == 3 and spec["phantom"]["missing_sequences"] == 0.5
    refused = runner.invoke(app, ["phantom", "head-oar", str(tmp_path / "h"), "--missing-sequences", "0.5"])
    assert refused.exit_code == 1 and "missing_sequences" in refused.output
    assert not (tmp_path / "h").exists()
