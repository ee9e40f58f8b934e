"""Progress on long work (device peaks, benchmark sweeps, TPU compiles): a rich progress bar or
spinner on a terminal, nothing at all when the output is not one (logs, CI, notebooks' captured
output), so scripted runs stay clean."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


def _terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[str], None]]:
    """``with progress(n, "peaks") as step: ... step("matmul")``: a bar of ``n`` steps, each
    ``step(label)`` advancing it and naming what runs next."""
    if not _terminal():
        yield lambda label="": None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("[dim]{task.fields[label]}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total, label="")
        yield lambda label="": bar.update(task, advance=1, label=label)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with ``message`` while a long step runs (a terminal only)."""
    if not _terminal():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
