"""The trip log: JSON Lines, a provenance header first, then one record per logged envelope.

Each record is written with a single ``write`` system call on an ``O_APPEND`` descriptor as soon
as it is appended, so a crash or ``kill -9`` of the process loses nothing already appended (the
kernel holds it). The file is owner-only (0600, :mod:`vehicle_assist.private`): it holds what the
driver said and where the car was. ``fsync=True`` also forces it to the disk (survives power loss; costs a disk
flush per record). ``seq`` must strictly increase. The reader tolerates a truncated last line
(the process died mid-write) and lines in the middle that are not records (corruption, a stray
write): it skips them, reads on, and reports them (``Records.skipped``) instead of failing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from vehicle_assist import clock as clock_mod
from vehicle_assist import paths, private
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import Envelope, envelope_record, from_record

FORMAT = "vehicle_assist.triplog/1"
FINGERPRINT_CHUNK = 1 << 20


class TripLogError(CodedError):
    """A trip log cannot be written or read; ``code`` is stable, the message says what and where."""


# --- provenance -------------------------------------------------------------------------------


def fingerprint(path: Path, chunk: int = FINGERPRINT_CHUNK) -> str:
    """Quick content fingerprint of a model file or folder: sha256 over size + first and last MiB.

    A full sha256 of a 100 MB model takes about a second on this CPU; this reads 2 MiB per file.
    Folders (CT2, sentence-transformers) combine their files' fingerprints in path order.
    """
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(path) if f != path else ''}\0{size}\0".encode())
        with f.open("rb") as fh:
            h.update(fh.read(chunk))
            if size > chunk:
                fh.seek(max(chunk, size - chunk))
                h.update(fh.read(chunk))
    return "sha256-ht1m:" + h.hexdigest()


def git_revision(root: Path | None = None) -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes; ``{"commit": None}`` without git."""
    root = root or paths.home()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def config_hash(config: Any) -> str:
    """sha256 of the config's canonical JSON (a pydantic model or plain data)."""
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def provenance(config: Any = None, models: dict[str, Path] | None = None, **extra: Any) -> dict[str, Any]:
    """The header record: format, creation time, git revision, config hash, model fingerprints."""
    header: dict[str, Any] = {
        "type": "header",
        "format": FORMAT,
        "created_unix": round(clock_mod.unix_time(), 3),
        "git": git_revision(),
        "config_hash": config_hash(config) if config is not None else None,
        "models": {},
    }
    for role, p in (models or {}).items():
        p = Path(p)
        if p.exists():
            size = p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            header["models"][role] = {"path": str(p), "bytes": size, "fingerprint": fingerprint(p)}
        else:
            header["models"][role] = {"path": str(p), "bytes": None, "fingerprint": None}
    header.update(extra)
    return header


# --- writing ----------------------------------------------------------------------------------


def check_new(path: Path | str) -> None:
    """Raise :class:`TripLogError` now if no new trip log can be created at ``path`` (it exists: a
    trip log is never overwritten; or its folder cannot be made), before anything else is opened."""
    path = Path(path)
    if path.exists():
        raise TripLogError("exists", f"{path} already exists; a trip log is never overwritten")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TripLogError("open-failed", f"cannot create {path}: {err.strerror or err}") from err
    if not os.access(path.parent, os.W_OK):
        raise TripLogError("open-failed", f"cannot create {path}: {path.parent} is not writable")


