"""Issue 22: label maps open named and coloured: Slicer colour table and ITK-SNAP label descriptions."""

from pathlib import Path

import pytest

from clinseg.io.colour_tables import (
    labels_of,
    read_colour_table,
    write_itksnap_labels,
    write_slicer_colour_table,
)


def test_slicer_and_itksnap_tables(tmp_path: Path) -> None:
    labels = labels_of(["enhancing", "necrosis core"], [4, 1], [(255, 0, 0), (0, 128, 255)])
    assert labels == [(1, "necrosis core", (0, 128, 255)), (4, "enhancing", (255, 0, 0))]
    write_slicer_colour_table(tmp_path / "labels.ctbl", labels)
    lines = (tmp_path / "labels.ctbl").read_text().splitlines()
    assert lines[0] == "# Color table file labels.ctbl" and lines[1] == "# 3 values"
    assert lines[2:] == ["0 Background 0 0 0 0", "1 necrosis_core 0 128 255 255", "4 enhancing 255 0 0 255"]
    write_itksnap_labels(tmp_path / "labels.txt", labels)
    text = (tmp_path / "labels.txt").read_text()
    assert text.startswith("################################################\n# ITK-SnAP Label Description File")
    assert text.splitlines()[-1].split() == ["4", "255", "0", "0", "1", "1", "1", '"enhancing"']
    assert read_colour_table(tmp_path / "labels.txt") == labels
    assert read_colour_table(tmp_path / "labels.ctbl") == [(1, "necrosis_core", (0, 128, 255)),
                                                           (4, "enhancing", (255, 0, 0))]


def test_label_values_must_be_distinct_and_positive() -> None:
    with pytest.raises(ValueError, match="distinct"):
        labels_of(["a", "b"], [1, 1], [(0, 0, 0)] * 2)
    with pytest.raises(ValueError, match="from 1"):
        labels_of(["a"], [0], [(0, 0, 0)])
