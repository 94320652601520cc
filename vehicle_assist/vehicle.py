"""Vehicle state (speed, heading, yaw rate, position, road type, weather) behind one interface.

Sources, chosen by a spec string (:func:`open_vehicle_source`):

- ``""`` / ``"none"``: nothing known (every field None).
- a telemetry file: CSV or JSON Lines with ``t`` (s) and any of ``speed`` (m/s; or ``speed_kmh`` / ``speed_mph``),
  ``heading`` (deg), ``yaw_rate`` / ``yaw_rate_dps`` (deg/s, clockwise positive), ``lat``, ``lon``,
  ``road_type``, ``weather``; empty cells are unknown.
- a comma2k19 segment folder (``processed_log/``): CAN speed, GNSS lat/lon/bearing (u-blox, else
  Qualcomm), the IMU gyro's yaw rate about the gravity axis (:func:`yaw_rate_dps`), times aligned
  to the first camera frame.
- ``obd[:PORT]``: live OBD-II speed through python-obd; ``gpsd[:HOST[:PORT]]``: live GNSS fixes
  from a gpsd daemon (its JSON protocol over TCP). Both report unknown cleanly when the library,
  the adapter or the daemon is absent.
- ``A+B``: several sources merged field by field (the first that knows a field wins).

File sources interpolate (headings along the shorter arc) and map file time 0 to ``start_ns`` of
the run's clock. Unknown is always ``None``, never 0: outside a file's time range (beyond
``hold_s``), across a gap longer than ``max_gap_s``, or when a live sample is older than ``max_age_s``.
"""

from __future__ import annotations

import csv
import json
import math
import socket
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from vehicle_assist import paths
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import VehicleState

NUMERIC = ("speed_mps", "heading_deg", "lat", "lon", "yaw_rate_dps")
CATEGORICAL = ("road_type", "weather")
_COLUMNS = {"speed": "speed_mps", "speed_mps": "speed_mps", "heading": "heading_deg", "heading_deg": "heading_deg",
            "lat": "lat", "lon": "lon", "road_type": "road_type", "weather": "weather",
            "yaw_rate": "yaw_rate_dps", "yaw_rate_dps": "yaw_rate_dps"}
# speed in other units: column -> (field, conversion to m/s, rank: m/s wins, then km/h, then mph)
_UNITS: dict[str, tuple[str, Callable[[float], float], int]] = {
    "speed_kmh": ("speed_mps", lambda v: v / 3.6, 1), "speed_mph": ("speed_mps", lambda v: v * 0.44704, 2)}


class VehicleError(CodedError):
    """A vehicle source cannot be opened; ``code`` is stable, the message names the file and line.

    Format errors also carry ``file``, ``position`` (``line 3: speed``) and ``expected`` separately,
    so a caller can report them in its own layout (the replay's :class:`DriveError` does).
    """

    def __init__(self, code: str, message: str, file: Path | None = None, position: str | None = None,
                 expected: str | None = None) -> None:
        super().__init__(code, message)
        self.file, self.position, self.expected = file, position, expected


@dataclass(frozen=True)
class SourceStatus:
    """Whether a source delivers anything, and why not."""

    name: str
    available: bool
    detail: str


@runtime_checkable
class VehicleSource(Protocol):
    """Anything that can say what is known of the vehicle at a time of the run's clock."""

    name: str

    def state_at(self, t_ns: int) -> VehicleState:
        """The state at ``t_ns`` (run clock); unknown fields are None."""

    def status(self) -> SourceStatus:
        """Whether the source delivers data, with a human-readable reason."""

    def close(self) -> None:
        """Release devices and threads."""


# --- pure interpolation -----------------------------------------------------------------------


