"""``vehicle-assist``: one command-line entry point, one module per command.

Each command lives in ``vehicle_assist/commands/<name>.py`` and exposes ``register(app)``.
The table below is the whole command surface; heavy libraries are imported inside the commands,
so ``--help`` is instant.

Errors leave in one form (see ``commands/_out.py``): ``error: [code] message`` on one line of
stderr, or under ``--json`` one JSON object ``{"error": {"code", "message"}}`` on stdout. The group
class :class:`Cli` applies it to what happens around a command: usage errors (code ``usage``, exit
2), an argument that is not UTF-8 (``bad-argument``, exit 2), a bad config file or ``VA_*``
variable (``config``, exit 2) and a coded error a command did not handle itself (its code, exit 2).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any, Sequence

import typer
from typer.core import TyperArgument, TyperGroup

try:  # typer vendors its own copy of click (0.2x on); older ones use click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors

from vehicle_assist.commands import _out
from vehicle_assist.config import ConfigError
from vehicle_assist.errors import CodedError

COMMANDS = (
    "doctor",
    "models",
    "fetch",
    "index",
    "ask",
    "detect",
    "listen",
    "run",
    "replay",
    "log",
    "route",
)



def wants_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output (``--json`` before any ``--``)."""
    args = list(args)
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def not_utf8(args: Sequence[str]) -> tuple[int, str] | None:
    """The first argument that is not valid UTF-8 (Python decodes such bytes to lone surrogates):
    its position (1-based) and a printable form; None when all are valid."""
    for i, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape")
            return i, raw.decode("utf-8", "backslashreplace")
    return None


class PlainArgument(TyperArgument):
    """An argument shown as click shows one: ``TARGET``, ``[QUESTION]``, ``[ROLE]...`` in the usage
    line and the Arguments list, without typer's ``{TARGET}`` and ``<str>`` type labels."""

    def _display(self) -> str:
        name = self.metavar or (self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self._display()]

    def get_help_record(self, ctx: Any) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        return None if record is None else (self._display(), record[1])


def plain_arguments(command: Any) -> None:
    """Show every argument of ``command`` and its subcommands as a :class:`PlainArgument`."""
    for param in getattr(command, "params", ()):
        if type(param) is TyperArgument:
            param.__class__ = PlainArgument
    for sub in getattr(command, "commands", {}).values():
        plain_arguments(sub)


class Cli(TyperGroup):
    """The root group: runs the command and turns the errors around it into the one error form."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        prog_name = prog_name or "vehicle-assist"  # also under `python -m vehicle_assist.cli`
        _out.set_json_errors(wants_json(args))
        plain_arguments(self)
        try:
            bad = not_utf8(args)
            if bad is not None:
                _out.fail(f"argument {bad[0]} ('{bad[1]}') is not valid UTF-8 text; "
                          "give questions, names and paths in UTF-8", 2, code="bad-argument")
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as err:  # bare group: its help, as click shows it
            if not standalone_mode:
                raise
            err.show()
            rv = err.exit_code
        except click_errors.ClickException as err:  # usage errors: unknown option, bad value, missing argument
            if not standalone_mode:
                raise
            ctx = getattr(err, "ctx", None)
            hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            _out.fail(err.format_message().rstrip(".") + hint, err.exit_code, code="usage")
        except typer.Abort:
            _out.fail("aborted", 130, code="aborted")
        except (ConfigError, CodedError) as err:  # a bad config, env variable or input nobody handled closer
            _out.fail(err, 2)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(
    cls=Cli,
    name="vehicle-assist",
    help="Offline onboard driving assistant: watches the road, listens to the driver, "
    "answers from the Highway Code, speaks short advisories. Every command has --json.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail to stderr.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


for _name in COMMANDS:
    try:
        _module = importlib.import_module(f"vehicle_assist.commands.{_name}")
    except ModuleNotFoundError as _err:  # a command whose issue has not landed yet
        if _err.name != f"vehicle_assist.commands.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console-script entry point (errors: see :class:`Cli`)."""
    app()


if __name__ == "__main__":
    main()
