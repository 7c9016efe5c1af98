"""Atomic file writes: every file clinseg writes goes through :func:`atomic_path` (a folder of files:
:func:`atomic_folder`).

A reader never sees a partially written file: the content goes to a temporary file in the same folder,
which is renamed over the destination only after it was written completely. Temporary names are hidden and
carry the writing process's id (``.<name>.<pid>.<random>``), so a later run can tell the leftovers of a
killed process (``kill -9`` leaves them) from the files of a live one and remove them
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from clinseg.errors import ConfigError

#: A temporary file or folder of this module: ``.<name>.<pid>.<8 random characters><suffix>``; the older
#: form without the process id (``.<name>.<8 random characters>``, folders only) is recognised too.
_TEMPORARY = re.compile(r"^\.(?P<name>.+?)(?:\.(?P<pid>\d+))?\.[a-z0-9_]{8}(?P<suffix>\..*)?$")
#: A temporary entry untouched this long is stale even when its process cannot be checked (another host).
STALE_AFTER_S = 3600.0


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The temporary name keeps the full suffix (``.nii.gz`` …) so libraries that pick a writer from the
    file name behave as for the final name. On an exception the temporary file is removed and the
    destination is left untouched.

    Examples
    --------
    >>> with atomic_path(tmp / "a.txt") as p:   # doctest: +SKIP
    ...     p.write_text("hello")
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(dest.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=_prefix(dest.name.split(".")[0]), suffix=suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp creates 0600; give the file the permissions a plain open() would
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    The folder gets the permissions of a plain ``mkdir`` (``0o777 & ~umask``, not ``mkdtemp``'s 0700). An
    existing ``path`` is removed just before the rename; on an exception the temporary folder is removed and
    ``path`` is left untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(dest.name), dir=dest.parent))
    try:
        os.chmod(tmp, folder_mode())
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    except (OverflowError, OSError):
        return False
    return True


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary file or folder of this module left behind: its process is gone, or it
    was not touched for :data:`STALE_AFTER_S` seconds."""
    match = _TEMPORARY.match(path.name)
    if match is None or (match["pid"] is None and not path.is_dir()):
        return False
    if match["pid"] is not None and int(match["pid"]) != os.getpid() and not _process_alive(int(match["pid"])):
        return True
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_AFTER_S


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the leftovers of killed writers (:func:`is_stale_temporary`) directly in ``folder``; returns
    what was removed. Entries of live processes and every other file are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        if entry.name.startswith(".") and is_stale_temporary(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
    return removed


def ensure_folder(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create the folder ``path`` (with its parents) and check that files can be written in it.

    Raises
    ------
    ConfigError
        Naming ``path`` when it is a file, lies under a file, or cannot be created or written (``/proc/x``,
        a read-only file system, no permission), instead of the ``OSError`` of the first write.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{path}: exists and is not a folder (the {what} must be a folder)") from None
    except NotADirectoryError:
        raise ConfigError(f"{path}: cannot create the {what}: part of the path is a file, not a folder") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the {what} ({exc.strerror or exc})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=_prefix("probe"), dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write in the {what} ({exc.strerror or exc})") from None
    return path


def folder_mode() -> int:
    """The permissions a plain ``mkdir`` gives a folder (``0o777 & ~umask``), for folders made by ``mkdtemp``
    (which makes them 0700, unreadable to the group)."""
    return 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
