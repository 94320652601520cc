"""Fix by fix: map matching + applicable limit + features ahead -> :class:`RouteContext`.

:class:`RouteTracker` is what the ``route match`` command, the runtime's route lane and the bench
all use. Reading a track file (CSV ``t,lat,lon,speed_mps`` or any telemetry ``run`` reads) into
:class:`~vehicle_assist.route.match.Fix` es is :func:`read_track`.
"""

from __future__ import annotations

import csv
import math
from collections import deque
from pathlib import Path
from typing import Iterator

import numpy as np

from vehicle_assist.config import RouteSettings
from vehicle_assist.messages import RouteContext
from vehicle_assist.route.ahead import features_ahead, lookahead_m
from vehicle_assist.route.limits import way_limits
from vehicle_assist.route.map import RoadMap, RouteTables, load_map, load_tables
from vehicle_assist.route.match import Fix, Match, Matcher, MatchSettings
from vehicle_assist.route.smooth import SmoothSettings, smooth_matches


def match_settings(s: RouteSettings) -> MatchSettings:
    """The matcher's settings; with ``match_whole_track`` its lag is the whole track."""
    lag = math.inf if s.match_whole_track else s.match_lag_s
    return MatchSettings(sigma_m=s.gps_sigma_m, radius_m=s.radius_m, beta_m=s.beta_m, step_m=s.step_m,
                         max_step_s=s.max_step_s, max_gap_s=s.max_gap_s, lag_s=lag,
                         turn_cost=s.turn_cost, turn_speed_mps=s.turn_speed_mps, minor_cost=s.minor_cost,
                         minor_classes=tuple(s.minor_classes), segs_per_way=s.segs_per_way,
                         turn_fix_sigma_m=s.turn_fix_sigma_m, hold_speed_mps=s.hold_speed_mps,
                         stand_rescore_s=s.stand_rescore_s, gyro_sigma_deg=s.gyro_sigma_deg)


class RouteTracker:
    """One map, one vehicle type; :meth:`update` turns each fix into a :class:`RouteContext`."""

    def __init__(self, rmap: RoadMap, settings: RouteSettings | None = None, tables: RouteTables | None = None) -> None:
        self.rmap = rmap
        self.settings = settings or RouteSettings()
        self.tables = tables or load_tables()
        self.limits = way_limits(rmap, self.tables, self.settings.vehicle_type, self.settings.nation)
        self.matcher = Matcher(rmap, match_settings(self.settings))
        self.last_match: Match | None = None
        self._held: deque[tuple[int, float | None]] = deque()  # (t_ns, speed) of fixes whose lagged record is not out yet
        self._track: list[tuple[float, ...]] = []  # whole track: (t, x, y, odometer, course, its sigma) per fix

    @classmethod
    def open(cls, map_path: str | Path, settings: RouteSettings | None = None) -> "RouteTracker":
        return cls(load_map(map_path), settings)

    def update(self, fix: Fix, t_ns: int | None = None) -> RouteContext:
        """The route context at this fix, decided on it and the fixes before (filtered; no lag;
        ``t_ns`` defaults to the fix's time). Use :meth:`push` or this, not both."""
        t_ns = int(round(fix.t_s * 1e9)) if t_ns is None else t_ns
        if math.isinf(self.matcher.s.lag_s):
            raise RuntimeError("a whole-track RouteTracker (route.match_whole_track) is fed with push() and flush()")
        m = self.matcher.update(fix)
        self.last_match = m
        if self.matcher.s.lag_s > 0:  # used fix by fix: the lagged answers are not wanted
            self.matcher.take_smoothed()
            self._held.clear()
        if m is None:
            return RouteContext(t_ns=t_ns)
        return self.context_of(m, fix.speed_mps, t_ns)

    def sense(self, t_s: float, speed_mps: float | None, yaw_rate_dps: float | None = None) -> None:
        """A speed / yaw-rate reading between fixes (:meth:`Matcher.sense`): dead reckoning only."""
        self.matcher.sense(t_s, speed_mps, yaw_rate_dps)

    def push(self, fix: Fix, t_ns: int | None = None) -> list[RouteContext]:
        """Fixed-lag use: the records that are final after this fix, in fix order. With the matcher's
        ``lag_s`` 0 that is this fix's :meth:`update`; with a lag a fix's record comes out once the
        matcher has seen ``lag_s`` seconds of later fixes (its place decided with them), so a record
        is ``lag_s`` to ``lag_s`` + one matching step late. :meth:`flush` at the end of a track.
        With ``match_whole_track`` (the matcher's lag infinite) every record waits for :meth:`flush`."""
        t_ns = int(round(fix.t_s * 1e9)) if t_ns is None else t_ns
        if self.matcher.s.lag_s <= 0:
            return [self.update(fix, t_ns)]
        self.last_match = self.matcher.update(fix)
        self._held.append((t_ns, fix.speed_mps))
        if math.isinf(self.matcher.s.lag_s):
            x = y = math.nan
            if fix.lat is not None and fix.lon is not None:
                x, y = (float(v) for v in self.rmap.project(fix.lat, fix.lon))
            h = self.matcher.heading or (math.nan, math.nan)
            odo = self.matcher.odometer_m
            self._track.append((fix.t_s, x, y, math.nan if odo is None else odo, h[0], h[1]))
            return []
        return self._contexts(self.matcher.take_smoothed())

    def flush(self) -> list[RouteContext]:
        """The records still held back by the lag (end of the track); with ``match_whole_track``, all
        of them, their places along the best path smoothed over the track (:mod:`~vehicle_assist.route.smooth`)."""
        if self.matcher.s.lag_s <= 0:
            return []
        matches = self.matcher.finish()
        if self._track:
            arr = np.asarray(self._track, dtype=float)
            self._track = []
            s = self.settings
            matches = smooth_matches(self.rmap, arr[:, 0], arr[:, 1:3], arr[:, 3], matches, self.matcher.route_edges,
                                     SmoothSettings(sigma_m=s.gps_sigma_m, coloured=s.gnss_coloured, tau_s=s.gnss_tau_s),
                                     heading=arr[:, 4], heading_sigma=arr[:, 5])
        return self._contexts(matches)

    def _contexts(self, matches: list[Match | None]) -> list[RouteContext]:
        out = []
        for m in matches:
            t_ns, speed = self._held.popleft()
            out.append(RouteContext(t_ns=t_ns) if m is None else self.context_of(m, speed, t_ns))
        return out

    def context_of(self, m: Match, speed_mps: float | None, t_ns: int) -> RouteContext:
        """What the map says at a matched place (pure given the map and settings)."""
        a, s = self.rmap.a, self.settings
        way = self.rmap.way_of_edge(m.edge)
        mph, source = self.limits.of(way)
        name, ref = str(a["way_name"][way]), str(a["way_ref"][way])
        lanes = int(a["way_lanes"][way])
        feats = features_ahead(self.rmap, self.limits, m.edge, m.offset_m, speed_mps,
                               s.lookahead_s, s.lookahead_min_m, s.lookahead_max_m)
        return RouteContext(
            t_ns=t_ns, way_id=int(a["way_id"][way]), road=name or ref or None, road_class=str(a["way_class"][way]),
            oneway=bool(a["way_oneway"][way] != 0), lanes=lanes if lanes > 0 else None,
            speed_limit_mph=mph, limit_source=source, features_ahead=tuple(feats),
            lookahead_m=lookahead_m(speed_mps, s.lookahead_s, s.lookahead_min_m, s.lookahead_max_m),
            distance_m=round(m.distance_m, 1))


