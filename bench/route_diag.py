"""Where the route bench's errors come from (dev split only): the limit-error time and the
way errors far from junctions of ``bench/route.py``'s drives, broken down by cause.

    python bench/route_diag.py --split dev --drives 60 --map FILE.osm ... [--set FIELD=VALUE ...] [--course | --cond C] [--out FILE.json]

``--course``: the "fix+speed+course" condition (the synthetic GNSS course over ground with each fix);
``--cond fix+speed+yaw``: a gyro's yaw rate with each fix, no course.
``--stops``: the drives with stops (bench/route.py ``--stops``); adds ``standing``: the limit-error
time and way errors while the car stands still, or within 10 s after it pulls away (``after_stop``).

Limit-error time (share of the time where the map has a limit), by cause:
- ``none``: nothing claimed (``start``: the first 5 s of a drive; ``gap``: a position gap; else ``other``);
- ``previous_way`` / ``next_way``: the matched way is the way the car was on before / will be on
  next (late / early at a junction), split by whether the car is within 20 m of a junction node;
- ``same_name``: another way of the same name/ref (parallel carriageway, lane link);
- ``other_way``: any other way (split by near/far from a junction).
``late_early_by_turn``: the ``previous_way`` / ``next_way`` time split by whether the true path turns
more than 30 deg where it changes way (``turn``) or goes on about straight (``straight``).
Way errors (fixes > 20 m from a junction, as the bench counts them), by the same causes, plus
``limit_same``: how many of them have the true way's limit anyway.

The limit-error time is also split into ``place_behind`` / ``place_ahead`` (the matched way is on
the true path within 25 m of the car: the path is right, the place along it is wrong by a few
metres, so the way and its limit switch late or early) and ``path`` (the matched way is not on the
true path near the car: a wrong branch or a parallel road).

With ``--place-lag``, instead: how far the smoothed place along the road lags the car, and where
the lag enters (docs/route_history.md, "The place lag: out-and-back routes"):
- ``lag_m``: per drive, the mean signed error of the smoothed place (``route match``'s lag, fix+speed)
  along the true path, over fixes more than 10 s into the drive whose matched edge is on the path
  (|error| < 30 m); then the mean over drives +- its standard error, and the share of drives behind
  (the measure of bench/results/route_s6_dev_tried.json's ``place_lag_neukolln_dev60``);
- ``entries_from_off_path``: Viterbi steps whose best state is on the true path while its best
  predecessor was not (a detour through another road): how many, and the median and mean error of
  the best state's place there.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from route import CONDS, make_drives, parse_overrides, replay  # noqa: E402

from vehicle_assist.config import load_app  # noqa: E402
from vehicle_assist.route.context import RouteTracker, match_settings  # noqa: E402
from vehicle_assist.route.limits import way_limits  # noqa: E402
from vehicle_assist.route.map import load_map, load_tables  # noqa: E402
from vehicle_assist.route.match import Fix, Matcher, MatchSettings  # noqa: E402


def neighbours(d, i0: int, i1: int):
    """Per fix: the previous and next distinct true way along the drive."""
    w = d.true_way
    n = len(w)
    prev = np.full(n, -1)
    nxt = np.full(n, -1)
    last, cur = -1, -1
    for i in range(n):
        if w[i] != cur:
            last, cur = cur, int(w[i])
        prev[i] = last
    last, cur = -1, -1
    for i in range(n - 1, -1, -1):
        if w[i] != cur:
            last, cur = cur, int(w[i])
        nxt[i] = last
    return prev, nxt


def place_or_path(mw, along: float, starts: np.ndarray, path_way: np.ndarray, reach_m: float = 25.0) -> str:
    """``place_behind`` / ``place_ahead`` when the matched way lies on the true path within ``reach_m``
    of the car's place along it (the nearer stretch decides the sign), else ``path`` (also no claim)."""
    if mw is None or not math.isfinite(along):
        return "path"
    best = None
    for k in np.nonzero(path_way == mw)[0]:
        lo, hi = starts[k], starts[k + 1]
        gap = lo - along if along < lo else along - hi if along > hi else 0.0
        if gap <= reach_m and (best is None or gap < abs(best)):
            best = gap if along < lo else -gap
    if best is None:
        return "path"
    return "place_ahead" if best > 0 else "place_behind"


