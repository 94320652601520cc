"""``vehicle-assist``: one command-line entry point, one module per command.

Each command lives in ``vehicle_assist/commands/<name>.py`` and exposes ``register(app)``.
The table below is the whole command surface; heavy libraries are imported inside the commands,
so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from vehicle_assist.config import ConfigError

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

app = typer.Typer(
    name="vehicle-assist",
    help="Offline onboard driving assistant: watches the road, listens to the driver, "
    "answers from the Highway Code, speaks short advisories. Every command has --json.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    """Console-script entry point: config errors become one clear line and exit code 2."""
    try:
        app()
    except ConfigError as err:
        typer.echo(f"config error: {err}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
