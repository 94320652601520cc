"""Recorded vehicle telemetry -> :class:`VehicleState` samples in drive time.

Tables (CSV with a header, or JSON Lines) have a ``t`` column in seconds and any of: ``speed_mps``
(or ``speed_kmh`` / ``speed_mph``), ``heading_deg``, ``lat``, ``lon``, ``road_type``, ``weather``.
An empty cell or a missing column is unknown (None), never zero. The comma2k19 layout (numpy
arrays per signal) gives CAN speed and u-blox GNSS position and bearing.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from vehicle_assist.messages import VehicleState
from vehicle_assist.replay.errors import DriveError

_FLOAT_KEYS = ("speed_mps", "speed_kmh", "speed_mph", "heading_deg", "lat", "lon")
_TEXT_KEYS = ("road_type", "weather")
_KNOWN = {"t", *_FLOAT_KEYS, *_TEXT_KEYS}


def detect_format(path: Path) -> str:
    """``comma2k19`` for a folder, else from the suffix (``.csv`` / ``.jsonl``)."""
    if path.is_dir():
        return "comma2k19"
    suffix = path.suffix.lower()
    if suffix in (".csv", ".jsonl"):
        return suffix[1:]
    raise DriveError("telemetry-format", path, "(file name)", "a .csv or .jsonl file, or a comma2k19 segment folder")


def read_telemetry(path: Path, fmt: str | None = None, t_offset_s: float = 0.0,
                   rate_hz: float = 10.0) -> list[VehicleState]:
    """All samples of a telemetry source, sorted by time."""
    fmt = fmt or detect_format(path)
    if fmt == "comma2k19":
        states = read_comma2k19(path, rate_hz)
    else:
        rows = _csv_rows(path) if fmt == "csv" else _jsonl_rows(path)
        states = [_state(row, where, path) for where, row in rows]
    states = [VehicleState(**{**_fields(s), "t_ns": s.t_ns + int(round(t_offset_s * 1e9))}) for s in states]
    return sorted(states, key=lambda s: s.t_ns)


def _fields(s: VehicleState) -> dict:
    return {k: getattr(s, k) for k in VehicleState.__dataclass_fields__}


def _csv_rows(path: Path):
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "t" not in reader.fieldnames:
            raise DriveError("telemetry-invalid", path, "line 1", f"a header with a 't' column (got {reader.fieldnames})")
        for i, row in enumerate(reader, start=2):
            yield f"line {i}", row


def _jsonl_rows(path: Path):
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DriveError("telemetry-invalid", path, f"line {i}, column {err.colno}", f"one JSON object per line ({err.msg})") from err
            if not isinstance(row, dict):
                raise DriveError("telemetry-invalid", path, f"line {i}", "a JSON object")
            yield f"line {i}", row


def _state(row: dict, where: str, path: Path) -> VehicleState:
    unknown = sorted(set(row) - _KNOWN)
    if unknown:
        raise DriveError("telemetry-invalid", path, f"{where}: {unknown[0]}", f"one of the columns {sorted(_KNOWN)}")
    values: dict[str, float | None] = {}
    for key in ("t", *_FLOAT_KEYS):
        raw = row.get(key)
        if raw is None or raw == "":
            values[key] = None
            continue
        try:
            values[key] = float(raw)
        except (TypeError, ValueError):
            raise DriveError("telemetry-invalid", path, f"{where}: {key}", f"a number (got {raw!r})") from None
        if not math.isfinite(values[key]):
            values[key] = None
    if values["t"] is None:
        raise DriveError("telemetry-invalid", path, f"{where}: t", "a time in seconds")
    speed = values["speed_mps"]
    if speed is None and values["speed_kmh"] is not None:
        speed = values["speed_kmh"] / 3.6
    if speed is None and values["speed_mph"] is not None:
        speed = values["speed_mph"] * 0.44704
    text = {k: (str(row[k]) if row.get(k) not in (None, "") else None) for k in _TEXT_KEYS}
    return VehicleState(t_ns=int(round(values["t"] * 1e9)), speed_mps=speed, heading_deg=values["heading_deg"],
                        lat=values["lat"], lon=values["lon"], source=f"telemetry:{path.name}", **text)


def _load(base: Path, rel: str) -> np.ndarray:
    p = base / rel
    try:
        return np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise DriveError("telemetry-invalid", base, rel, "a numpy array file (comma2k19 layout)") from None
    except ValueError as err:
        raise DriveError("telemetry-invalid", p, "(header)", f"a numpy array ({err})") from err


def read_comma2k19(seg: Path, rate_hz: float = 10.0) -> list[VehicleState]:
    """A comma2k19 segment: CAN speed + u-blox GNSS (lat, lon, bearing) sampled at ``rate_hz``.

    Time zero is the segment's first video frame (``global_pose/frame_times[0]``).
    """
    t0 = float(_load(seg, "global_pose/frame_times")[0])
    t_end = float(_load(seg, "global_pose/frame_times")[-1])
    sp_t, sp_v = _load(seg, "processed_log/CAN/speed/t"), _load(seg, "processed_log/CAN/speed/value").reshape(-1)
    gn_t, gn_v = _load(seg, "processed_log/GNSS/live_gnss_ublox/t"), _load(seg, "processed_log/GNSS/live_gnss_ublox/value")
    if len(sp_t) != len(sp_v) or len(gn_t) != len(gn_v) or gn_v.ndim != 2 or gn_v.shape[1] < 6:
        raise DriveError("telemetry-invalid", seg, "processed_log", "t and value arrays of equal length; GNSS value with 6 columns")
    out = []
    for tick in np.arange(t0, t_end + 1e-9, 1.0 / rate_hz):
        i, j = np.searchsorted(sp_t, tick, "right") - 1, np.searchsorted(gn_t, tick, "right") - 1
        speed = float(sp_v[i]) if i >= 0 else None
        lat, lon, bearing = (float(gn_v[j, 0]), float(gn_v[j, 1]), float(gn_v[j, 5])) if j >= 0 else (None, None, None)
        out.append(VehicleState(t_ns=int(round((tick - t0) * 1e9)), speed_mps=speed, heading_deg=bearing,
                                lat=lat, lon=lon, source=f"comma2k19:{seg.name}"))
    return out
