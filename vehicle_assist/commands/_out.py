"""Output helpers shared by the commands: JSON for machines, readable text for people.

Errors have one form everywhere (:func:`fail`, and ``cli.py`` for errors raised before or around a
command): people get one line ``error: [code] message`` on stderr, never wrapped, never with markup;
under ``--json`` the error is one JSON object on stdout, ``{"error": {"code": ..., "message": ...}}``,
and nothing on stderr. Either way the exit code is non-zero.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vehicle_assist.messages import to_record

# soft_wrap: long lines (paths, transcripts) are never broken by rich at 80 columns; the terminal wraps them
err_console = Console(stderr=True, soft_wrap=True)
console = Console(soft_wrap=True)

_json_errors = False


def set_json_errors(on: bool) -> None:
    """Report errors as JSON on stdout (``--json`` on the command line) or as a line on stderr."""
    global _json_errors
    _json_errors = on


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
    """A progress bar on stderr (hidden with ``enabled=False``, and when stderr is not a terminal:
    a pipe or log file gets no bar residue); yields ``advance(n=1)``."""
    if not enabled or not err_console.is_terminal:
        yield lambda n=1: None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def say(text: str) -> None:
    """One line of readable output on stdout, printed as is (no markup: paths, transcripts and error
    codes such as ``[audio-empty]`` keep their brackets)."""
    console.print(text, markup=False, highlight=False)


def one_line(text: str) -> str:
    """``text`` on one line: its non-empty lines joined with "; ", inner whitespace runs kept."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def error_fields(error: BaseException | str, code: str | None = None) -> tuple[str, str]:
    """``(code, message)`` of an error: a coded error's own, else ``code`` (default ``error``) and the text."""
    from vehicle_assist.config import ConfigError
    from vehicle_assist.errors import CodedError

    if isinstance(error, CodedError):  # a wrapped one may carry its code in its text too: said once
        message = one_line(error.message)
        for prefix in (f"{error.code}: ", f"[{error.code}] "):
            message = message.removeprefix(prefix)
        return error.code, message
    if isinstance(error, ConfigError):
        return "config", one_line(str(error))
    return code or "error", one_line(str(error))


def report_error(code: str, message: str) -> None:
    """Print one error: ``error: [code] message`` on stderr, or the JSON object on stdout (``--json``)."""
    if _json_errors:
        sys.stdout.write(json.dumps({"error": {"code": code, "message": message}}) + "\n")
        sys.stdout.flush()
    else:
        sys.stderr.write(f"error: [{code}] {message}\n")
        sys.stderr.flush()


def fail(error: BaseException | str, exit_code: int = 1, code: str | None = None) -> NoReturn:
    """Report ``error`` (a coded error, or a message with ``code``) and exit with ``exit_code``."""
    report_error(*error_fields(error, code))
    raise SystemExit(exit_code)


def warn(text: str) -> None:
    """One plain ``warning: ...`` line on stderr (also under ``--json``: stdout stays machine-readable)."""
    sys.stderr.write(f"warning: {one_line(text)}\n")
    sys.stderr.flush()


def note(text: str) -> None:
    """One plain informational line on stderr (no markup: the text may hold brackets)."""
    sys.stderr.write(one_line(text) + "\n")
    sys.stderr.flush()
