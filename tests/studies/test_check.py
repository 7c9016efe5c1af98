"""A study validates each dataset it uses once, before anything is written, and its cells skip validation:
errors of ``clinseg validate`` refuse the study, warnings are logged and the study goes on."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import DatasetError
from clinseg.io import read_image, write_image
from clinseg.studies.execute import execute_run
from clinseg.studies.plan import load_and_prepare, open_study


def _set_mask(root: Path, case: str, structure: str, value: int) -> Path:
    """Fill one delineation with ``value``: 0 = empty (a warning), 2 = not binary (an error)."""
    path = root / "structuresTr" / case / f"{structure}.nii.gz"
    image = read_image(path)
    write_image(np.full_like(image.array, value), image.geometry, path)
    return path


def _dataset_of(spec: Path) -> Path:
    return Path(yaml.safe_load(spec.read_text())["dataset"])


def test_a_dataset_with_errors_is_refused_before_anything_is_written(write_spec, tmp_path: Path) -> None:
    spec = write_spec()
    root = _dataset_of(spec)
    bad = _set_mask(root, "case_2", "A", 2)
    with pytest.raises(DatasetError) as info:
        load_and_prepare(spec, tmp_path / "S")
    message = str(info.value)
    assert message.startswith(f"{root}: the checks of 'clinseg validate' found 1 error(s); study refused (fix them, "
                              "or go on anyway with --skip-validation):"), message
    assert f"case_2: {bad}: structure mask is not binary (values 2)" in message
    assert "--skip-validation" in message
    assert not (tmp_path / "S").exists()
    plan = load_and_prepare(spec, tmp_path / "S", skip_validation=True)
    assert len(plan.runs) == 2


def test_every_dataset_an_arm_uses_is_validated(write_spec, make_dataset, tmp_path: Path) -> None:
    other = make_dataset("other", cases=3)
    bad = _set_mask(other, "case_0", "B", 2)
    spec = write_spec(arms=["baseline", {"name": "joint", "method": "multitask", "options": {"with": [str(other)]}}])
    with pytest.raises(DatasetError, match=rf"^{other}: the checks .* 1 error\(s\)(.|\n)*{bad}: structure mask"):
        load_and_prepare(spec, tmp_path / "S")
    assert not (tmp_path / "S").exists()


def test_warnings_are_logged_and_the_cells_do_not_validate_again(write_spec, tmp_path: Path, caplog) -> None:
    spec = write_spec(modes=["concentrated"])
    empty = _set_mask(_dataset_of(spec), "case_1", "A", 0)  # case_1 is never in a concentrated subset
    with caplog.at_level(logging.WARNING, logger="clinseg.studies.check"):
        plan = load_and_prepare(spec, tmp_path / "S")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"dataset warning (case_1): {empty}: empty mask (no foreground voxel)" in warnings
    assert any("despite 1 warning(s)" in w for w in warnings)
    assert execute_run(tmp_path / "S", plan.runs[0], threads=1).status == "done"
    assert not (plan.run_dir(plan.runs[0]) / "validation.json").exists()  # the cell skipped the checks


def test_cli_refuses_then_runs_with_skip_validation(write_spec, tmp_path: Path) -> None:
    spec = write_spec(modes=["concentrated"])
    bad = _set_mask(_dataset_of(spec), "case_1", "A", 2)
    runner = CliRunner()
    refused = runner.invoke(app, ["study", "run", str(spec), "--out", str(tmp_path / "S"), "--in-process"])
    assert refused.exit_code == 1
    assert "not binary" in refused.output and bad.name in refused.output
    assert not (tmp_path / "S").exists()
    result = runner.invoke(app, ["study", "run", str(spec), "--out", str(tmp_path / "S"), "--in-process",
                                 "--skip-validation"])
    assert result.exit_code == 0, result.output
    plan = open_study(tmp_path / "S")
    assert [plan.status(k) for k in plan.runs] == ["done"]  # the cell did not validate (and refuse) again
