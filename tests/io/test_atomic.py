"""Atomic writes: complete files only, and the permissions of a plain open()."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clinseg.io.atomic import atomic_path, write_text


def test_written_files_get_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "report.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_ensure_folder_names_the_path_it_cannot_use(tmp_path: Path) -> None:
    from clinseg.errors import ConfigError
    from clinseg.io.atomic import ensure_folder

    (tmp_path / "file").write_text("x")
    assert ensure_folder(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert (tmp_path / "new" / "deep").is_dir() and list((tmp_path / "new" / "deep").iterdir()) == []
    with pytest.raises(ConfigError, match="file: exists and is not a folder"):
        ensure_folder(tmp_path / "file")
    with pytest.raises(ConfigError, match="file/sub: cannot create the run folder: part of the path is a file"):
        ensure_folder(tmp_path / "file" / "sub", "run folder")
    with pytest.raises(ConfigError, match=r"^/proc/clinseg-x: cannot create the output folder \("):
        ensure_folder("/proc/clinseg-x")


def test_atomic_folder_replaces_the_whole_folder(tmp_path: Path) -> None:
    from clinseg.io.atomic import atomic_folder

    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "case") as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["case"] and (tmp_path / "case" / "old.txt").is_file()
    with atomic_folder(tmp_path / "case") as tmp:
        assert tmp.name.startswith(f".case.{os.getpid()}.")
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "case").iterdir()] == ["new.txt"]
