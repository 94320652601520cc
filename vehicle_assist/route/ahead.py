"""What lies ahead along the matched path (pure: map arrays, position, speed in; features out).

From the car's place on a directed edge, the path ahead follows the road it is on: at each node
the next edge is the same way if it goes on, else a way of the same name or ref, else the
straightest continuation (a U-turn is never taken). Walking stops at the look-ahead distance,
which grows with speed (``max(min_m, speed * seconds)``, capped at ``max_m``), at a dead end, or
when the path comes back on itself (a roundabout's ring).

Features reported, each once, nearest first, with its distance along the path:
``crossing`` (detail: zebra, pelican, puffin, toucan, signal-controlled, marked, unmarked...),
``signals``, ``give_way``, ``stop`` (honouring a ``direction`` tag), ``roundabout`` (entering a
ring, or a mini-roundabout node), ``speed_limit_change`` (the next way's applicable limit differs;
``limit_mph`` and ``limit_source`` say the new one), ``school``, ``level_crossing``. A feature
beyond a junction where the car could go another way has ``sure=False``: it lies on the likeliest
path, not on a known one (advise only sure ones).
"""

from __future__ import annotations

import math
from vehicle_assist.messages import RouteFeature
from vehicle_assist.route.limits import WayLimits
from vehicle_assist.route.map import RoadMap, bearing_diff_deg


def feature_record(f: RouteFeature) -> dict:
    """A feature as a short JSON-able dict (unset fields left out)."""
    out: dict = {"kind": f.kind, "distance_m": round(f.distance_m, 1)}
    if f.detail:
        out["detail"] = f.detail
    if f.osm_id is not None:
        out["osm_id"] = f.osm_id
    if f.limit_mph is not None:
        out["limit_mph"] = round(f.limit_mph)
        out["limit_source"] = f.limit_source
    if not f.sure:
        out["sure"] = False
    return out


def lookahead_m(speed_mps: float | None, seconds: float = 10.0, min_m: float = 100.0, max_m: float = 600.0) -> float:
    """How far ahead to look: ``seconds`` of travel at the current speed, within [min_m, max_m]."""
    if speed_mps is None or not math.isfinite(speed_mps):
        return min_m
    return float(min(max_m, max(min_m, speed_mps * seconds)))


HEADING_TAKES_DEG = 30.0


def next_edge(rmap: RoadMap, e: int, heading: float | None = None) -> int | None:
    """The edge the path most likely takes after ``e`` (see the module docstring), or None. With the
    car's ``heading`` past the node (a gyro's, in a GNSS gap), the way on closest to it, when one is
    within ``HEADING_TAKES_DEG``."""
    v = int(rmap.edge_to[e])
    outs = rmap.out_edges[rmap.out_ptr[v]:rmap.out_ptr[v + 1]]
    outs = [int(o) for o in outs if o != rmap.edge_rev[e] and rmap.edge_to[o] != rmap.edge_from[e]]
    if not outs:
        return None
    if heading is not None:
        best = min(outs, key=lambda o: bearing_diff_deg(rmap.edge_bearing(o), heading))
        if bearing_diff_deg(rmap.edge_bearing(best), heading) <= HEADING_TAKES_DEG:
            return best
    a = rmap.a
    way = rmap.way_of_edge(e)
    same = [o for o in outs if rmap.way_of_edge(o) == way]
    if same:
        return same[0]
    name, ref = str(a["way_name"][way]), str(a["way_ref"][way])
    named = [o for o in outs if (name and a["way_name"][rmap.way_of_edge(o)] == name)
             or (ref and a["way_ref"][rmap.way_of_edge(o)] == ref)]
    pool = named or outs
    heading = rmap.edge_bearing(e)
    return min(pool, key=lambda o: bearing_diff_deg(rmap.edge_bearing(o), heading))


def branches(rmap: RoadMap, e: int) -> int:
    """How many ways on (U-turns aside) the end node of edge ``e`` offers."""
    v = int(rmap.edge_to[e])
    outs = rmap.out_edges[rmap.out_ptr[v]:rmap.out_ptr[v + 1]]
    return sum(1 for o in outs if o != rmap.edge_rev[e] and rmap.edge_to[o] != rmap.edge_from[e])


def facing_features(rmap: RoadMap, e: int) -> list[int]:
    """The features at the node directed edge ``e`` ends at that apply to traffic along ``e`` (one
    tagged for the other direction of the way is left out)."""
    a = rmap.a
    along = rmap.edge_dir[e] > 0
    return [f for f in rmap.feats_at.get(int(rmap.edge_to[e]), ())
            if not ((a["feat_dir"][f] == "forward" and not along) or (a["feat_dir"][f] == "backward" and along))]


def path_ahead(rmap: RoadMap, edge: int, offset_m: float, distance_m: float) -> list[tuple[int, float, bool]]:
    """The edges ahead as ``(edge, distance from the car to the edge's end node, sure)``, current
    first; ``sure`` is False once the path has passed a node where it could have gone another way."""
    out: list[tuple[int, float, bool]] = []
    seen: set[int] = set()
    e: int | None = edge
    dist = float(rmap.edge_len[edge]) - offset_m
    sure = True
    while e is not None and e not in seen:
        seen.add(e)
        out.append((e, dist, sure))
        if dist >= distance_m:
            break
        sure = sure and branches(rmap, e) <= 1
        e = next_edge(rmap, e)
        if e is not None:
            dist += float(rmap.edge_len[e])
    return out


def features_ahead(rmap: RoadMap, limits: WayLimits, edge: int, offset_m: float, speed_mps: float | None,
                   seconds: float = 10.0, min_m: float = 100.0, max_m: float = 600.0) -> list[RouteFeature]:
    """Features on the path ahead of a car at ``offset_m`` along directed ``edge``, nearest first."""
    reach = lookahead_m(speed_mps, seconds, min_m, max_m)
    a = rmap.a
    feats: list[RouteFeature] = []
    seen_nodes: set[int] = set()
    prev_way = rmap.way_of_edge(edge)
    prev_limit = limits.of(prev_way)
    in_ring = bool(a["way_roundabout"][prev_way])
    path = path_ahead(rmap, edge, offset_m, reach)
    for i, (e, end_dist, sure) in enumerate(path):
        way = rmap.way_of_edge(e)
        start_dist = end_dist - float(rmap.edge_len[e])
        if i > 0 and start_dist <= reach:
            limit = limits.of(way)
            if limit[0] is not None and prev_limit[0] is not None and abs(limit[0] - prev_limit[0]) > 0.5:
                feats.append(RouteFeature("speed_limit_change", start_dist, limit_mph=limit[0], limit_source=limit[1],
                                          sure=sure))
            prev_limit = limit if limit[0] is not None else prev_limit
            ring = bool(a["way_roundabout"][way])
            if ring and not in_ring:
                feats.append(RouteFeature("roundabout", start_dist, str(a["way_name"][way]), int(a["way_id"][way]),
                                          sure=sure))
            in_ring = ring
        node = int(rmap.edge_to[e])
        if end_dist > reach or node in seen_nodes:
            continue
        seen_nodes.add(node)
        for f in facing_features(rmap, e):
            feats.append(RouteFeature(str(a["feat_kind"][f]), end_dist, str(a["feat_detail"][f]),
                                 int(a["feat_osm_id"][f]) if a["feat_osm_id"][f] >= 0 else None, sure=sure))
    feats.sort(key=lambda f: f.distance_m)
    return feats
