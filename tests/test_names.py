"""One rule for every name that becomes a path component (:mod:`clinseg.names`)."""

from __future__ import annotations

import pytest

from clinseg.errors import DatasetError
from clinseg.names import check_name, name_problem


@pytest.mark.parametrize("name", ["CON", "con", "Prn", "aux", "NUL", "COM1", "com9", "LPT1", "lpt9",
                                  "nul.txt", "CON.nii.gz", "Aux.tar", "com3.x.y", "CON .txt"])
def test_windows_device_names_are_refused_whatever_the_case_and_ending(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None and problem.startswith("is a device name on Windows"), problem
    assert f"({name.split('.')[0].strip().upper()!r})" in problem


@pytest.mark.parametrize("name", ["CONX", "CON_L", "xCON", "COM0", "COM10", "LPT", "NULL", "AUX-1", "a.CON",
                                  "Parotid_L", "lr 0.01"])
def test_names_that_only_look_like_device_names_pass(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(("name", "problem"), [
    ("../../x", "contains '/'"), ("/tmp/x", "contains '/'"), ("a\\b", "contains '\\\\'"), ("", "is empty"),
    (".hidden", "starts with '.'"), ("x ", "starts or ends with a space"),
    ("tab\tname", "contains a control character"), ("x" * 129, "is longer than 128 characters"),
    (3, "must be a string, got int"),
])
def test_other_problems(name: object, problem: str) -> None:
    assert name_problem(name) == problem


def test_check_name_names_the_source_and_the_rule() -> None:
    assert check_name("Eye_L", "structure name", "ds/dataset.json") == "Eye_L"
    with pytest.raises(DatasetError) as info:
        check_name("nul", "case id", "ds/imagesTr/nul_0000.nii.gz")
    message = str(info.value)
    assert message.startswith("ds/imagesTr/nul_0000.nii.gz: case id 'nul' is a device name on Windows ('NUL'); ")
    assert "Windows device name" in message
