"""Owner-only files. Trip logs, replay outputs (reports, spoken WAVs, annotated videos, summaries,
MCAPs) and detection outputs hold what the driver said, where the car was and what the camera saw,
so everything the assistant writes about a trip goes through here: files are created 0600 and the
folders this module creates 0700. Folders that already exist are left as they are (the owner chose
them); files we write are made owner-only even when they existed before.

Writers we do not control (OpenCV's video writer, an ffmpeg subprocess) write into a folder made
here and the file is then :func:`restrict` -ed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_dirs(path: Path | str) -> Path:
    """Create ``path`` and any missing parents owner-only (0700); existing folders are untouched."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile (another process); not ours to change
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask; make it exact
    return path


def open_fd(path: Path | str, flags: int) -> int:
    """``os.open`` with O_CREAT and mode 0600, the parents made by :func:`make_dirs`; a file that
    already existed is made 0600 too."""
    path = Path(path)
    make_dirs(path.parent)
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def open_file(path: Path | str, mode: str = "w", encoding: str | None = None, exclusive: bool = False) -> IO[Any]:
    """Open for writing owner-only: ``mode`` is ``w``/``a`` (text) or ``wb``/``ab`` (binary)."""
    if mode not in ("w", "a", "wb", "ab"):
        raise ValueError(f"private.open_file writes only (w, a, wb, ab), not {mode!r}")
    flags = os.O_WRONLY | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC) | (os.O_EXCL if exclusive else 0)
    fd = open_fd(path, flags)
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding=encoding or "utf-8")


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to an owner-only file (replacing its content)."""
    with open_file(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to an owner-only file (replacing its content)."""
    with open_file(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def restrict(path: Path | str) -> Path:
    """Make a file another writer produced owner-only (0600); a missing file is left missing."""
    path = Path(path)
    if path.is_file():
        os.chmod(path, FILE_MODE)
    return path


# --- positions in what is written about a trip ---------------------------------------------------

COARSE_DEG = 0.01
"""``coarse`` positions are rounded to this many degrees (about 1.1 km of latitude, 0.7 km of
longitude at 50 deg N): the town and district stay, the street does not."""


def coarse_position(lat: float | None, lon: float | None, mode: str) -> tuple[float | None, float | None]:
    """A position as ``route.log_position`` lets it be written: ``exact``, ``coarse`` or ``off`` (None)."""
    if lat is None or lon is None or mode == "exact":
        return lat, lon
    if mode == "off":
        return None, None
    return round(round(lat / COARSE_DEG) * COARSE_DEG, 2), round(round(lon / COARSE_DEG) * COARSE_DEG, 2)


def position_filter(write: Any, mode: str) -> Any:
    """A trip-log sink that coarsens or drops the positions of the envelopes it writes (the
    ``vehicle`` topic's VehicleState is the only message with a position); ``exact``: ``write`` itself."""
    if mode == "exact":
        return write
    import dataclasses

    def sink(env: Any) -> None:
        msg = env.msg
        if hasattr(msg, "lat") and hasattr(msg, "lon") and dataclasses.is_dataclass(msg):
            lat, lon = coarse_position(msg.lat, msg.lon, mode)
            if (lat, lon) != (msg.lat, msg.lon):
                env = dataclasses.replace(env, msg=dataclasses.replace(msg, lat=lat, lon=lon))
        write(env)

    return sink

