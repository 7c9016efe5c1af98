"""Issue 22: the --help of every command is readable in an 80-column terminal: no option name cut, no line
longer than 80 characters."""

import re

import pytest
import typer
from typer.testing import CliRunner

from clinseg.cli.main import app

runner = CliRunner()


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_every_command_is_listed() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"predict", "evaluate", "validate", "train", "study run", "import-dicom", "interact"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "clinseg" for p, _ in COMMANDS])
def test_help_fits_80_columns(path: tuple[str, ...], command: object) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    for param in getattr(command, "params", []):  # every option name appears whole
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("-"):
                assert re.search(rf"(^|[\s,/]){re.escape(name)}(?=[\s,/=]|$)", result.output, re.M), name
    # an ellipsis only where a help text itself has one, never where the terminal cut a word
    texts = " ".join(str(getattr(p, "help", "") or "") for p in getattr(command, "params", []))
    texts += str(getattr(command, "help", "") or "")
    assert result.output.count("…") <= texts.count("…"), result.output


def test_python_dash_m_clinseg_is_the_command_line() -> None:
    """``python -m clinseg`` (what the benchmarks and ``torchrun -m`` call) is the same command line."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "clinseg", "plan", "--help"], capture_output=True, text=True,
                         check=True, env={"COLUMNS": "80", "PATH": ""}).stdout
    assert "Usage: clinseg plan" in out and "DATASET" in out