def way_change_turns(rmap, d) -> tuple[np.ndarray, np.ndarray]:
    """Per fix: the turn (deg) of the true path at the last and at the next change of way."""
    from vehicle_assist.route.map import bearing_diff_deg

    w, e = d.true_way, d.true_edge
    n = len(w)
    last, nxt = np.full(n, np.nan), np.full(n, np.nan)
    changes = [i for i in range(1, n) if w[i] != w[i - 1] and w[i] >= 0 and w[i - 1] >= 0]
    ang = {i: bearing_diff_deg(rmap.edge_bearing(int(e[i])), rmap.edge_bearing(int(e[i - 1]))) for i in changes}
    k = 0
    cur = np.nan
    for i in range(n):
        if k < len(changes) and changes[k] == i:
            cur = ang[i]
            k += 1
        last[i] = cur
    cur = np.nan
    k = len(changes) - 1
    for i in range(n - 1, -1, -1):
        nxt[i] = cur
        if k >= 0 and changes[k] == i:
            cur = ang[i]
            k -= 1
    return last, nxt


def phases(d, after_s: float = 10.0) -> np.ndarray:
    """Per fix: ``standing`` (speed 0), ``after_stop_turn`` / ``after_stop`` (within ``after_s`` of
    pulling away, from a stop where the path turns / does not), else ``moving``."""
    n = len(d.t)
    out = np.full(n, "moving", dtype=object)
    still = d.speed < 0.01
    out[still] = "standing"
    ends = [i for i in range(1, n) if still[i - 1] and not still[i]]
    stops = d.notes.get("stops", [])
    turns = [st["turn"] for st in stops] if len(stops) == len(ends) else [False] * len(ends)
    for i, turn in zip(ends, turns):
        m = (d.t >= d.t[i]) & (d.t < d.t[i] + after_s) & ~still & (out == "moving")
        out[m] = "after_stop_turn" if turn else "after_stop"
    return out


