"""Recorded vehicle telemetry -> :class:`VehicleState` samples in drive time.

Parsing is :mod:`vehicle_assist.vehicle`'s (one reader for the runtime and the replay): tables
(CSV with a header, or JSON Lines) have a ``t`` column in seconds and any of ``speed_mps`` (or
``speed``, ``speed_kmh``, ``speed_mph``), ``heading_deg`` (or ``heading``), ``yaw_rate_dps`` (or
``yaw_rate``; deg/s, clockwise positive), ``lat``, ``lon``, ``road_type``, ``weather``; an unknown
column is an error here. An empty cell or a missing column is unknown (None), never zero; each row
stays one sample. The comma2k19 layout (numpy arrays per signal) gives CAN speed, GNSS position and
bearing and the IMU gyro's yaw rate, held from each sample to the next.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vehicle_assist.messages import VehicleState
from vehicle_assist.replay.errors import DriveError
from vehicle_assist.vehicle import (CATEGORICAL, NUMERIC, VehicleError, comma2k19_frame_times, load_comma2k19,
                                    read_rows, step_at)

_HOLD_FOREVER_NS = 2**62  # comma2k19: the last sample of a signal holds to the end of the segment


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
        try:
            states = [_state(row, path) for _, row in read_rows(path, fmt, strict=True)]
        except VehicleError as err:
            raise _drive_error(err, path) from None
    offset_ns = int(round(t_offset_s * 1e9))
    states = [VehicleState(**{**_fields(s), "t_ns": s.t_ns + offset_ns}) for s in states]
    return sorted(states, key=lambda s: s.t_ns)


def _drive_error(err: VehicleError, path: Path) -> DriveError:
    """The vehicle reader's error in the replay's layout (file: position: expected ...)."""
    return DriveError("telemetry-invalid", err.file or path, err.position or "(contents)", err.expected or str(err))


def _fields(s: VehicleState) -> dict:
    return {k: getattr(s, k) for k in VehicleState.__dataclass_fields__}


def _state(row: dict, path: Path) -> VehicleState:
    """One parsed table row as a state; fields the row does not give are None."""
    return VehicleState(t_ns=int(round(row["t"] * 1e9)), source=f"telemetry:{path.name}",
                        **{k: row.get(k) for k in (*NUMERIC, *CATEGORICAL)})


def read_comma2k19(seg: Path, rate_hz: float = 10.0) -> list[VehicleState]:
    """A comma2k19 segment: CAN speed + GNSS (lat, lon, bearing) + gyro yaw rate sampled at ``rate_hz``.

    Time zero is the segment's first video frame (``global_pose/frame_times[0]``); each tick takes
    the last sample at or before it (None before a signal's first sample).
    """
    try:
        frames = comma2k19_frame_times(seg)
        if frames is None or len(frames) == 0:
            raise DriveError("telemetry-invalid", seg, "global_pose/frame_times", "a numpy array file (comma2k19 layout)")
        track = load_comma2k19(seg)
    except VehicleError as err:
        raise _drive_error(err, seg) from None
    t0, t_end = float(frames[0]), float(frames[-1])
    out = []
    for tick in np.arange(t0, t_end + 1e-9, 1.0 / rate_hz):
        t_ns = int(round((tick - t0) * 1e9))
        values = {}
        for key, (ts, vs) in track.numeric.items():
            v = step_at(t_ns, ts, vs, _HOLD_FOREVER_NS)
            values[key] = None if v is None else float(v)
        out.append(VehicleState(t_ns=t_ns, source=f"comma2k19:{seg.name}", **values))
    return out
