"""Terminal output shared by every command-line module: the consoles, the error guard and the
progress bar. Kept apart from ``biometric.cli`` so that command modules (``biometric.gallery.cli``)
import it without importing the CLI that registers them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from biometric.errors import BiometricError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def fail(code: str, message: str) -> NoReturn:
    """The one way a command reports an error: ``error (code): message`` on one line of stderr,
    exit status 2 (README, "Command line"). ``code`` is stable: scripts may match on it."""
    err.print(f"[red]error[/red] ({code}): {' '.join(message.split())}", highlight=False,
              soft_wrap=True)
    raise typer.Exit(2)


def guard(fn: Callable[[], T]) -> T:
    """Known errors become one clear line on stderr and exit code 2, never a trace."""
    try:
        return fn()
    except BiometricError as exc:
        fail(exc.code, exc.message)
    except FileNotFoundError as exc:
        fail("file_not_found", str(exc))
    except OSError as exc:
        fail("io_error", str(exc))


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """Yields ``advance(n=1, total=None)``: ``total`` sets the count once it is known (a bar
    started without one shows no ``0/?``: only the description and a pulse)."""
    columns = [TextColumn("{task.description}"), BarColumn()]
    if total is not None:
        columns += [MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, total: int | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, n)

        yield advance