def diagnose(rmap, limits, drives, results) -> dict:
    a = rmap.a
    way_index = {int(w): i for i, w in enumerate(a["way_id"])}
    name = lambda w: str(a["way_name"][w]) or str(a["way_ref"][w])  # noqa: E731
    lim_err: Counter = Counter()
    place_err: Counter = Counter()
    way_err: Counter = Counter()
    lim_total = 0.0
    far = 0
    near_time = 0.0
    examples: Counter = Counter()
    turn_err: Counter = Counter()
    phase_time: Counter = Counter()
    phase_lim_err: Counter = Counter()
    phase_far: Counter = Counter()
    phase_way_err: Counter = Counter()
    for d, ctxs in zip(drives, results):
        phase = phases(d)
        dt = np.diff(d.t, append=d.t[-1] + 0.1)
        prev, nxt = neighbours(d, 0, len(d.t))
        turn_last, turn_next = way_change_turns(rmap, d)
        starts = np.concatenate([[0.0], np.cumsum([float(rmap.edge_len[e]) for e in d.path_edges])])
        path_way = np.array([rmap.way_of_edge(e) for e in d.path_edges])
        for i, c in enumerate(ctxs):
            if d.outside[i]:
                continue
            tw = int(d.true_way[i])
            near = "near" if d.junction_m[i] <= 20 else "far"
            gap = not math.isfinite(d.lat[i])
            mw = way_index.get(c.way_id) if c.way_id is not None else None
            if mw is None:
                cause = "none:" + ("start" if d.t[i] < 5 else "gap" if gap else "other")
            elif mw == tw:
                cause = "right_way"
            elif mw == prev[i]:
                cause = f"previous_way:{near}"
            elif mw == nxt[i]:
                cause = f"next_way:{near}"
            elif name(mw) and name(mw) == name(tw):
                cause = f"same_name:{near}"
            else:
                cause = f"other_way:{near}"
            if math.isfinite(d.true_limit[i]):
                lim_total += dt[i]
                near_time += dt[i] * (d.junction_m[i] <= 20)
                phase_time[phase[i]] += dt[i]
                ok = c.speed_limit_mph is not None and abs(c.speed_limit_mph - d.true_limit[i]) < 0.5
                if not ok:
                    lim_err[cause] += dt[i]
                    phase_lim_err[f"{phase[i]}|{cause}"] += dt[i]
                    place_err[place_or_path(mw, float(d.along_m[i]), starts, path_way)] += dt[i]
                    if cause.startswith(("previous_way", "next_way")):
                        a_deg = turn_last[i] if cause.startswith("previous") else turn_next[i]
                        turn_err[cause.split(":")[0] + (":turn" if a_deg > 30 else ":straight")] += dt[i]
                    if mw is not None:
                        examples[(int(a["way_id"][tw]), float(limits.mph[tw]), int(a["way_id"][mw]), float(limits.mph[mw]), cause.split(":")[0])] += dt[i]
            if d.junction_m[i] > 20 and not gap:
                far += 1
                phase_far[phase[i]] += 1
                if mw != tw:
                    way_err[cause] += 1
                    phase_way_err[f"{phase[i]}|{cause}"] += 1
                    if mw is not None and abs(limits.mph[mw] - limits.mph[tw]) < 0.5:
                        way_err["(of these: limit same)"] += 1
    by_phase = {}
    for ph in ("moving", "standing", "after_stop", "after_stop_turn"):
        le = {k.split("|")[1]: round(100 * v / lim_total, 2) for k, v in phase_lim_err.most_common() if k.startswith(ph + "|")}
        we = {k.split("|")[1]: v for k, v in phase_way_err.most_common() if k.startswith(ph + "|")}
        by_phase[ph] = {"share_of_limit_time": round(phase_time[ph] / max(lim_total, 1e-9), 3),
                        "limit_error_pct_of_all_time": round(sum(le.values()), 2), "limit_error_by_cause": le,
                        "limit_error_pct_of_phase_time": round(100 * sum(v for k, v in phase_lim_err.items()
                                                                         if k.startswith(ph + "|")) / max(phase_time[ph], 1e-9), 2),
                        "far_fixes": phase_far[ph], "way_errors": sum(we.values()), "way_errors_by_cause": we}
    return {"limit_time_s": round(lim_total, 1), "near_junction_time_share": round(near_time / max(lim_total, 1e-9), 3),
            "by_phase": by_phase,
            "limit_error_share": round(sum(lim_err.values()) / max(lim_total, 1e-9), 4),
            "limit_error_by_cause_pct_of_time": {k: round(100 * v / lim_total, 2) for k, v in lim_err.most_common()},
            "limit_error_place_or_path_pct_of_time": {k: round(100 * v / lim_total, 2) for k, v in place_err.most_common()},
            "late_early_by_turn_pct_of_time": {k: round(100 * v / lim_total, 2) for k, v in turn_err.most_common()},
            "far_fixes": far, "way_error_share": round(sum(v for k, v in way_err.items() if not k.startswith("(")) / max(far, 1), 4),
            "way_errors_by_cause": dict(way_err.most_common()),
            "top_limit_error_pairs_s": [{"true_way": k[0], "true_mph": round(k[1], 1), "matched_way": k[2],
                                         "matched_mph": round(k[3], 1), "cause": k[4], "seconds": round(v, 1)}
                                        for k, v in examples.most_common(8)]}


class _Watched(Matcher):
    """Records, per Viterbi step, the best state's edge and place and its predecessor's edge."""

    def _step(self, fix):
        prev = list(self._states)
        m = super()._step(fix)
        if self._states and prev:
            b = int(np.argmax(self._scores))
            p = self._pred[b]
            if p >= 0:
                self.steps.append((fix.t_s, self._states[b][0], self._states[b][1], prev[p][0]))
        return m


