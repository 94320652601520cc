"""Synthetic drives along real roads of an OSM extract, with the truth beside every fix.

Used by the bench (bench/route.py) and by the replay scenarios (:func:`ensure`). A drive is a path of the map's directed road graph (a random
walk that prefers to stay on its road and never turns back, or a route through chosen nodes), a
speed profile that keeps to each way's applicable limit (80-95% of it, slower through sharp turns
and roundabouts; accelerations within +-2 m/s^2) except in a scripted speeding stretch, positions
at 10 Hz along the path, and GNSS noise: per axis a Gauss-Markov error (time constant 5 s, 85% of
the variance) plus white noise, with a 1-sigma of ``sigma_m`` (8-15 m in the bench). Optional: a
GPS gap (fixes with no position while the CAN speed goes on), a U-turn, a stretch far outside
the map (after a gap), where the truth is "no road", a gyro's yaw rate (:func:`gyro_yaw_rate`), and stops (``stops=True``, :func:`plan_stops`):
at traffic signals, give-way/stop lines, before turns at junctions and at crossings the car may
brake to a standstill, wait and pull away (a turn at that node is then taken from standstill); the
GNSS noise goes on evolving while it stands, with no course (below 3 m/s).

Truth per fix: way index and id, directed edge, applicable limit (mph, or None), distance to the
nearest junction node, whether it is outside the map.
"""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vehicle_assist.route.ahead import facing_features, next_edge
from vehicle_assist.route.limits import WayLimits
from vehicle_assist.route.map import RoadMap, bearing_diff_deg

MPH = 0.44704
HZ = 10.0


@dataclass
class Drive:
    name: str
    t: np.ndarray
    lat: np.ndarray          # noisy fix (NaN in a gap)
    lon: np.ndarray
    speed: np.ndarray        # m/s (CAN-like: exact)
    true_edge: np.ndarray    # -1 outside the map
    true_way: np.ndarray     # way index, -1 outside
    true_way_id: np.ndarray  # OSM id, -1 outside
    true_limit: np.ndarray   # mph, NaN where the map has none or outside
    junction_m: np.ndarray   # distance to the nearest junction node (inf outside)
    outside: np.ndarray      # bool
    speeding: np.ndarray     # bool: the scripted stretch
    heading: np.ndarray      # GNSS course over ground (deg, noisy; NaN below 3 m/s and in gaps)
    path_edges: list[int]
    sigma_m: float
    notes: dict = field(default_factory=dict)
    along_m: np.ndarray | None = None  # true distance along the path (NaN outside the map)
    yaw_rate: np.ndarray | None = None  # gyro yaw rate (deg/s, clockwise positive; bias + noise; on in gaps)

    def write_csv(self, path: Path, course: bool = False, yaw: bool = False) -> None:
        """The track as ``route match`` reads it: t,lat,lon,speed_mps (empty cells in a gap); with
        ``course``, also heading_deg (the GNSS course over ground; empty where there is none); with
        ``yaw``, also yaw_rate_dps (the gyro)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["t", "lat", "lon", "speed_mps"] + (["heading_deg"] if course else [])
                       + (["yaw_rate_dps"] if yaw else []))
            for i in range(len(self.t)):
                has = math.isfinite(self.lat[i])
                row = [f"{self.t[i]:.2f}", f"{self.lat[i]:.7f}" if has else "", f"{self.lon[i]:.7f}" if has else "",
                       f"{self.speed[i]:.2f}"]
                if course:
                    row.append(f"{self.heading[i]:.2f}" if math.isfinite(self.heading[i]) else "")
                if yaw:
                    row.append(f"{self.yaw_rate[i]:.3f}")
                w.writerow(row)


# --- paths ------------------------------------------------------------------------------------


def random_path(rmap: RoadMap, rng: np.random.Generator, length_m: float, start_edge: int | None = None,
                stay: float = 0.6, tries: int = 40) -> list[int]:
    """A random walk of directed edges, about ``length_m`` long: it goes on along its way with
    probability ``stay`` where it can, else picks a next edge (service roads 5x less likely), never
    takes the reverse edge, and stops at a dead end. Of ``tries`` walks the first to reach the
    length is kept, else the longest."""
    best: list[int] = []
    best_len = -1.0
    w = rmap.edge_len / rmap.edge_len.sum()
    for _ in range(tries):
        first = int(rng.choice(len(w), p=w)) if start_edge is None else start_edge
        path, total = [first], float(rmap.edge_len[first])
        seen = {first}
        while total < length_m:
            e = path[-1]
            v = int(rmap.edge_to[e])
            outs = [int(o) for o in rmap.out_edges[rmap.out_ptr[v]:rmap.out_ptr[v + 1]]
                    if o != rmap.edge_rev[e] and rmap.edge_to[o] != rmap.edge_from[e] and int(o) not in seen]
            if not outs:
                break
            same = [o for o in outs if rmap.way_of_edge(o) == rmap.way_of_edge(e)]
            if same and rng.random() < stay:
                nxt = same[0]
            else:
                pw = np.array([0.2 if rmap.a["way_class"][rmap.way_of_edge(o)] == "service" else 1.0 for o in outs])
                nxt = int(rng.choice(outs, p=pw / pw.sum()))
            path.append(nxt)
            seen.add(nxt)
            total += float(rmap.edge_len[nxt])
        if total > best_len:
            best, best_len = path, total
        if total >= length_m:
            break
    return best


def shortest_path(rmap: RoadMap, src_node: int, dst_node: int) -> list[int] | None:
    """Directed edges of a shortest driving route between two nodes (Dijkstra), or None."""
    import heapq

    best, prev = {src_node: 0.0}, {}
    heap = [(0.0, src_node)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == dst_node:
            break
        if d > best[u]:
            continue
        for k in range(rmap.out_ptr[u], rmap.out_ptr[u + 1]):
            e = int(rmap.out_edges[k])
            v, nd = int(rmap.edge_to[e]), d + float(rmap.edge_len[e])
            if nd < best.get(v, math.inf):
                best[v], prev[v] = nd, e
                heapq.heappush(heap, (nd, v))
    if dst_node not in best:
        return None
    edges, u = [], dst_node
    while u != src_node:
        e = prev[u]
        edges.append(e)
        u = int(rmap.edge_from[e])
    return edges[::-1]


def extend_path(rmap: RoadMap, path: list[int], extra_m: float) -> list[int]:
    """Go on from a path's end along the likeliest continuation for about ``extra_m``."""
    total = 0.0
    while total < extra_m and path:
        nxt = next_edge(rmap, path[-1])
        if nxt is None or nxt in path[-50:]:
            break
        path.append(nxt)
        total += float(rmap.edge_len[nxt])
    return path