def interp_at(t_ns: int, ts: np.ndarray, vs: np.ndarray, max_gap_ns: int, hold_ns: int,
              angle: bool = False) -> float | None:
    """Value of a sampled signal at ``t_ns``: linear between samples, None where it is not known.

    ``ts`` sorted (ns), ``vs`` finite. Outside the range, the end value holds for ``hold_ns``;
    between samples further apart than ``max_gap_ns``, only ``hold_ns`` from either end is known.
    ``angle=True`` interpolates degrees along the shorter arc, in [0, 360).
    """
    n = len(ts)
    if n == 0:
        return None
    i = int(np.searchsorted(ts, t_ns, side="right"))
    if i == 0:
        return float(vs[0]) if ts[0] - t_ns <= hold_ns else None
    if i == n:
        return float(vs[-1]) if t_ns - ts[-1] <= hold_ns else None
    t0, t1, v0, v1 = int(ts[i - 1]), int(ts[i]), float(vs[i - 1]), float(vs[i])
    if t1 - t0 > max_gap_ns:
        if t_ns - t0 <= hold_ns:
            return v0
        return v1 if t1 - t_ns <= hold_ns else None
    w = (t_ns - t0) / (t1 - t0) if t1 > t0 else 0.0
    if angle:
        d = (v1 - v0 + 180.0) % 360.0 - 180.0
        return (v0 + w * d) % 360.0
    return v0 + w * (v1 - v0)


def step_at(t_ns: int, ts: np.ndarray, vs: list[str | None], hold_ns: int) -> str | None:
    """A held (step) signal at ``t_ns``: the last value at or before it (None before the first
    sample, or more than ``hold_ns`` after the last)."""
    i = int(np.searchsorted(ts, t_ns, side="right"))
    if i == 0 or (i == len(ts) and t_ns - ts[-1] > hold_ns):
        return None
    return vs[i - 1]


# --- recorded telemetry -----------------------------------------------------------------------


class TrackSource:
    """Recorded telemetry (per-field sample arrays) replayed against the run's clock."""

    def __init__(self, name: str, numeric: dict[str, tuple[np.ndarray, np.ndarray]],
                 categorical: dict[str, tuple[np.ndarray, list[str | None]]] | None = None,
                 start_ns: int = 0, max_gap_s: float = 2.5, hold_s: float = 0.5, detail: str = "") -> None:
        self.name = name
        self.numeric = numeric
        self.categorical = categorical or {}
        self.start_ns = start_ns
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.hold_ns = int(hold_s * 1e9)
        self.detail = detail
        ends = [ts[-1] for ts, _ in numeric.values() if len(ts)] + [ts[-1] for ts, _ in self.categorical.values() if len(ts)]
        self.duration_s = (max(ends) / 1e9) if ends else 0.0

    def state_at(self, t_ns: int) -> VehicleState:
        """Interpolated state at ``t_ns`` of the run clock (file time = ``t_ns - start_ns``)."""
        rel = t_ns - self.start_ns
        values: dict[str, Any] = {}
        for key, (ts, vs) in self.numeric.items():
            values[key] = interp_at(rel, ts, vs, self.max_gap_ns, self.hold_ns, angle=key == "heading_deg")
        for key, (ts, cats) in self.categorical.items():
            values[key] = step_at(rel, ts, cats, self.hold_ns)
        return VehicleState(t_ns=t_ns, source=self.name, **values)

    def status(self) -> SourceStatus:
        """Always available (the file was read at opening)."""
        return SourceStatus(self.name, True, self.detail)

    def close(self) -> None:
        """Nothing to release."""


