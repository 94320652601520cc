"""The command line: every command explains itself; bad config is one clear line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vehicle_assist import cli


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "vehicle_assist.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_top_level_help_lists_commands():
    out = _run("--help")
    assert out.returncode == 0
    for name in ("doctor", "models", "fetch"):
        assert name in out.stdout


@pytest.mark.parametrize("name", [c.name for c in cli.app.registered_commands if c.name] or ["doctor"])
def test_every_command_has_help(name):
    out = _run(name, "--help")
    assert out.returncode == 0 and "--json" in out.stdout


def test_malformed_config_is_one_clear_line(va_home):
    import os

    (va_home / "configs" / "models.yaml").write_text("roles:\n  slm: {kind: x, colour: red}\n")
    out = _run("models", env={**os.environ, "VA_HOME": str(va_home)})
    assert out.returncode == 2
    assert "config error" in out.stderr and "models.yaml" in out.stderr and "colour" in out.stderr
    assert "Traceback" not in out.stderr
