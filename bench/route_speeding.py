"""Speeding alerts on the route bench's synthetic drives: how many are false, how many are missed, how
late they come, with the limit the matcher decides at once (the runtime lane) or with a fixed lag.

    python bench/route_speeding.py [--split dev|test] [--drives N] [--map FILE.osm ...] [--cond C ...]
                                   [--lag 0 --lag 1] [--stops] [--out FILE.json]

The drives are bench/route.py's (speed 80-95% of each way's limit; every 4th drive a scripted
speeding stretch). Per drive, the speeding decision of the lane (:func:`vehicle_assist.route.advice.speeding`,
the table in ``configs/route_advice.yaml``: on after ``persist_s`` more than ``on_over_mph`` over)
runs twice over the fixes: on the true applicable limit (the truth's alerts) and on the matched one.
A matched alert is **false** when no truth alert is on within ``--window`` seconds of its start, a
truth alert **missed** when no matched alert is on within the window of its start; **delay**: start
of the matched alert minus the truth's, over the matched pairs. The drives keep to 80-95% of the limit,
so few alerts are false whatever the matcher does; **under_claims** counts the stretches of at least
``persist_s`` where the matched limit is below the true one: the false alerts of a driver who keeps
exactly to the limit. With a lag the matched limit of a fix
is known only ``lag`` to ``lag`` + one matching step later, so its alert starts that much later in
a runtime (``record_delay_s`` of bench/route.py; here each alert is placed at its fix's time, and the
delay added is reported beside it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from route import CONDS, make_drives, replay  # noqa: E402  (bench/route.py)

from vehicle_assist.config import load_app  # noqa: E402
from vehicle_assist.route import advice as adv  # noqa: E402
from vehicle_assist.route.context import RouteTracker  # noqa: E402
from vehicle_assist.route.limits import way_limits  # noqa: E402
from vehicle_assist.route.map import load_map, load_tables  # noqa: E402

MAPS = ("sim/maps/leeds_city_centre.osm", "sim/maps/manchester_kingsway.osm")


def alerts(t: np.ndarray, limits: list[float | None], speed: np.ndarray, s: adv.SpeedingSettings) -> list[tuple[float, float]]:
    """(start, end) seconds of each alert the speeding decision raises over these samples (pure)."""
    state, out, start = adv.SpeedingState(), [], None
    for i in range(len(t)):
        state = adv.speeding(limits[i], float(speed[i]), int(round(t[i] * 1e9)), state, s)
        if state.active and start is None:
            start = float(t[i])
        elif not state.active and start is not None:
            out.append((start, float(t[i])))
            start = None
    if start is not None:
        out.append((start, float(t[-1])))
    return out


def under_runs(t: np.ndarray, matched: list[float | None], true: np.ndarray, min_s: float) -> int:
    """Stretches of at least ``min_s`` where the matched limit is below the true one (pure): the false
    speeding alerts of a driver who keeps exactly to the limit."""
    runs, start = 0, None
    for i in range(len(t) + 1):
        low = i < len(t) and matched[i] is not None and math.isfinite(true[i]) and matched[i] < true[i] - 0.5
        if low and start is None:
            start = float(t[i])
        elif not low and start is not None:
            runs += float(t[i - 1]) - start >= min_s
            start = None
    return runs


def near(a: tuple[float, float], others: list[tuple[float, float]], window: float) -> tuple[float, float] | None:
    """The first of ``others`` on at some time within ``window`` s of ``a``'s start."""
    for o in others:
        if o[0] - window <= a[0] <= o[1] + window:
            return o
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--drives", type=int, default=20)
    ap.add_argument("--map", type=Path, action="append", default=None)
    ap.add_argument("--cond", choices=CONDS, action="append", default=None, help="input conditions (default all three)")
    ap.add_argument("--lag", type=float, action="append", default=None, help="matcher lags, s (default 0 and 1)")
    ap.add_argument("--stops", action="store_true")
    ap.add_argument("--window", type=float, default=5.0, help="seconds either side for a matched pair")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    settings, tables = load_app().route, load_tables()
    table = adv.load_table().speeding
    lags, conds = args.lag or [0.0, 1.0], args.cond or list(CONDS)
    doc: dict = {"split": args.split, "drives": args.drives, "stops": args.stops, "window_s": args.window,
                 "speeding": table.model_dump(), "maps": {}}
    for path in args.map or [Path(m) for m in MAPS]:
        rmap = load_map(path, tables)
        limits = way_limits(rmap, tables, settings.vehicle_type, settings.nation)
        drives = make_drives(rmap, limits, args.split, args.drives, args.stops)
        hours = sum(float(d.t[-1] - d.t[0]) for d in drives) / 3600
        truth = [alerts(d.t, [None if not math.isfinite(x) else float(x) for x in d.true_limit], d.speed, table)
                 for d in drives]
        per_map: dict = {"hours": round(hours, 2), "truth_alerts": sum(map(len, truth))}
        for cond in conds:
            for lag in lags:
                tr_settings = settings.model_copy(update={"match_lag_s": lag, "match_whole_track": False})
                got, false, missed, delays, rec_delay, under = 0, 0, 0, [], [], 0
                for d, tru in zip(drives, truth):
                    ctxs, _, delay = replay(RouteTracker(rmap, tr_settings, tables), d, cond)
                    rec_delay += delay
                    lim = [c.speed_limit_mph if c.way_id is not None else None for c in ctxs]
                    mine = alerts(d.t, lim, d.speed, table)
                    under += under_runs(d.t, lim, d.true_limit, table.persist_s)
                    got += len(mine)
                    for a in mine:
                        o = near(a, tru, args.window)
                        if o is None:
                            false += 1
                        else:
                            delays.append(a[0] - o[0])
                    missed += sum(near(o, mine, args.window) is None for o in tru)
                per_map[f"{cond} lag {lag:g}"] = {
                    "alerts": got, "false": false, "false_per_hour": round(false / max(hours, 1e-9), 2),
                    "missed": missed, "under_claims": under,
                    "under_claims_per_hour": round(under / max(hours, 1e-9), 2), "delay_s_median": round(float(np.median(delays)), 2) if delays else None,
                    "record_delay_s_p50": round(float(np.median(rec_delay)), 2) if rec_delay else 0.0}
                print(json.dumps({path.name: {f"{cond} lag {lag:g}": per_map[f"{cond} lag {lag:g}"]}}), flush=True)
        doc["maps"][path.name] = per_map
    text = json.dumps(doc, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