class TripLog:
    """Append-only JSON Lines writer: header first, then envelopes with strictly increasing seq."""

    def __init__(self, path: Path | str, header: dict[str, Any], fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.count = 0
        self.last_seq: int | None = None
        self._lock = threading.Lock()
        try:
            self._fd: int | None = private.open_fd(self.path, os.O_WRONLY | os.O_EXCL | os.O_APPEND)  # owner-only
        except FileExistsError:
            raise TripLogError("exists", f"{self.path} already exists; a trip log is never overwritten") from None
        except OSError as err:
            raise TripLogError("open-failed", f"cannot create {self.path}: {err.strerror}") from err
        self._write({"type": "header", "format": FORMAT, **header})

    def append(self, env: Envelope) -> None:
        """Write one envelope now (one write call; fsync if configured). Raises if seq does not increase."""
        with self._lock:
            if self.last_seq is not None and env.seq <= self.last_seq:
                raise TripLogError("seq-not-increasing",
                                   f"seq {env.seq} after {self.last_seq} on topic '{env.topic}'")
            self._write(envelope_record(env))
            self.last_seq = env.seq
            self.count += 1

    def _write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise TripLogError("closed", f"{self.path} is closed")
        data = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        if self.fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        """Flush to disk and close; appending afterwards is an error."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> TripLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_path(directory: Path | str, prefix: str = "trip") -> Path:
    """A fresh file name under ``directory`` (relative to VA_HOME), from the wall-clock time."""
    base = paths.resolve(directory)
    stamp = datetime.fromtimestamp(clock_mod.unix_time(), timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = base / f"{prefix}-{stamp}.jsonl"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{prefix}-{stamp}-{n}.jsonl"
    return path


# --- reading ----------------------------------------------------------------------------------


def record_problem(rec: Any) -> str | None:
    """Why a parsed line is not a trip-log record (None when it is): a JSON object with an integer
    ``seq`` and ``t_ns``, a string ``topic`` and a ``msg``."""
    if not isinstance(rec, dict):
        return f"not a record (a JSON {type(rec).__name__}, expected an object)"
    for key, kind in (("seq", int), ("t_ns", int), ("topic", str)):
        value = rec.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{key} is {'missing' if key not in rec else type(value).__name__ + ' ' + repr(value)[:30]}, expected {kind.__name__}"
    if "msg" not in rec:
        return "no msg"
    return None


@dataclass
class Records:
    """Iterator over a trip log's records (dicts). After iteration, ``truncated`` says whether the
    last line was cut off mid-write (it is skipped), ``count`` how many records were read and
    ``skipped`` which lines in the middle were left out, as ``(line number, why)``: a line that is
    not JSON, or not a record (see :func:`record_problem`). Reading goes on past them."""

    path: Path
    start: int
    count: int = 0
    truncated: bool = False
    truncated_bytes: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.count, self.truncated, self.truncated_bytes, self.skipped = 0, False, 0, []
        with self.path.open("rb") as fh:
            fh.seek(self.start)
            lineno = 1
            for raw in fh:
                lineno += 1
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except ValueError:
                    if not raw.endswith(b"\n"):  # only the last line can lack its newline
                        self.truncated, self.truncated_bytes = True, len(raw)
                        return
                    self.skipped.append((lineno, "not JSON"))
                    continue
                why = record_problem(rec)
                if why:
                    self.skipped.append((lineno, why))
                    continue
                self.count += 1
                yield rec

    def problems(self, limit: int = 3) -> str | None:
        """One line on what was left out (None when nothing was): skipped lines, a cut-off last line."""
        parts = []
        if self.skipped:
            first = "; ".join(f"line {n}: {why}" for n, why in self.skipped[:limit])
            more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
            parts.append(f"{len(self.skipped)} line(s) of {self.path} are not trip-log records and were skipped "
                         f"({first}{more})")
        if self.truncated:
            parts.append(f"the last line of {self.path} ({self.truncated_bytes} bytes) was cut off mid-write "
                         "(the process died); it was skipped")
        return "; ".join(parts) or None


def read(path: Path | str) -> tuple[dict[str, Any], Records]:
    """Open a trip log: its header, and an iterator over its records (lazy; see :class:`Records`)."""
    path = Path(path)
    if not path.is_file():
        raise TripLogError("not-found", f"no trip log at {path}")
    try:
        with path.open("rb") as fh:
            first = fh.readline()
            start = fh.tell()
    except OSError as err:
        raise TripLogError("unreadable", f"cannot read {path}: {err.strerror or err}") from err
    try:
        header = json.loads(first)
    except ValueError:
        raise TripLogError("no-header", f"{path}: the first line is not a JSON header") from None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise TripLogError("no-header", f"{path}: the first line is not a trip-log header")
    if header.get("format") != FORMAT:
        raise TripLogError("format", f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
    return header, Records(path, start)


def envelope_of(record: dict[str, Any]) -> Envelope:
    """A record back as an Envelope with its typed message (arrays come back as None)."""
    return Envelope(record["topic"], record["t_ns"], record["seq"], from_record(record["msg"]), record.get("proc_ns"))
