"""Route context on synthetic drives along the real roads of the maps, and on the California trace.

    python bench/route.py [--split dev|test] [--drives N] [--out bench/results/route.json]
                          [--map FILE.osm ...] [--cond fix+speed] [--set lag_s=1.0 ...] [--no-california] [--stops]

``--map`` replaces the two catalogued maps by any extracts (other cities: bench/route_maps/SOURCE.md);
``--set`` overrides fields of :class:`~vehicle_assist.route.match.MatchSettings` (tuning, dev only).
The drives are matched as ``route match`` does, with the shipped config: each whole
(``route.match_whole_track``: the best path through all its fixes, the place along it smoothed), so
``record_delay_s`` is the drive's length; ``--set lag_s=1.0`` matches with a 1 s lag instead (the
whole-track mode needs the matcher's lag infinite), ``--set lag_s=0`` fix by fix as the runtime lane.

Per map (Leeds city centre, Manchester Kingsway) and per input condition ("fix+speed": the
``t,lat,lon,speed_mps`` CSV of ``route match``; "fix+speed+course": plus the GNSS course over ground;
"fix+speed+yaw": plus a gyro's yaw rate, no course, :func:`vehicle_assist.route.synth.gyro_yaw_rate`):
N drives from bench/route_drives.py (random walks ~2.5 km preferring to stay on their road; GNSS
noise 1-sigma 8-15 m per axis, coloured; every 3rd drive a GPS gap of 10% of its time, every 4th a
speeding stretch (+25%), every 5th a 20 s stretch 2 km outside the map). Seeds: dev 0..N-1 (used to
tune), test 10000..10000+N-1 (reported). ``--stops``: the same drives (same paths, noise levels,
gaps, speeding, outside stretches) with stops at signals, give-way lines, turns and crossings
(:func:`vehicle_assist.route.synth.plan_stops`; standing still with no course). Measured:

- road_correct: matched OSM way = true way, share of fixes more than 20 m from a junction node
  (a node with 3+ neighbours or shared by 2+ ways), outside gaps and outside stretches;
- road_name_correct: same, counting a match right when it has the true way's name/ref and limit
  (ways of one street split into lanes/links);
- limit_correct_time: share of drive time where the map has a limit and the reported one equals it
  (all fixes, junctions and gaps included);
- claims_outside: fixes of outside stretches with a way or a limit (must be 0);
- features: recall of feature nodes on the true path (reported ahead at some fix before reaching
  them), and precision of reported feature nodes (on the true path), of all and of the ``sure``
  ones (no junction between car and feature);
- update_ms: per-fix RouteTracker.push p50/p95/max; flush_ms_per_fix: the end of the track
  (``flush``: with the whole track, the smoothing) per fix of the drive, over the drives.

Then the comma2k19 California trace (``sim/telemetry/comma2k19_example1_seg40``) against both maps:
every fix must claim nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import pct  # noqa: E402  (bench/common.py)
from route_drives import Drive, drive, random_path  # noqa: E402

from vehicle_assist import fetch  # noqa: E402
from vehicle_assist.config import load_app  # noqa: E402
from vehicle_assist.route.context import RouteTracker, read_track  # noqa: E402
from vehicle_assist.route.limits import way_limits  # noqa: E402
from vehicle_assist.route.map import load_map, load_tables  # noqa: E402
from vehicle_assist.route.context import match_settings  # noqa: E402
from vehicle_assist.route.match import Fix, Matcher, MatchSettings  # noqa: E402

MAPS = ("leeds_city_centre.osm", "manchester_kingsway.osm")
SEED0 = {"dev": 0, "test": 10000}


def make_drives(rmap, limits, split: str, n: int, stops: bool = False) -> list[Drive]:
    drives = []
    for k in range(n):
        seed = SEED0[split] + k
        rng = np.random.default_rng(seed)
        path = random_path(rmap, rng, 2500.0)
        drives.append(drive(rmap, limits, path, rng, f"{split}-{seed}", sigma_m=float(rng.uniform(8.0, 15.0)),
                            gap=(0.45, 0.55) if k % 3 == 1 else None,
                            speeding=(0.3, 0.5) if k % 4 == 2 else None,
                            outside_s=20.0 if k % 5 == 3 else 0.0, stops=stops))
    return drives


CONDS = ("fix+speed", "fix+speed+course", "fix+speed+yaw")
"""Input conditions: GNSS fix + CAN speed; plus the GNSS course over ground; plus a gyro's yaw rate
(no GNSS course)."""


def replay(tracker: RouteTracker, d: Drive, cond: str, every: int = 1, sense: bool = True,
           timings: dict | None = None) -> tuple[list, list[float], list[float]]:
    """Contexts per fix (in order) under an input condition (:data:`CONDS`), per-fix update time (ms)
    and, per fix, how much later (drive seconds) its record came out (0 without a lag; the end of the
    track flushes the rest). ``every``: a GNSS fix (position, course) only at every so many samples
    (10: 1 Hz on the 10 Hz drives), the speed and yaw rate at every one, through
    :meth:`RouteTracker.sense` (``sense`` False: not passed on, so sampled at the fixes only); the
    contexts are then those of the fix samples (score them against :func:`every_kth`). ``timings``
    gets ``flush_ms``: the end of the track (with the whole track, the smoothing)."""
    course, yaw = cond.endswith("+course"), cond.endswith("+yaw")
    out, ms, delay, fixes = [], [], [], []
    for i in range(len(d.t)):
        yaw_i = float(d.yaw_rate[i]) if yaw else None
        if i % every:
            if sense:
                tracker.sense(float(d.t[i]), float(d.speed[i]), yaw_i)
            continue
        fixes.append(i)
        has = math.isfinite(d.lat[i])
        hd = float(d.heading[i]) if course and math.isfinite(d.heading[i]) else None
        fix = Fix(float(d.t[i]), float(d.lat[i]) if has else None, float(d.lon[i]) if has else None, float(d.speed[i]), hd,
                  yaw_i)
        t0 = time.perf_counter()
        ctxs = tracker.push(fix)
        ms.append((time.perf_counter() - t0) * 1000)
        for c in ctxs:
            delay.append(float(d.t[i]) - float(d.t[fixes[len(out)]]))
            out.append(c)
    t0 = time.perf_counter()
    out.extend(tracker.flush())
    if timings is not None:
        timings["flush_ms"] = (time.perf_counter() - t0) * 1000
    return out, ms, delay


def every_kth(d: Drive, k: int) -> Drive:
    """The drive's samples at every ``k``-th one (its fixes under ``replay(..., every=k)``)."""
    if k == 1:
        return d
    n = len(d.t)
    return dataclasses.replace(d, **{f.name: getattr(d, f.name)[::k] for f in dataclasses.fields(d)
                                     if isinstance(getattr(d, f.name), np.ndarray) and len(getattr(d, f.name)) == n})


