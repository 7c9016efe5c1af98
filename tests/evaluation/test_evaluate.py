"""Folder evaluation: perfect predictions score 1, undelineated structures are 'not delineated'."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from clinseg.errors import DatasetError
from clinseg.evaluation.evaluate import evaluate_to_folder


def test_reference_as_prediction_scores_perfectly_and_skips_undelineated(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    pred = tmp_path / "pred"
    shutil.copytree(root / "structuresTr", pred)
    # case_1 does not delineate B: a wrong prediction there must not count
    shutil.copy(pred / "case_1" / "A.nii.gz", pred / "case_1" / "B.nii.gz")
    metrics, summary = evaluate_to_folder(pred, root, tmp_path / "eval", split="train")
    row = metrics[(metrics.case == "case_1") & (metrics.structure == "B")].iloc[0]
    assert not row.delineated and pd.isna(row.dice)
    assert metrics[metrics.delineated].dice.eq(1.0).all()
    assert metrics[metrics.delineated].hd95.eq(0.0).all()
    by = summary.set_index("structure")
    assert by.loc["A", "n"] == 3 and by.loc["B", "n"] == 2
    assert (tmp_path / "eval" / "metrics.csv").is_file() and (tmp_path / "eval" / "summary.csv").is_file()


def test_missing_prediction_is_named(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    (tmp_path / "pred" / "test_0").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"test_0/A\.nii\.gz: prediction missing for case 'test_0'"):
        evaluate_to_folder(tmp_path / "pred", root, tmp_path / "eval")
    assert not (tmp_path / "eval" / "metrics.csv").exists()
