"""Helpers shared by the CLI commands: one console, error handling, tables."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from clinseg.errors import ClinsegError

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


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