def score(rmap, limits, drives: list[Drive], results: list[list]) -> dict:
    a = rmap.a
    name_of = lambda w: (str(a["way_name"][w]) or str(a["way_ref"][w]), limits.mph[w])  # noqa: E731
    way_index = {int(w): i for i, w in enumerate(a["way_id"])}
    node_index = {int(n): i for i, n in enumerate(a["node_id"])}
    far = ok = name_ok = 0
    lt = lok = 0.0
    outside = claims = 0
    feat_true = feat_hit = rep = rep_on = sure_rep = sure_on = 0
    for d, ctxs in zip(drives, results):
        dt = np.diff(d.t, append=d.t[-1] + 0.1)
        reported: set[int] = set()
        sure: set[int] = set()
        for i, c in enumerate(ctxs):
            if d.outside[i]:
                outside += 1
                claims += c.way_id is not None or c.speed_limit_mph is not None
                continue
            if d.junction_m[i] > 20 and math.isfinite(d.lat[i]):
                far += 1
                ok += c.way_id == int(d.true_way_id[i])
                if c.way_id is not None:
                    name_ok += name_of(way_index[c.way_id]) == name_of(int(d.true_way[i]))
            if math.isfinite(d.true_limit[i]):
                lt += dt[i]
                lok += dt[i] * (c.speed_limit_mph is not None and abs(c.speed_limit_mph - d.true_limit[i]) < 0.5)
            for f in c.features_ahead:
                if f.osm_id is not None and f.kind != "roundabout":
                    reported.add(f.osm_id)
                    if f.sure:
                        sure.add(f.osm_id)
        path_nodes = {int(rmap.edge_to[e]) for e in d.path_edges}
        true_feats = {int(a["feat_osm_id"][f]) for n in path_nodes for f in rmap.feats_at.get(n, ())
                      if a["feat_kind"][f] != "school" and a["feat_dir"][f] == ""}
        # a feature within the first 50 m of the drive may be passed before the first match
        first = int(rmap.edge_to[d.path_edges[0]])
        true_feats -= {int(a["feat_osm_id"][f]) for f in rmap.feats_at.get(first, ())}
        feat_true += len(true_feats)
        feat_hit += len(true_feats & reported)
        rep += len(reported)
        rep_on += sum(node_index.get(o, -1) in path_nodes for o in reported)
        sure_rep += len(sure)
        sure_on += sum(node_index.get(o, -1) in path_nodes for o in sure)
    return {"fixes_far_from_junction": far, "road_correct": round(ok / max(far, 1), 4),
            "road_name_correct": round(name_ok / max(far, 1), 4),
            "limit_correct_time": round(lok / max(lt, 1e-9), 4), "limit_time_s": round(lt, 1),
            "outside_fixes": outside, "claims_outside": claims,
            "feature_recall": round(feat_hit / max(feat_true, 1), 4), "features_on_path": feat_true,
            "feature_precision": round(rep_on / max(rep, 1), 4), "features_reported": rep,
            "sure_feature_precision": round(sure_on / max(sure_rep, 1), 4), "sure_features_reported": sure_rep}