def _series(t_s: np.ndarray, v: np.ndarray, t0_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Drop non-finite samples, sort by time, convert seconds (from ``t0_s``) to int ns."""
    t_s = np.asarray(t_s, dtype=np.float64).reshape(-1)
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    keep = np.isfinite(t_s) & np.isfinite(v)
    order = np.argsort(t_s[keep], kind="stable")
    return np.round((t_s[keep][order] - t0_s) * 1e9).astype(np.int64), v[keep][order]


def load_telemetry_file(path: Path, start_ns: int = 0, **kw: Any) -> TrackSource:
    """Read a CSV or JSON Lines telemetry file into a TrackSource; bad rows name their line."""
    rows = list(read_rows(path))
    if not rows:
        raise VehicleError("telemetry-empty", f"{path}: no samples")
    t = np.array([r[1]["t"] for r in rows], dtype=np.float64)
    if np.any(np.diff(t) < 0):
        bad = int(np.argmax(np.diff(t) < 0)) + 1
        raise VehicleError("telemetry-bad", f"{path}:{rows[bad][0]}: t={t[bad]} goes backwards")
    t0 = float(t[0])
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    categorical: dict[str, tuple[np.ndarray, list[str | None]]] = {}
    for key in NUMERIC:
        vals = [(r[1]["t"], r[1][key]) for r in rows if r[1].get(key) is not None]
        if vals:
            numeric[key] = _series(np.array([a for a, _ in vals]), np.array([b for _, b in vals]), t0)
    for key in CATEGORICAL:
        if any(r[1].get(key) is not None for r in rows):
            categorical[key] = (np.round((t - t0) * 1e9).astype(np.int64), [r[1].get(key) for r in rows])
    detail = f"{path.name}: {len(rows)} samples, {t[-1] - t0:.1f} s, fields {sorted(numeric) + sorted(categorical)}"
    return TrackSource(f"file:{path.name}", numeric, categorical, start_ns=start_ns, detail=detail, **kw)


def read_rows(path: Path, fmt: str | None = None, strict: bool = False):
    """Yield ``(line_number, {field: value})`` from a CSV or JSONL telemetry table (``fmt`` ``csv`` /
    ``jsonl``, else from the suffix), with units and types normalised.

    Empty, null or non-finite values are left out (unknown, never 0). ``strict`` rejects columns
    that are not telemetry fields instead of ignoring them.
    """
    fmt = fmt or {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(path.suffix.lower())
    if fmt not in ("csv", "jsonl"):
        raise VehicleError("telemetry-format", f"{path}: expected .csv or .jsonl", path, "(file name)",
                           "a .csv or .jsonl file")
    try:
        fh = path.open(encoding="utf-8", newline="")
    except OSError as err:
        raise VehicleError("telemetry-unreadable", f"{path}: {err.strerror}", path, "(file)",
                           f"a readable file ({err.strerror})") from err
    with fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "t" not in reader.fieldnames:
                raise VehicleError("telemetry-bad", f"{path}: needs a 't' column (got {reader.fieldnames})", path,
                                   "line 1", f"a header with a 't' column (got {reader.fieldnames})")
            for row in reader:
                yield reader.line_num, _normalise(row, path, reader.line_num, strict)
        else:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise VehicleError("telemetry-bad", f"{path}:{lineno}: not JSON", path,
                                       f"line {lineno}, column {err.colno}", f"one JSON object per line ({err.msg})") from None
                if not isinstance(row, dict):
                    raise VehicleError("telemetry-bad", f"{path}:{lineno}: needs an object with 't'", path,
                                       f"line {lineno}", "a JSON object")
                if "t" not in row:
                    raise VehicleError("telemetry-bad", f"{path}:{lineno}: needs an object with 't'", path,
                                       f"line {lineno}: t", "a time in seconds")
                yield lineno, _normalise(row, path, lineno, strict)


def _normalise(row: dict[str, Any], path: Path, lineno: int, strict: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(row.items(), key=lambda kv: _UNITS[kv[0]][2] if kv[0] in _UNITS else 0):
        if key is None:
            if strict:
                raise VehicleError("telemetry-bad", f"{path}:{lineno}: more cells than columns", path,
                                   f"line {lineno}", "no more cells than the header has columns")
            continue
        key = key.strip()
        if strict and key != "t" and key not in _COLUMNS and key not in _UNITS:
            known = sorted({"t", *_COLUMNS, *_UNITS})
            raise VehicleError("telemetry-bad", f"{path}:{lineno}: unknown column {key!r}", path,
                               f"line {lineno}: {key}", f"one of the columns {known}")
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None):
            continue
        name, convert, _ = _UNITS.get(key, (_COLUMNS.get(key, key), float, 0))
        if key == "t" or name in NUMERIC:
            try:
                value = convert(float(value))
            except (TypeError, ValueError):
                raise VehicleError("telemetry-bad", f"{path}:{lineno}: {key}={value!r} is not a number", path,
                                   f"line {lineno}: {key}", f"a number (got {value!r})") from None
            if not math.isfinite(value):
                continue
        elif name in CATEGORICAL:
            value = str(value)
        else:
            continue
        out.setdefault(name, value)
    if "t" not in out:
        raise VehicleError("telemetry-bad", f"{path}:{lineno}: no time 't'", path, f"line {lineno}: t", "a time in seconds")
    return out


def yaw_rate_dps(gyro: np.ndarray, accel: np.ndarray) -> np.ndarray:
    """Yaw rate (deg/s, clockwise positive seen from above, as compass headings grow) of an IMU.

    ``gyro`` (Nx3, rad/s) and ``accel`` (Nx3, m/s^2) in the sensor's frame, whatever its mounting:
    up is the direction of the mean specific force (the reaction to gravity, as the vehicle's
    accelerations average out), and the rotation about up is ``gyro . up``, counter-clockwise
    positive by the right-hand rule, so its negation is clockwise positive.
    """
    up = np.asarray(accel, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    norm = float(np.linalg.norm(up))
    if not math.isfinite(norm) or norm == 0.0:
        return np.full(len(gyro), np.nan)
    return -np.degrees(np.asarray(gyro, dtype=np.float64).reshape(-1, 3) @ (up / norm))


def load_comma2k19(folder: Path, start_ns: int = 0, **kw: Any) -> TrackSource:
    """A comma2k19 segment: CAN speed (m/s), GNSS lat/lon/bearing, IMU yaw rate; t=0 at the first
    camera frame."""
    proc = folder / "processed_log"

    def pair(rel: str) -> tuple[np.ndarray, np.ndarray] | None:
        d = proc / rel
        if not (d / "t").is_file() or not (d / "value").is_file():
            return None
        try:
            return np.load(d / "t"), np.load(d / "value")
        except (OSError, ValueError) as err:
            raise VehicleError("telemetry-bad", f"{d}: unreadable numpy array ({err})", d, "(header)",
                               f"a numpy array ({err})") from err

    speed = pair("CAN/speed")
    gnss, gnss_name = None, ""
    for name in ("live_gnss_ublox", "live_gnss_qcom"):
        gnss = pair(f"GNSS/{name}")
        if gnss is not None and gnss[1].ndim == 2 and gnss[1].shape[1] >= 6:
            gnss_name = name
            break
        gnss = None
    if speed is None and gnss is None:
        raise VehicleError("telemetry-bad", f"{folder}: no processed_log/CAN/speed nor GNSS/live_gnss_*", folder,
                           "processed_log", "CAN/speed or GNSS/live_gnss_* t and value arrays")
    frames = comma2k19_frame_times(folder)
    starts = [float(p[0][0]) for p in (speed, gnss) if p is not None and len(p[0])]
    t0 = float(frames[0]) if frames is not None else min(starts)
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if speed is not None:
        numeric["speed_mps"] = _series(speed[0], speed[1][:, 0] if speed[1].ndim == 2 else speed[1], t0)
    if gnss is not None:
        t, v = gnss  # columns: lat (deg), lon (deg), speed (m/s), utc (s), altitude (m), bearing (deg)
        numeric["lat"] = _series(t, v[:, 0], t0)
        numeric["lon"] = _series(t, v[:, 1], t0)
        numeric["heading_deg"] = _series(t, v[:, 5], t0)
        if speed is None:
            numeric["speed_mps"] = _series(t, v[:, 2], t0)
    gyro, accel = pair("IMU/gyro"), pair("IMU/accelerometer")
    if gyro is not None and accel is not None and gyro[1].ndim == 2 and accel[1].ndim == 2:
        numeric["yaw_rate_dps"] = _series(gyro[0], yaw_rate_dps(gyro[1], accel[1]), t0)
    parts = [f"speed {len(numeric['speed_mps'][0])} samples ({'CAN' if speed is not None else 'GNSS'})"]
    if gnss is not None:
        parts.append(f"GNSS {len(numeric['lat'][0])} fixes ({gnss_name})")
    if "yaw_rate_dps" in numeric:
        parts.append(f"gyro {len(numeric['yaw_rate_dps'][0])} samples (yaw rate)")
    source = TrackSource(f"comma2k19:{folder.name}", numeric, start_ns=start_ns, **kw)
    source.detail = f"{folder.name}: " + ", ".join(parts) + f", {source.duration_s:.1f} s"
    return source


def comma2k19_frame_times(folder: Path) -> np.ndarray | None:
    """The segment's camera frame times (s, log clock) from ``global_pose/frame_times``; None if absent."""
    path = folder / "global_pose" / "frame_times"
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False).reshape(-1)
    except (OSError, ValueError) as err:
        raise VehicleError("telemetry-bad", f"{path}: unreadable numpy array ({err})", path, "(header)",
                           f"a numpy array ({err})") from err