# --- driving ----------------------------------------------------------------------------------


def _turn_deg(rmap: RoadMap, e1: int, e2: int) -> float:
    return bearing_diff_deg(rmap.edge_bearing(e2), rmap.edge_bearing(e1))


# Stops: the chance that the car halts at a node of its path, by what is there (the highest applies).
STOP_P = {"signals": 0.5, "give_way": 0.3, "turn": 0.3, "crossing": 0.2}
STOP_DECEL = (1.5, 3.0)    # m/s^2, braking to the stop
STOP_WAIT_S = (2.0, 25.0)  # standing still
STOP_ACCEL = (1.0, 2.5)    # m/s^2, pulling away
STOP_SETBACK_M = {"turn": 5.0, "give_way": 5.0}  # stop this far before the node (else 1 m: a stop line on it)
STOP_MIN_GAP_M = 40.0      # a node within this after the last stop gets none (the same signal phase, the far side of the junction)


def plan_stops(rmap: RoadMap, path: list[int], starts: np.ndarray, n_grid: int,
               rng: np.random.Generator) -> list[dict]:
    """Where the car stops along ``path`` (metres grid of ``n_grid`` points, ``starts``: each edge's
    start along the path): at every node the path goes through, the reasons there are a traffic
    signal (``signals``, or a signal-controlled crossing), a give-way or stop line or the entry to a
    roundabout (``give_way``), a junction node where the path turns by more than 30 deg (``turn``),
    a zebra/pelican/other crossing (``crossing``); a feature tagged for the other direction does not
    count. One uniform draw per node with a reason, against the highest of :data:`STOP_P`; a stop
    draws its braking, waiting and pulling-away from :data:`STOP_DECEL`, :data:`STOP_WAIT_S`,
    :data:`STOP_ACCEL`. The car stops :data:`STOP_SETBACK_M` before a turn or give-way node (the line
    before the junction), else 1 m before the node, so the truth while it stands is the way it came on."""
    a = rmap.a
    junction = np.zeros(len(a["node_xy"]), dtype=bool)
    junction[rmap.junction_nodes()] = True
    stops: list[dict] = []
    last_j = -math.inf
    for i in range(len(path) - 1):
        e, nxt = path[i], path[i + 1]
        node = int(rmap.edge_to[e])
        reasons = set()
        for f in facing_features(rmap, e):
            kind, detail = str(a["feat_kind"][f]), str(a["feat_detail"][f])
            if kind == "signals" or (kind == "crossing" and detail == "signal-controlled"):
                reasons.add("signals")
            elif kind in ("give_way", "stop"):
                reasons.add("give_way")
            elif kind == "crossing":
                reasons.add("crossing")
        w0, w1 = rmap.way_of_edge(e), rmap.way_of_edge(nxt)
        if a["way_roundabout"][w1] and not a["way_roundabout"][w0]:
            reasons.add("give_way")
        if junction[node] and _turn_deg(rmap, e, nxt) > 30:
            reasons.add("turn")
        if not reasons:
            continue
        reason = max(reasons, key=lambda r: STOP_P[r])
        if rng.random() >= STOP_P[reason]:
            continue
        decel, wait, accel = rng.uniform(*STOP_DECEL), rng.uniform(*STOP_WAIT_S), rng.uniform(*STOP_ACCEL)
        j = int(math.floor(starts[i + 1] - STOP_SETBACK_M.get(reason, 1.0)))
        if j < 1 or j > n_grid - 3 or j - last_j < STOP_MIN_GAP_M:
            continue
        last_j = j
        stops.append({"j": j, "node": node, "reason": reason, "decel": float(decel), "wait_s": float(wait),
                      "accel": float(accel), "turn": bool("turn" in reasons)})
    return stops


