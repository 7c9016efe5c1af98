"""Training runs the checks of 'clinseg validate' first (issue 18 item 3): errors refuse, warnings are logged,
a passing result is kept in the run folder keyed by the dataset fingerprint."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from clinseg.errors import DatasetError
from clinseg.io import read_image, write_image
from clinseg.training.config import TrainConfig
from clinseg.training.fingerprint import dataset_fingerprint
from clinseg.training.methods import run_method
from clinseg.training.preflight import VALIDATION_FILE
from clinseg.training.run import train
from tests.conftest import GEOM
from tests.training.test_run import TINY


def _copy_image(source: Path, target: Path) -> None:
    img = read_image(source)
    write_image(img.array, img.geometry, target)


def test_case_in_training_and_test_set_is_refused(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    _copy_image(root / "imagesTr" / "case_2_0000.nii.gz", root / "imagesTs" / "case_2_0000.nii.gz")
    with pytest.raises(DatasetError) as info:
        train(root, tmp_path / "run", TrainConfig(**TINY), iterations=1)
    message = str(info.value)
    assert message.startswith(f"{root}: the checks of 'clinseg validate' found 1 error(s); training refused")
    assert message.splitlines()[1] == (f"  -: {root}: duplicate case 'case_2' appears in both the training and "
                                       "the test set")
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / VALIDATION_FILE).exists()


def test_nii_copy_and_misnamed_mask_are_refused_with_every_problem(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    _copy_image(root / "imagesTr" / "case_0_0000.nii.gz", root / "imagesTr" / "case_0_0000.nii")
    (root / "structuresTr" / "case_2" / "B.nii.gz").rename(root / "structuresTr" / "case_2" / "B_left.nii.gz")
    with pytest.raises(DatasetError, match=r"found 2 error\(s\)") as info:
        train(root, tmp_path / "run", TrainConfig(**TINY), iterations=1)
    lines = str(info.value).splitlines()[1:]
    assert lines == [
        f"  -: {root}/imagesTr/case_0_0000.nii.gz: duplicate case 'case_0' channel 0 (also case_0_0000.nii)",
        f"  case_2: {root}/structuresTr/case_2/B_left.nii.gz: unknown structure 'B_left' (not in dataset.json "
        "labels: A, B)",
    ]


def test_skip_validation_trains_anyway(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    (root / "structuresTr" / "case_2" / "B.nii.gz").rename(root / "structuresTr" / "case_2" / "B_left.nii.gz")
    state = train(root, tmp_path / "run", TrainConfig(**TINY), iterations=1, skip_validation=True)
    assert state.iteration == 1 and not (tmp_path / "run" / VALIDATION_FILE).exists()
    summary = run_method("single", root, tmp_path / "run2", TrainConfig(**TINY), 1, skip_validation=True)
    assert summary.startswith("trained 1 iterations; best validation Dice")


def test_warnings_are_logged_and_training_goes_on(make_dataset, tmp_path: Path, caplog) -> None:
    root = make_dataset()
    write_image(np.zeros(GEOM.shape, np.uint8), GEOM, root / "structuresTs" / "test_0" / "A.nii.gz")
    with caplog.at_level(logging.WARNING, logger="clinseg.training.preflight"):
        state = train(root, tmp_path / "run", TrainConfig(**TINY), iterations=1)
    assert state.iteration == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"dataset warning (test_0): {root}/structuresTs/test_0/A.nii.gz: empty mask (no foreground voxel)",
        f"training on {root} despite 1 warning(s) of 'clinseg validate'",
    ]
    record = json.loads((tmp_path / "run" / VALIDATION_FILE).read_text())
    assert [w["case"] for w in record["warnings"]] == ["test_0"]


def test_a_resumed_run_does_not_read_the_images_again(make_dataset, tmp_path: Path, caplog) -> None:
    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=1)
    record = json.loads((run / VALIDATION_FILE).read_text())
    from clinseg.data import load_dataset

    assert record == {"fingerprint": dataset_fingerprint(load_dataset(root)), "warnings": []}
    # Damage a test-set mask keeping its size: the fingerprint is unchanged, so a resume that re-read the
    # images would find it unreadable; the recorded validation is used instead.
    mask = root / "structuresTs" / "test_0" / "A.nii.gz"
    mask.write_bytes(b"\x00" * mask.stat().st_size)
    with caplog.at_level(logging.INFO, logger="clinseg.training.preflight"):
        assert train(root, run, None, iterations=2).iteration == 2
    assert any("its images are not read again" in r.getMessage() for r in caplog.records)
    # Changed data (another file) changes the fingerprint: the next run reads every image again.
    _copy_image(root / "imagesTs" / "test_0_0000.nii.gz", root / "imagesTs" / "test_1_0000.nii.gz")
    with pytest.raises(DatasetError, match=r"test_0/A.nii.gz: unreadable or truncated image"):
        train(root, tmp_path / "other", TrainConfig(**TINY), iterations=1)


def test_layout_problems_are_found_even_with_a_recorded_validation(make_dataset, tmp_path: Path) -> None:
    """A second copy listed after the first does not change the fingerprint; the layout checks run on every
    start."""
    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**TINY), iterations=1)
    _copy_image(root / "imagesTr" / "case_1_0000.nii.gz", root / "imagesTr" / "case_1_0000.nrrd")
    with pytest.raises(DatasetError, match="duplicate case 'case_1' channel 0"):
        train(root, run, None, iterations=2)


def test_two_stage_validates_once_for_both_networks(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    (root / "structuresTr" / "case_0" / "A.nii.gz").rename(root / "structuresTr" / "case_0" / "a.nii.gz")
    with pytest.raises(DatasetError, match="unknown structure 'a'"):
        run_method("two-stage", root, tmp_path / "run", TrainConfig(**TINY), 1, margin=2)
    assert not (tmp_path / "run" / "localiser").exists()
    (root / "structuresTr" / "case_0" / "a.nii.gz").rename(root / "structuresTr" / "case_0" / "A.nii.gz")
    run_method("two-stage", root, tmp_path / "run", TrainConfig(**TINY), 1, margin=2)
    assert (tmp_path / "run" / VALIDATION_FILE).is_file()
    assert not (tmp_path / "run" / "localiser" / VALIDATION_FILE).exists()