def _err(starts, path_edges, edge, off, along):
    ks = [k for k, e in enumerate(path_edges) if e == edge]
    return min((starts[k] + off - along for k in ks), key=abs) if ks else None


def place_lag(rmap, drives, ms: MatchSettings) -> dict:
    per_drive, entries = [], []
    for d in drives:
        m = _Watched(rmap, ms)
        m.steps = []
        matches = []
        for i in range(len(d.t)):
            has = math.isfinite(d.lat[i])
            m.update(Fix(float(d.t[i]), float(d.lat[i]) if has else None, float(d.lon[i]) if has else None, float(d.speed[i])))
            matches.extend(m.take_smoothed())
        matches.extend(m.finish())
        starts = np.concatenate([[0.0], np.cumsum([float(rmap.edge_len[e]) for e in d.path_edges])])
        errs = []
        for i, got in enumerate(matches):
            if got is None or d.outside[i] or d.t[i] < 10 or not math.isfinite(d.along_m[i]):
                continue
            e = _err(starts, d.path_edges, got.edge, got.offset_m, d.along_m[i])
            if e is not None and abs(e) < 30:
                errs.append(e)
        if errs:
            per_drive.append(float(np.mean(errs)))
        on_path = set(d.path_edges)
        index = {round(float(t), 2): i for i, t in enumerate(d.t)}
        for t, edge, off, pedge in m.steps:
            i = index[round(t, 2)]
            if t >= 10 and edge in on_path and pedge not in on_path and math.isfinite(d.along_m[i]):
                entries.append(_err(starts, d.path_edges, edge, off, d.along_m[i]))
    v = np.array(per_drive)
    return {"lag_m": round(float(v.mean()), 2), "lag_se_m": round(float(v.std(ddof=1) / math.sqrt(len(v))), 2),
            "drives_behind": round(float((v < 0).mean()), 2), "drives": len(v),
            "entries_from_off_path": len(entries),
            "entry_place_error_median_m": round(float(np.median(entries)), 1) if entries else None,
            "entry_place_error_mean_m": round(float(np.mean(entries)), 1) if entries else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev",), default="dev")
    ap.add_argument("--drives", type=int, default=60)
    ap.add_argument("--map", type=Path, action="append", required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--place-lag", action="store_true", help="the place-lag measure instead of the error causes")
    ap.add_argument("--course", action="store_true", help="with the GNSS course over ground (= --cond fix+speed+course)")
    ap.add_argument("--cond", choices=CONDS, default="fix+speed", help="input condition (bench/route.py's)")
    ap.add_argument("--stops", action="store_true", help="drives with stops (bench/route.py --stops)")
    args = ap.parse_args()
    cond = "fix+speed+course" if args.course else args.cond
    tables = load_tables()
    settings = load_app().route
    overrides = parse_overrides(args.set)
    ms = MatchSettings(**(match_settings(settings).__dict__ | overrides))
    doc = {"split": args.split, "drives": args.drives, "stops": args.stops, "cond": cond,
           "match_settings": ms.__dict__, "maps": {}}
    for path in args.map:
        rmap = load_map(path, tables)
        limits = way_limits(rmap, tables, settings.vehicle_type, settings.nation)
        drives = make_drives(rmap, limits, args.split, args.drives, args.stops)
        if args.place_lag:
            doc["maps"][path.name] = place_lag(rmap, drives, ms)
            print(json.dumps({path.name: doc["maps"][path.name]}), flush=True)
            continue
        results = []
        for d in drives:
            tr = RouteTracker(rmap, settings, tables)
            tr.matcher = Matcher(rmap, ms)
            results.append(replay(tr, d, cond)[0])
        doc["maps"][path.name] = diagnose(rmap, limits, drives, results)
        print(json.dumps({path.name: doc["maps"][path.name]}, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
