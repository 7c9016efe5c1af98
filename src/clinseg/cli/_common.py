"""Helpers shared by the CLI commands: one console, error handling, tables, JSON.

Output that is not a terminal (a pipe, a log file, nohup, SLURM, CI) is made to be searched and parsed:
lines are never wrapped (a path stays on one line), and tables become tab-separated lines, one per row
(:func:`print_table`). ``--json`` prints one JSON document on stdout (:func:`print_json`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from clinseg.errors import ClinsegError


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


#: stdout; long lines are not wrapped when it is not a terminal (so a path can be searched for in a log)
console = Console(soft_wrap=not _is_terminal(sys.stdout))
err_console = Console(stderr=True, soft_wrap=not _is_terminal(sys.stderr))
F = TypeVar("F", bound=Callable[..., Any])


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def table_lines(table: Table) -> list[str]:
    """A rich table as plain lines: its title, the header and one tab-separated line per row (markup
    removed, nothing wrapped or cut)."""
    columns = table.columns
    lines = [_plain(table.title)] if table.title else []
    if table.show_header:
        lines.append("\t".join(_plain(c.header) for c in columns))
    for row in zip(*(list(c.cells) for c in columns)):
        lines.append("\t".join(_plain(cell) for cell in row))
    return lines


def print_table(table: Table) -> None:
    """Print a table: drawn by rich on a terminal, as :func:`table_lines` otherwise (logs, pipes)."""
    if console.is_terminal:
        console.print(table)
        return
    for line in table_lines(table):
        typer.echo(line)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()  # a NumPy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def print_json(document: Any) -> None:
    """Print ``document`` as JSON on stdout (NaN and infinities as ``null``; paths as strings)."""
    typer.echo(json.dumps(_jsonable(document), indent=2, default=str))


def os_error_message(exc: OSError) -> str:
    """``FILE: reason`` for an operating-system error (full disk, no permission …), naming the file(s)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return reason
    if exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    return f"{exc.filename}: {reason}"


def handle_errors(func: F) -> F:
    """Turn a :class:`ClinsegError` into one readable red line and exit code 1 (no traceback).

    An ``OSError`` that no command turned into a :class:`ClinsegError` (a full disk while writing a result,
    a file vanishing under a run) is printed the same way, naming the file: the last line of defence.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ClinsegError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
        except OSError as exc:
            logging.getLogger(__name__).debug("operating-system error", exc_info=True)
            err_console.print(f"[bold red]error:[/] {escape(os_error_message(exc))}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    """Log to stderr through rich; INFO by default, DEBUG with ``--verbose``."""
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
