"""Issue 22: progress as log lines when no bar is drawn (nohup, SLURM, CI): every 5% or minute, rate and ETA."""

import logging

import pytest

from clinseg.progress import TextProgress, track


def test_track_logs_lines_when_not_on_a_terminal(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("CLINSEG_PROGRESS", "0")
    monkeypatch.setattr("clinseg.progress.MIN_SECONDS", 0.0)  # a slow loop: every step is due
    with caplog.at_level(logging.INFO, logger="clinseg.progress"):
        assert list(track(range(40), "predicting", what="cases")) == list(range(40))
    lines = [r.getMessage() for r in caplog.records if r.name == "clinseg.progress"]
    assert len(lines) == 20  # one every 5% (2 of 40 cases)
    assert lines[0].startswith("predicting: 2/40 cases (") and " left)" in lines[0]
    assert lines[-1].startswith("predicting: 40/40 cases (") and "0s left" in lines[-1]


def test_a_fast_loop_logs_only_its_end(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("CLINSEG_PROGRESS", "0")
    with caplog.at_level(logging.INFO, logger="clinseg.progress"):
        list(track(range(40), "validating", what="cases"))
    lines = [r.getMessage() for r in caplog.records if r.name == "clinseg.progress"]
    assert len(lines) == 1 and lines[0].startswith("validating: 40/40 cases")


def test_unknown_totals_and_seconds(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("CLINSEG_PROGRESS", "0")
    with caplog.at_level(logging.INFO, logger="clinseg.progress"):
        list(track(iter(range(3)), "reading"))  # no length: a line a minute only
        report = TextProgress(total=1000, what="iterations", seconds=0.0)
        report.update(1, "loss 0.5")  # every update is due with seconds=0
    lines = [r.getMessage() for r in caplog.records if r.name == "clinseg.progress"]
    assert lines == [lines[0]] and lines[0].startswith("training: 1/1000 iterations (") and "loss 0.5" in lines[0]


def test_no_lines_when_a_bar_is_drawn(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("CLINSEG_PROGRESS", "1")
    with caplog.at_level(logging.INFO, logger="clinseg.progress"):
        assert list(track([1, 2], "x")) == [1, 2]
    assert not [r for r in caplog.records if r.name == "clinseg.progress"]
