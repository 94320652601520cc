"""The whole-track match with and without the smoothing of the place (vehicle_assist/route/smooth.py).

    python bench/route_smooth.py [--split dev] [--drives 20] [--cond fix+speed] [--stops] --map FILE.osm ... [--out FILE.json]

The same drives as bench/route.py, matched as ``route match`` does (the shipped config: the whole
track); per map and condition, the figures of bench/route.py (way, limit, features) from the
matcher's own places on its best path through the whole track ("raw") and from the smoothed places
("smoothed"), and the smoothing's time per drive.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from route import CONDS, make_drives, replay, score  # noqa: E402

import vehicle_assist.route.context as context  # noqa: E402
from vehicle_assist.config import load_app  # noqa: E402
from vehicle_assist.route.context import RouteTracker  # noqa: E402
from vehicle_assist.route.limits import way_limits  # noqa: E402
from vehicle_assist.route.map import load_map, load_tables  # noqa: E402

KEYS = ("road_correct", "limit_correct_time", "claims_outside", "feature_recall", "feature_precision")


class _Both(RouteTracker):
    """A whole-track tracker that also keeps the matcher's own places (before the smoothing)."""

    raw: list | None = None
    smooth_s = 0.0

    def flush(self):
        real = context.smooth_matches

        def keep(rmap, t, xy, odo, matches, *a, **k):
            self.raw = list(matches)
            t0 = time.perf_counter()
            out = real(rmap, t, xy, odo, matches, *a, **k)
            self.smooth_s = time.perf_counter() - t0
            return out

        context.smooth_matches = keep
        try:
            return super().flush()
        finally:
            context.smooth_matches = real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--drives", type=int, default=20)
    ap.add_argument("--map", type=Path, action="append", required=True)
    ap.add_argument("--cond", choices=CONDS, action="append", default=None)
    ap.add_argument("--stops", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    tables, settings = load_tables(), load_app().route
    if not settings.match_whole_track:
        sys.exit("route.match_whole_track is off in the config: nothing to compare")
    doc: dict = {"split": args.split, "drives_per_map": args.drives, "stops": args.stops, "maps": {}}
    for path in args.map:
        rmap = load_map(path, tables)
        limits = way_limits(rmap, tables, settings.vehicle_type, settings.nation)
        drives = make_drives(rmap, limits, args.split, args.drives, args.stops)
        per: dict = {}
        for cond in args.cond or list(CONDS):
            raw, smoothed, secs = [], [], []
            for d in drives:
                tr = _Both(rmap, settings, tables)
                ctxs = replay(tr, d, cond)[0]
                smoothed.append(ctxs)
                secs.append(tr.smooth_s)
                raw.append(ctxs if tr.raw is None else [c if m is None else tr.context_of(m, float(d.speed[i]), c.t_ns)
                                                        for i, (m, c) in enumerate(zip(tr.raw, ctxs))])
            a, b = score(rmap, limits, drives, raw), score(rmap, limits, drives, smoothed)
            per[cond] = {"raw": {k: a[k] for k in KEYS}, "smoothed": {k: b[k] for k in KEYS},
                         "smooth_s_per_drive": round(sum(secs) / len(secs), 3)}
            print(f"{path.name} {cond}: way {a['road_correct']:.4f} -> {b['road_correct']:.4f}, "
                  f"limit {a['limit_correct_time']:.4f} -> {b['limit_correct_time']:.4f}", flush=True)
        doc["maps"][path.name] = per
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