def drive(rmap: RoadMap, limits: WayLimits, path: list[int], rng: np.random.Generator, name: str,
          sigma_m: float = 10.0, speed_factor: tuple[float, float] = (0.8, 0.95),
          speeding: tuple[float, float] | None = None, speeding_factor: float = 1.25,
          gap: tuple[float, float] | None = None, uturn_at_m: float | None = None,
          outside_s: float = 0.0, junctions_xy: np.ndarray | None = None, tau_s: float = 5.0,
          heading_sigma_deg: float = 4.0, course_speed_err_mps: float = 0.3, stops: bool = False) -> Drive:
    """Drive a path. ``speeding`` and ``gap`` are (start, end) fractions of the drive's distance / time;
    ``uturn_at_m``: turn back on the road after this many metres (the path must be two-way there);
    ``outside_s``: after a 5 s gap, this many seconds 2 km outside the map; ``stops``: halt at
    signals, give-way lines, turns and crossings (:func:`plan_stops`; off: no random number is drawn
    for it, so a drive without stops is what it was).

    The GNSS course over ground (``heading``) is the direction of the Doppler velocity: its error
    grows as the speed falls, about (velocity error) / speed radians. Its 1-sigma is
    ``max(heading_sigma_deg, degrees(course_speed_err_mps / speed))``: 4 deg at 4.3 m/s and above,
    5.7 deg at 3 m/s (below 3 m/s the receiver reports none)."""
    a = rmap.a
    if uturn_at_m is not None:  # cut the path at the U-turn and come back the way it came
        acc, cut = 0.0, len(path)
        for i, e in enumerate(path):
            acc += float(rmap.edge_len[e])
            if acc >= uturn_at_m:
                cut = i + 1
                break
        back = [int(rmap.edge_rev[e]) for e in reversed(path[:cut])]
        if any(b < 0 for b in back):
            raise ValueError("U-turn on a one-way road")
        path = path[:cut] + back
    # geometry: cumulative distance along the path at each edge's start
    xy = a["node_xy"]
    lens = np.array([float(rmap.edge_len[e]) for e in path])
    starts = np.concatenate([[0.0], np.cumsum(lens)])
    total = float(starts[-1])
    # target speed per metre
    grid = np.arange(0.0, total, 1.0)
    edge_at = np.searchsorted(starts, grid, side="right") - 1
    factor = float(rng.uniform(*speed_factor))
    target = np.empty(len(grid))
    for i, e in enumerate(path):
        way = rmap.way_of_edge(e)
        mph = limits.mph[way]
        v = (mph if math.isfinite(mph) else 30.0) * MPH * factor
        if a["way_roundabout"][way] or str(a["way_class"][way]).endswith("_link"):
            v = min(v, 9.0)
        target[edge_at == i] = v
    for i in range(1, len(path)):  # slow through sharp turns at nodes
        turn = _turn_deg(rmap, path[i - 1], path[i])
        cap = 5.0 if turn > 100 else 7.0 if turn > 60 else 10.0 if turn > 35 else None
        if cap is not None:
            j = int(round(starts[i]))
            target[max(0, j - 3): j + 4] = np.minimum(target[max(0, j - 3): j + 4], cap)
    if uturn_at_m is not None:
        j = int(round(starts[len(path) // 2]))
        target[max(0, j - 2): j + 3] = 1.0
    over = np.zeros(len(grid), dtype=bool)
    if speeding is not None:
        over = (grid >= speeding[0] * total) & (grid <= speeding[1] * total)
        target[over] *= speeding_factor
    target = np.maximum(target, 1.0)
    # acceleration limits: forward (accelerate) and backward (brake) passes on v^2
    v = target.copy()
    v[0] = min(v[0], 5.0)
    for i in range(1, len(v)):
        v[i] = min(v[i], math.sqrt(v[i - 1] ** 2 + 2 * 2.0 * 1.0))
    for i in range(len(v) - 2, -1, -1):
        v[i] = min(v[i], math.sqrt(v[i + 1] ** 2 + 2 * 2.5 * 1.0))
    planned = plan_stops(rmap, path, starts, len(grid), rng) if stops else []
    for st in planned:  # brake to 0 at the stop, pull away from it (each at its own rate)
        j = st["j"]
        dist = np.abs(grid - grid[j])
        rate = np.where(grid < grid[j], st["decel"], st["accel"])
        v = np.minimum(v, np.sqrt(2.0 * rate * dist))
    dt_grid = 2.0 / (v[:-1] + v[1:])
    t_grid = np.concatenate([[0.0], np.cumsum(dt_grid)])
    g_knots, v_knots = grid, v
    if planned:  # standing still: a second knot at the stop's place, wait_s later
        js = np.array([st["j"] for st in planned])
        waits = np.array([st["wait_s"] for st in planned])
        t_grid = t_grid + np.concatenate([[0.0], np.cumsum(np.bincount(js, waits, len(grid)))[:-1]])
        t_grid = np.insert(t_grid, js + 1, t_grid[js] + waits)
        g_knots, v_knots = np.insert(grid, js + 1, grid[js]), np.insert(v, js + 1, 0.0)
    t = np.arange(0.0, t_grid[-1], 1.0 / HZ)
    s = np.interp(t, t_grid, g_knots)
    speed = np.interp(t, t_grid, v_knots)
    k = np.clip(np.searchsorted(starts, s, side="right") - 1, 0, len(path) - 1)
    edges = np.array(path)[k]
    frac = np.clip((s - starts[k]) / np.maximum(lens[k], 1e-9), 0, 1)
    p0, p1 = xy[rmap.edge_from[edges]], xy[rmap.edge_to[edges]]
    true_xy = p0 + (p1 - p0) * frac[:, None]
    ways = np.array([rmap.way_of_edge(e) for e in edges])
    outside = np.zeros(len(t), dtype=bool)
    speeding_mask = np.interp(s, grid, over.astype(float)) > 0.5
    if outside_s > 0:  # 5 s gap, then far outside the map, heading on
        t_out = np.arange(t[-1] + 5.0, t[-1] + 5.0 + outside_s, 1.0 / HZ)
        span = xy.max(0) - xy.min(0)
        start = xy.max(0) + np.array([2000.0, 0.0])
        out_xy = start + np.outer(np.arange(len(t_out)) * 1.3, [0.6, 0.8]) + 0 * span
        t = np.concatenate([t, t_out])
        speed = np.concatenate([speed, np.full(len(t_out), 13.0)])
        true_xy = np.concatenate([true_xy, out_xy])
        edges = np.concatenate([edges, np.full(len(t_out), -1)])
        ways = np.concatenate([ways, np.full(len(t_out), -1)])
        outside = np.concatenate([outside, np.ones(len(t_out), dtype=bool)])
        speeding_mask = np.concatenate([speeding_mask, np.zeros(len(t_out), dtype=bool)])
    # GNSS noise: Gauss-Markov (coloured) + white, per axis
    n = len(t)
    rho = math.exp(-1.0 / (HZ * tau_s))
    sc, sw = sigma_m * math.sqrt(0.85), sigma_m * math.sqrt(0.15)
    col = np.empty((n, 2))
    col[0] = rng.normal(0, sc, 2)
    shocks = rng.normal(0, sc * math.sqrt(1 - rho ** 2), (n, 2))
    for i in range(1, n):
        col[i] = rho * col[i - 1] + shocks[i]
    noisy = true_xy + col + rng.normal(0, sw, (n, 2))
    ll = rmap.unproject(noisy)
    lat, lon = ll[:, 0].copy(), ll[:, 1].copy()
    vel = np.gradient(true_xy, axis=0)
    course_sigma = np.maximum(heading_sigma_deg, np.degrees(course_speed_err_mps / np.maximum(speed, 0.1)))
    heading = (np.degrees(np.arctan2(vel[:, 0], vel[:, 1])) + rng.normal(0.0, 1.0, n) * course_sigma) % 360.0
    heading[speed < 3.0] = np.nan
    yaw = gyro_yaw_rate(rmap, path, starts, grid, s, t, len(t) - len(s),
                        np.random.default_rng(zlib.crc32(name.encode())))
    if gap is not None:
        g = (t >= gap[0] * t[-1]) & (t <= gap[1] * t[-1]) & ~outside
        lat[g] = np.nan
        lon[g] = np.nan
        heading[g] = np.nan
    if junctions_xy is None:
        junctions_xy = xy[rmap.junction_nodes()]
    from scipy.spatial import cKDTree

    jd, _ = cKDTree(junctions_xy).query(true_xy)
    jd[outside] = np.inf
    lim = np.where(ways >= 0, limits.mph[np.maximum(ways, 0)], np.nan)
    return Drive(name, t, lat, lon, speed, edges, ways,
                 np.where(ways >= 0, a["way_id"][np.maximum(ways, 0)], -1), lim, jd, outside, speeding_mask, heading,
                 list(path), sigma_m, {"length_m": round(total, 1), "duration_s": round(float(t[-1]), 1)}
                 | ({"stops": [{k: (round(x, 2) if isinstance(x, float) else x) for k, x in st.items()} for st in planned]}
                    if stops else {}),
                 np.concatenate([s, np.full(len(t) - len(s), np.nan)]), yaw)


GYRO_BIAS_DPS = 0.5
"""1-sigma of a drive's constant gyro bias (deg/s): an uncompensated automotive/MEMS yaw-rate sensor."""
GYRO_NOISE_DPS = 0.3
"""1-sigma of the gyro's white noise per 10 Hz sample (deg/s)."""
GYRO_SCALE = 0.02
"""1-sigma of the gyro's scale-factor error."""
TURN_M = 8.0
"""A change of heading at a node is spread over this many metres of path (the car turns on an arc)."""


def gyro_yaw_rate(rmap: RoadMap, path: list[int], starts: np.ndarray, grid: np.ndarray, s: np.ndarray,
                  t: np.ndarray, n_after: int, rng: np.random.Generator) -> np.ndarray:
    """A gyro's yaw rate (deg/s, clockwise positive) per fix: the rate of the path's heading, each
    change at a node spread over ``TURN_M`` metres (a function of distance: standing still reads 0),
    times a scale error, plus a constant bias and white noise; ``n_after`` fixes after the path (the
    outside stretch) drive straight. Its own generator, so the rest of a drive does not change."""
    bearings = np.unwrap(np.radians([rmap.edge_bearing(e) for e in path]))
    k = np.clip(np.searchsorted(starts, grid, side="right") - 1, 0, len(path) - 1)
    h = bearings[k]
    w = max(1, int(TURN_M))
    h = np.convolve(np.pad(h, (w // 2, w - 1 - w // 2), mode="edge"), np.ones(w) / w, mode="valid")
    h_t = np.degrees(np.interp(s, grid, h))
    rate = np.gradient(h_t, t[: len(s)]) if len(s) > 1 else np.zeros(len(s))
    rate = np.concatenate([rate, np.zeros(n_after)])
    bias, scale = rng.normal(0.0, GYRO_BIAS_DPS), 1.0 + rng.normal(0.0, GYRO_SCALE)
    return rate * scale + bias + rng.normal(0.0, GYRO_NOISE_DPS, len(rate))


# --- scripted drives for the replay scenarios -------------------------------------------------------


def _specs() -> dict:
    from vehicle_assist import config, paths

    return config.read_yaml(paths.sim() / "route_drives.yaml")["drives"]


def truth_record(rmap: RoadMap, limits: WayLimits, d: Drive) -> dict:
    """What a person labels a drive from: the roads in order with their times and limits, the feature
    nodes on the path with the time the car reaches each, the gap and outside spans."""
    import json as _json  # noqa: F401

    a = rmap.a
    roads, last = [], None
    for i, w in enumerate(d.true_way):
        w = int(w)
        if w != last:
            if w < 0:
                roads.append({"t": round(float(d.t[i]), 1), "outside": True})
            else:
                mph, src = limits.of(w)
                roads.append({"t": round(float(d.t[i]), 1), "way_id": int(a["way_id"][w]),
                              "road": str(a["way_name"][w] or a["way_ref"][w]), "class": str(a["way_class"][w]),
                              "limit_mph": mph, "limit_source": src, "roundabout": bool(a["way_roundabout"][w])})
            last = w
    starts = np.concatenate([[0.0], np.cumsum([float(rmap.edge_len[e]) for e in d.path_edges])])
    inside = np.isfinite(d.along_m)
    feats = []
    for i, e in enumerate(d.path_edges):
        node = int(rmap.edge_to[e])
        for f in rmap.feats_at.get(node, ()):
            t_at = float(np.interp(starts[i + 1], d.along_m[inside], d.t[inside]))
            feats.append({"t": round(t_at, 1), "kind": str(a["feat_kind"][f]), "detail": str(a["feat_detail"][f]),
                          "osm_id": int(a["feat_osm_id"][f]), "along_m": round(float(starts[i + 1]), 1)})
    gap = np.isnan(d.lat) & ~d.outside
    spans = lambda mask: ([round(float(d.t[mask].min()), 1), round(float(d.t[mask].max()), 1)] if mask.any() else None)  # noqa: E731
    return {"name": d.name, "duration_s": round(float(d.t[-1]), 1), "sigma_m": d.sigma_m, "roads": roads,
            "features": feats, "gap": spans(gap), "outside": spans(d.outside), "speeding": spans(d.speeding)}


def generate(name: str, out_dir: Path | None = None) -> Path:
    """Generate the scripted drive ``name`` of ``sim/route_drives.yaml`` as a folder with
    ``telemetry.csv`` (t,lat,lon,speed_mps, and yaw_rate_dps when the spec has ``yaw: true``; 10 Hz)
    and ``truth.json``; returns the folder."""
    import json

    from vehicle_assist import paths
    from vehicle_assist.route.limits import way_limits
    from vehicle_assist.route.map import load_map, load_tables

    spec = _specs()[name]
    out = (out_dir or paths.sim() / "generated" / "route") / name
    rmap = load_map(paths.resolve(spec["map"]))
    limits = way_limits(rmap, load_tables())
    rng = np.random.default_rng(int(spec["seed"]))
    start = None
    if spec.get("start_way") is not None:
        ways = np.nonzero(rmap.a["way_id"] == int(spec["start_way"]))[0]
        start = int(next(e for e in range(len(rmap.edge_len)) if rmap.way_of_edge(e) == int(ways[0])))
    path = random_path(rmap, rng, float(spec.get("length_m", 1500)), start_edge=start)
    d = drive(rmap, limits, path, rng, name, sigma_m=float(spec.get("sigma_m", 10.0)),
              speeding=tuple(spec["speeding"]) if spec.get("speeding") else None,
              speeding_factor=float(spec.get("speeding_factor", 1.25)),
              gap=tuple(spec["gap"]) if spec.get("gap") else None, outside_s=float(spec.get("outside_s", 0.0)))
    out.mkdir(parents=True, exist_ok=True)
    d.write_csv(out / "telemetry.csv", yaw=bool(spec.get("yaw", False)))
    (out / "truth.json").write_text(json.dumps({"spec": spec, "tables": tables_key(), **truth_record(rmap, limits, d)},
                                               indent=1))
    return out


def tables_key() -> str:
    """What the limits (and so the speed profile) of a generated drive depend on besides its spec:
    the route tables and the map index format; a change regenerates the drives."""
    import hashlib

    from vehicle_assist.route.map import INDEX_VERSION, load_tables

    return hashlib.sha256(f"{INDEX_VERSION}|{load_tables().model_dump_json()}".encode()).hexdigest()[:16]


def ensure(names: list[str] | None = None) -> list[Path]:
    """Generate the scripted drives that are missing or whose spec changed (deterministic by seed)."""
    import json

    from vehicle_assist import paths

    specs = _specs()
    out = []
    for name in names or list(specs):
        folder = paths.sim() / "generated" / "route" / name
        truth = folder / "truth.json"
        old = json.loads(truth.read_text()) if truth.is_file() else {}
        fresh = (folder / "telemetry.csv").is_file() and old.get("spec") == specs[name] and old.get("tables") == tables_key()
        out.append(folder if fresh else generate(name))
    return out