def stop_summary(drives: list[Drive]) -> dict:
    """How much of the drives is standing: stops by reason, standing and no-course shares of time."""
    from collections import Counter

    reasons = Counter(st["reason"] for d in drives for st in d.notes["stops"])
    n = sum(len(d.t) for d in drives)
    return {"count": sum(reasons.values()), "by_reason": dict(reasons.most_common()),
            "turns_from_standstill": sum(st["turn"] for d in drives for st in d.notes["stops"]),
            "standing_share_of_time": round(sum(int((d.speed < 0.01).sum()) for d in drives) / n, 3),
            "no_course_share_of_time": round(sum(int(np.isnan(d.heading).sum()) for d in drives) / n, 3)}


def california(maps: list) -> dict:
    folder = fetch.data_path("telemetry", "comma2k19_example1_seg40")
    fixes = list(read_track(folder))
    out = {"fixes": len(fixes)}
    for name, rmap in maps:
        tracker = RouteTracker(rmap, load_app().route.model_copy(update={"match_whole_track": False}))
        claims = sum(c.way_id is not None or c.speed_limit_mph is not None for c in map(tracker.update, fixes))
        out[f"claims_{name}"] = claims
    return out


def parse_overrides(pairs: list[str]) -> dict:
    """``--set FIELD=VALUE`` pairs as MatchSettings overrides, each value of its field's type."""
    overrides = {}
    for kv in pairs:
        k, v = kv.split("=", 1)
        kind = type(getattr(MatchSettings(), k))
        overrides[k] = (v.lower() in ("1", "true", "yes")) if kind is bool else kind(v)
    return overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test"), default="test")
    ap.add_argument("--drives", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--map", type=Path, action="append", default=None, help="an OSM extract (repeatable); default: the two catalogued maps")
    ap.add_argument("--cond", choices=CONDS, action="append", default=None,
                    help="input conditions (repeatable; default all three)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="MatchSettings override (dev tuning)")
    ap.add_argument("--no-california", action="store_true")
    ap.add_argument("--stops", action="store_true", help="drives with stops (signals, give-way, turns, crossings)")
    ap.add_argument("--gnss-every", type=int, default=1, metavar="K",
                    help="a GNSS fix at every K-th sample only (10: 1 Hz), the speed and yaw rate at every one")
    ap.add_argument("--no-sense", action="store_true",
                    help="with --gnss-every: the speed and yaw rate between fixes are not passed on")
    args = ap.parse_args()
    tables = load_tables()
    settings = load_app().route
    overrides = parse_overrides(args.set)
    ms_base = match_settings(settings)
    msettings = MatchSettings(**(ms_base.__dict__ | overrides))
    conds = args.cond or list(CONDS)
    doc: dict = {"split": args.split, "drives_per_map": args.drives, "stops": args.stops,
                 "gnss_every": args.gnss_every, "sense": not args.no_sense,
                 "match_settings": msettings.__dict__, "maps": {}}
    loaded = []
    paths = args.map or [fetch.data_path("maps", name) for name in MAPS]
    for path in paths:
        name = Path(path).name
        rmap = load_map(path, tables)
        loaded.append((name.split(".")[0], rmap))
        limits = way_limits(rmap, tables, settings.vehicle_type, settings.nation)
        drives = make_drives(rmap, limits, args.split, args.drives, args.stops)
        per = {"drives": len(drives), "km": round(sum(d.notes["length_m"] for d in drives) / 1000, 1),
               "hours": round(sum(d.notes["duration_s"] for d in drives) / 3600, 2)}
        if args.stops:
            per["stops"] = stop_summary(drives)
        for cond in conds:
            results, ms, delays, flush = [], [], [], []
            for d in drives:
                tracker = RouteTracker(rmap, settings, tables)
                tracker.matcher = Matcher(rmap, msettings)
                tm: dict = {}
                r, m, dl = replay(tracker, d, cond, args.gnss_every, not args.no_sense, tm)
                results.append(r)
                ms.extend(m)
                delays.extend(dl)
                flush.append(tm["flush_ms"] / max(len(r), 1))
            per[cond] = score(rmap, limits, [every_kth(d, args.gnss_every) for d in drives], results) | {
                "update_ms": pct(ms), "flush_ms_per_fix": pct(flush), "record_delay_s": pct(delays)}
        doc["maps"][name] = per
        print(json.dumps({name: per}, indent=1), flush=True)
    if not args.no_california:
        doc["california"] = california(loaded)
        print(json.dumps({"california": doc["california"]}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