# --- tracks ------------------------------------------------------------------------------------


class TrackError(Exception):
    """A track cannot be read; the message says which file and line."""


def read_track(path: Path) -> Iterator[Fix]:
    """Fixes from a track: a CSV with a header ``t,lat,lon[,speed_mps][,heading_deg][,yaw_rate_dps]``
    (``heading`` / ``yaw_rate`` also name those; empty cells unknown), or any telemetry ``run``
    reads (CSV/JSON Lines telemetry, a comma2k19 folder), whose position samples become fixes."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip() for c in (reader.fieldnames or [])]
            if "t" in cols and "lat" in cols and "lon" in cols:
                yield from _csv_fixes(reader, path)
                return
    yield from _telemetry_fixes(path)


def _csv_fixes(reader: csv.DictReader, path: Path) -> Iterator[Fix]:
    def num(row: dict, key: str, line: int) -> float | None:
        v = (row.get(key) or "").strip()
        if not v:
            return None
        try:
            x = float(v)
        except ValueError:
            raise TrackError(f"{path}:{line}: {key}={v!r} is not a number") from None
        return x if math.isfinite(x) else None

    for row in reader:
        row = {(k or "").strip(): v for k, v in row.items()}
        line = reader.line_num
        t = num(row, "t", line)
        if t is None:
            raise TrackError(f"{path}:{line}: no time 't'")
        speed = num(row, "speed_mps", line)
        for key, factor in (("speed", 1.0), ("speed_kmh", 1 / 3.6), ("speed_mph", 0.44704)):
            if speed is None and num(row, key, line) is not None:
                speed = num(row, key, line) * factor  # type: ignore[operator]
        yield Fix(t, num(row, "lat", line), num(row, "lon", line), speed,
                  num(row, "heading_deg", line) if "heading_deg" in row else num(row, "heading", line),
                  num(row, "yaw_rate_dps", line) if "yaw_rate_dps" in row else num(row, "yaw_rate", line))


def _telemetry_fixes(path: Path) -> Iterator[Fix]:
    import numpy as np

    from vehicle_assist.vehicle import TrackSource, VehicleError, open_vehicle_source

    try:
        src = open_vehicle_source(str(path.resolve()))
    except VehicleError as err:
        raise TrackError(str(err)) from None
    if not isinstance(src, TrackSource):
        raise TrackError(f"{path}: not a recorded track")
    if "lat" not in src.numeric or "lon" not in src.numeric:
        raise TrackError(f"{path}: the telemetry has no lat/lon")
    times = src.numeric["lat"][0]
    for t_ns in np.asarray(times, dtype=np.int64):
        st = src.state_at(int(t_ns))
        yield Fix(int(t_ns) / 1e9, st.lat, st.lon, st.speed_mps, st.heading_deg, st.yaw_rate_dps)
