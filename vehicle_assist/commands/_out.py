"""Output helpers shared by the commands: JSON for machines, readable text for people."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vehicle_assist.messages import to_record

err_console = Console(stderr=True)
console = Console()


def emit(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print ``data`` as one JSON document (``--json``) or through ``human``."""
    if as_json:
        sys.stdout.write(json.dumps(to_record(data), default=str) + "\n")
    else:
        human(data)


def emit_line(data: Any) -> None:
    """One JSON Lines record on stdout (for commands that stream records)."""
    sys.stdout.write(json.dumps(to_record(data), default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress(description: str, total: int | None, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (hidden with ``enabled=False``); yields ``advance(n=1)``."""
    if not enabled:
        yield lambda n=1: None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def fail(message: str, code: int = 1) -> None:
    """Print an error on stderr and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {escape(message)}")  # error codes like "[drive-missing]" are text, not markup
    raise SystemExit(code)
