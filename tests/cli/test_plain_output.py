"""Issue 22: output that can be searched and parsed when it is not a terminal (a log, a pipe): one line per
problem with the whole path, tables as tab-separated lines, --json."""

import json
from pathlib import Path

from rich.table import Table
from typer.testing import CliRunner

from clinseg.cli._common import table_lines
from clinseg.cli.main import app

runner = CliRunner()


def test_validate_prints_one_line_per_problem_with_the_whole_path(make_dataset) -> None:
    root = make_dataset(name="a_dataset_folder_with_a_long_name_so_that_paths_pass_eighty_characters")
    (root / "imagesTr" / "case_0_0000.nii.gz").unlink()
    stray = root / "structuresTr" / "case_2" / "Unknown_structure_with_a_long_name.nii.gz"
    stray.write_bytes((root / "structuresTr" / "case_2" / "A.nii.gz").read_bytes())
    result = runner.invoke(app, ["validate", str(root)], env={"COLUMNS": "80"})
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    problem_lines = [line for line in lines if line.startswith(("case_0\t", "case_2\t"))]
    assert len(problem_lines) == 2, result.stdout
    assert any(str(stray) in line and line.split("\t")[1] == "error" for line in problem_lines)
    assert len(max(problem_lines, key=len)) > 80  # not wrapped, not cut
    assert "│" not in result.stdout and "━" not in result.stdout  # no drawn tables in a log


def test_validate_json(make_dataset) -> None:
    root = make_dataset()
    result = runner.invoke(app, ["validate", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["errors"] == 0 and report["problems"] == []
    assert report["structures"] == ["A", "B"] and report["cases"] == {"train": 3, "test": 1}
    assert report["delineations"]["train"] == {"A": 3, "B": 2}
    (root / "imagesTr" / "case_0_0000.nii.gz").unlink()
    result = runner.invoke(app, ["validate", str(root), "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert problems and problems[0]["case"] == "case_0" and "missing channel 0" in problems[0]["message"]


def test_table_lines_keep_every_cell_whole() -> None:
    table = Table(title="Plan")
    table.add_column("what")
    table.add_column("value")
    long = "/a/very/long/path/" * 10 + "hold_tr000_0000.nii.gz"
    table.add_row("[bold]input[/]", long)
    assert table_lines(table) == ["Plan", "what\tvalue", f"input\t{long}"]


def test_plan_table_is_plain_when_piped(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    result = runner.invoke(app, ["plan", str(root), "--out", str(tmp_path / "plan.json")])
    assert result.exit_code == 0, result.output
    assert "target spacing (x, y, z mm)\t1, 1, 2" in result.stdout.splitlines(), result.stdout
