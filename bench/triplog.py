"""Cost of logging: bus.publish of a logged topic through the trip log, with and without fsync.

python bench/triplog.py [--n 5000] [--json-out FILE]   (JSON on stdout, summary on stderr)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from vehicle_assist import config, messages as m, triplog
from vehicle_assist.bus import Bus
from vehicle_assist.clock import WallClock, perf_ns
from common import emit_json  # bench/common.py (the script's folder is on sys.path)


def run(n: int, fsync: bool, folder: Path) -> dict:
    """Publish ``n`` hazard tuples (a typical logged record) and time each publish."""
    clock = WallClock()
    bus = Bus(clock)
    log = triplog.TripLog(folder / f"bench-{int(fsync)}.jsonl", triplog.provenance(config.AppConfig()), fsync=fsync)
    bus.add_sink(log.append)
    msg = (m.Hazard(0, "collision", m.HazardLevel.WARNING, "car", 3, 14.2, 2.1, True, 6.5),
           m.Hazard(0, "vru", m.HazardLevel.CAUTION, "person", 7, 22.0, None, False, None))
    us = []
    for _ in range(n):
        t = perf_ns()
        bus.publish("hazards", msg)
        us.append((perf_ns() - t) / 1e3)
    log.close()
    size = log.path.stat().st_size
    a = np.array(us)
    return {"fsync": fsync, "records": n, "bytes_per_record": round(size / n, 1),
            "publish_us": {"p50": round(float(np.percentile(a, 50)), 1), "p99": round(float(np.percentile(a, 99)), 1),
                           "max": round(float(a.max()), 1)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=5000, help="records per mode")
    ap.add_argument("--json-out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(args.n, False, Path(tmp)), run(min(args.n, 1000), True, Path(tmp))]
    doc = {"bench": "triplog", "results": results}
    emit_json(doc, args.json_out, indent=2)
    for r in results:
        p = r["publish_us"]
        print(f"fsync={r['fsync']}: publish+log p50 {p['p50']} us, p99 {p['p99']} us, {r['bytes_per_record']} B/record",
              file=sys.stderr)


if __name__ == "__main__":
    main()