# --- nothing known ----------------------------------------------------------------------------


class UnknownSource:
    """No vehicle data: every field is unknown (None), with the reason in ``status``."""

    def __init__(self, name: str = "none", reason: str = "no vehicle source configured") -> None:
        self.name = name
        self.reason = reason

    def state_at(self, t_ns: int) -> VehicleState:
        """All fields None."""
        return VehicleState(t_ns=t_ns, source=self.name)

    def status(self) -> SourceStatus:
        """Never available."""
        return SourceStatus(self.name, False, self.reason)

    def close(self) -> None:
        """Nothing to release."""


# --- live sources -----------------------------------------------------------------------------


class LiveSource:
    """A device read by a daemon thread; ``state_at`` returns its latest sample while fresh."""

    def __init__(self, name: str, now_ns: Callable[[], int], max_age_s: float = 2.0) -> None:
        self.name = name
        self._now_ns = now_ns
        self.max_age_ns = int(max_age_s * 1e9)
        self._lock = threading.Lock()
        self._sample: dict[str, Any] = {}
        self._sample_t: int | None = None
        self._status = SourceStatus(name, False, "starting")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self, target: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=target, name=f"vehicle-{self.name}", daemon=True)
        self._thread.start()

    def _set(self, **values: Any) -> None:
        """Record a fresh sample (fields absent from it stay unknown)."""
        with self._lock:
            self._sample = {k: v for k, v in values.items() if v is not None}
            self._sample_t = self._now_ns()

    def _set_status(self, available: bool, detail: str) -> None:
        self._status = SourceStatus(self.name, available, detail)

    def state_at(self, t_ns: int) -> VehicleState:
        """The latest sample if younger than ``max_age_s`` at ``t_ns``, else unknown."""
        with self._lock:
            if self._sample_t is None or abs(t_ns - self._sample_t) > self.max_age_ns:
                return VehicleState(t_ns=t_ns, source=self.name)
            return VehicleState(t_ns=t_ns, source=self.name, **self._sample)

    def status(self) -> SourceStatus:
        """Connected or not, and why."""
        return self._status

    def close(self) -> None:
        """Stop the reader thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


class ObdSource(LiveSource):
    """Ego speed from an OBD-II adapter through python-obd (optional; unknown when absent)."""

    def __init__(self, port: str | None, now_ns: Callable[[], int], poll_hz: float = 5.0, max_age_s: float = 2.0) -> None:
        super().__init__("obd", now_ns, max_age_s)
        self.port = port
        self.poll_s = 1.0 / poll_hz
        try:
            import obd  # noqa: F401  (optional dependency)
        except ImportError:
            self._set_status(False, "python-obd is not installed (pip install obd); speed unknown")
            return
        self._start(self._run)

    def _run(self) -> None:
        import obd

        try:
            conn = obd.OBD(self.port, fast=False, timeout=1.0)
        except Exception as err:  # python-obd raises serial errors of its own
            self._set_status(False, f"OBD-II adapter failed to open ({err}); speed unknown")
            return
        if not conn.is_connected():
            self._set_status(False, f"no OBD-II adapter found (port {self.port or 'auto'}); speed unknown")
            return
        self._set_status(True, f"OBD-II on {conn.port_name()}")
        while not self._stop.wait(self.poll_s):
            resp = conn.query(obd.commands.SPEED)
            if not resp.is_null():
                self._set(speed_mps=float(resp.value.to("m/s").magnitude))
        conn.close()


def parse_gpsd(line: bytes | str) -> dict[str, float] | None:
    """Fields of a gpsd TPV report with a 2D/3D fix (lat, lon, speed m/s, heading deg); else None."""
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("class") != "TPV" or int(msg.get("mode", 0)) < 2:
        return None
    out = {"lat": msg.get("lat"), "lon": msg.get("lon"), "speed_mps": msg.get("speed"), "heading_deg": msg.get("track")}
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and math.isfinite(v)}


class GpsdSource(LiveSource):
    """Position, heading and ground speed from a gpsd daemon (JSON over TCP); unknown when absent."""

    def __init__(self, host: str, port: int, now_ns: Callable[[], int], max_age_s: float = 2.0,
                 retry_s: float = 5.0) -> None:
        super().__init__("gpsd", now_ns, max_age_s)
        self.host, self.port, self.retry_s = host, port, retry_s
        self._sock: socket.socket | None = None
        self._start(self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=2.0) as sock:
                    self._sock = sock
                    sock.sendall(b'?WATCH={"enable":true,"json":true}\n')
                    self._set_status(True, f"gpsd at {self.host}:{self.port}")
                    self._read(sock)
            except OSError as err:
                self._set_status(False, f"no gpsd at {self.host}:{self.port} ({err.strerror or err}); position unknown")
            self._stop.wait(self.retry_s)

    def _read(self, sock: socket.socket) -> None:
        sock.settimeout(1.0)
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionResetError("gpsd closed the connection")
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                fix = parse_gpsd(line)
                if fix:
                    self._set(**fix)


class MergedSource:
    """Several sources, field by field: the first one that knows a field wins."""

    def __init__(self, sources: list[VehicleSource]) -> None:
        self.sources = sources
        self.name = "+".join(s.name for s in sources)

    def state_at(self, t_ns: int) -> VehicleState:
        """Each field from the first source that knows it."""
        states = [s.state_at(t_ns) for s in self.sources]
        values = {}
        for f in fields(VehicleState):
            if f.name in ("t_ns", "source"):
                continue
            values[f.name] = next((getattr(st, f.name) for st in states if getattr(st, f.name) is not None), None)
        return VehicleState(t_ns=t_ns, source=self.name, **values)

    def status(self) -> SourceStatus:
        """Available if any part is; the detail lists each part."""
        parts = [s.status() for s in self.sources]
        return SourceStatus(self.name, any(p.available for p in parts), "; ".join(f"{p.name}: {p.detail}" for p in parts))

    def close(self) -> None:
        """Close every part."""
        for s in self.sources:
            s.close()


# --- opening by spec --------------------------------------------------------------------------


def open_vehicle_source(spec: str | None, now_ns: Callable[[], int] | None = None, start_ns: int = 0) -> VehicleSource:
    """A source from a spec (see the module docstring). ``now_ns`` (the run clock) stamps live
    samples; ``start_ns`` is the run time at which a recorded file's t=0 plays."""
    spec = (spec or "").strip()
    if spec in ("", "none"):
        return UnknownSource()
    if "+" in spec:
        return MergedSource([open_vehicle_source(p, now_ns, start_ns) for p in spec.split("+")])
    kind, _, rest = spec.partition(":")
    if kind in ("obd", "gpsd"):
        if now_ns is None:
            raise ValueError(f"live vehicle source '{spec}' needs the run clock (now_ns)")
        if kind == "obd":
            return ObdSource(rest or None, now_ns)
        host, _, port = (rest or "localhost").partition(":")
        return GpsdSource(host or "localhost", int(port or 2947), now_ns)
    path = paths.resolve(rest if kind == "file" else spec)
    if path.is_dir():
        if (path / "processed_log").is_dir():
            return load_comma2k19(path, start_ns)
        raise VehicleError("telemetry-format", f"{path}: a folder, but not a comma2k19 segment (no processed_log/)")
    if not path.is_file():
        raise VehicleError("telemetry-not-found", f"no telemetry at {path} (spec '{spec}')")
    return load_telemetry_file(path, start_ns)


async def publish_states(bus: Any, source: VehicleSource, rate_hz: float) -> None:
    """Publish ``source``'s state on the bus's ``vehicle`` topic every ``1 / rate_hz`` of its clock, until cancelled."""
    while True:
        bus.publish("vehicle", source.state_at(bus.clock.now_ns()))
        await bus.clock.sleep(1.0 / rate_hz)
