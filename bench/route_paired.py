"""Paired comparison of matcher settings on the route bench's drives (dev tuning): the same drives
replayed with the base settings and with each variant, per-drive differences.

    python bench/route_paired.py --drives 60 --map FILE.osm ... [--cond fix+speed+course]
        [--variant "name:FIELD=VALUE,FIELD=VALUE" ...] [--base-cache FILE.json] [--out FILE.json] [--stops]

Per map and condition: the bench's pooled figures (way: matched way right at fixes > 20 m from a
junction; limit: share of time with the right limit) for the base and each variant, and the paired
difference, drive by drive (weighted by each drive's far-from-junction fixes / limit time), mean
+- standard error, with the number of drives better / worse. ``--base-cache``: the base's per-drive
figures are read from (or written to) this file, so that only the variants are replayed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from route import CONDS, make_drives, parse_overrides, replay, score  # noqa: E402

from vehicle_assist.config import load_app  # noqa: E402
from vehicle_assist.route.context import RouteTracker, match_settings  # noqa: E402
from vehicle_assist.route.limits import way_limits  # noqa: E402
from vehicle_assist.route.map import load_map, load_tables  # noqa: E402
from vehicle_assist.route.match import Matcher, MatchSettings  # noqa: E402


def per_drive(rmap, limits, drives, settings, tables, ms: MatchSettings, cond: str) -> list[list[float]]:
    """Per drive: [far fixes, far fixes right, limit time, limit time right]."""
    out = []
    for d in drives:
        tr = RouteTracker(rmap, settings, tables)
        tr.matcher = Matcher(rmap, ms)
        r = replay(tr, d, cond)[0]
        s = score(rmap, limits, [d], [r])
        far = s["fixes_far_from_junction"]
        out.append([far, s["road_correct"] * far, s["limit_time_s"], s["limit_correct_time"] * s["limit_time_s"]])
    return out


def paired(base: list[list[float]], var: list[list[float]]) -> dict:
    b, v = np.asarray(base), np.asarray(var)
    res = {}
    for name, n, k in (("way", 0, 1), ("limit", 2, 3)):
        w = b[:, n]
        ok = w > 0
        diff = (v[ok, k] - b[ok, k]) / w[ok]  # per-drive share difference
        ww = w[ok] / w[ok].sum()
        mean = float((ww * diff).sum())
        se = float(math.sqrt(((ww * (diff - mean)) ** 2).sum() * len(diff) / max(len(diff) - 1, 1)))
        res[name] = {"base": round(100 * b[:, k].sum() / w.sum(), 2), "variant": round(100 * v[:, k].sum() / w.sum(), 2),
                     "diff_pts": round(100 * mean, 2), "se": round(100 * se, 2),
                     "better": int((diff > 1e-9).sum()), "worse": int((diff < -1e-9).sum())}
    return res


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, body = text.partition(":")
    return name, parse_overrides([kv for kv in body.split(",") if kv])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drives", type=int, default=60)
    ap.add_argument("--map", type=Path, action="append", required=True)
    ap.add_argument("--cond", choices=CONDS, action="append", default=None)
    ap.add_argument("--base", default="", help="FIELD=VALUE,... overrides of the base")
    ap.add_argument("--variant", action="append", default=[], help="NAME:FIELD=VALUE,...")
    ap.add_argument("--base-cache", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--stops", action="store_true", help="drives with stops (signals, give-way, turns, crossings)")
    args = ap.parse_args()
    tables = load_tables()
    settings = load_app().route
    ms0 = match_settings(settings)
    base_ms = MatchSettings(**(ms0.__dict__ | parse_variant("base:" + args.base)[1]))
    conds = args.cond or ["fix+speed", "fix+speed+course"]
    cache = json.loads(args.base_cache.read_text()) if args.base_cache and args.base_cache.exists() else {}
    doc = {"split": "dev", "drives": args.drives, "base": base_ms.__dict__, "variants": args.variant, "stops": args.stops, "maps": {}}
    for path in args.map:
        rmap = load_map(path, tables)
        limits = way_limits(rmap, tables, settings.vehicle_type, settings.nation)
        drives = make_drives(rmap, limits, "dev", args.drives, stops=args.stops)
        for cond in conds:
            key = f"{path.name}|{cond}|{args.drives}|{'stops|' if args.stops else ''}{json.dumps(base_ms.__dict__, sort_keys=True, default=str)}"
            if key not in cache:
                cache[key] = per_drive(rmap, limits, drives, settings, tables, base_ms, cond)
                if args.base_cache:
                    args.base_cache.write_text(json.dumps(cache) + "\n")
            row = {}
            for text in args.variant:
                name, over = parse_variant(text)
                vm = MatchSettings(**(base_ms.__dict__ | over))
                row[name] = paired(cache[key], per_drive(rmap, limits, drives, settings, tables, vm, cond))
            if not row:
                row["base"] = paired(cache[key], cache[key])
            doc["maps"].setdefault(path.name, {})[cond] = row
            print(json.dumps({path.name: {cond: row}}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
