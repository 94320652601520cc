"""Replay errors: every one carries a code, and format errors name the file, the position and what was expected."""

from __future__ import annotations

from pathlib import Path

from vehicle_assist.errors import CodedError


class ReplayError(CodedError):
    """A replay could not proceed. ``code`` is stable (e.g. ``drive-missing``); the message says what to do."""

    bracketed = True


class FormatError(ReplayError):
    """A file is malformed: ``str()`` gives ``[code] file: position: expected ...``."""

    def __init__(self, code: str, file: Path | str, position: str, expected: str) -> None:
        self.file, self.position, self.expected = str(file), position, expected
        super().__init__(code, f"{file}: {position}: expected {expected}")


class DriveError(FormatError):
    """A recorded drive (manifest, video, audio, telemetry, MCAP) is missing or malformed."""


class ScenarioError(FormatError):
    """A scenario file or one of its expectations is malformed."""
