"""Perception frame rate with the route lane on and off: a real camera clip plus a GPS track on the map.

A real dashcam clip (default: sim/drives/urban_busy_street_pedestrians_scooters_dad000487.mp4, 20
fps, looped) is fed in real time through the real detector, tracker, hazards and alerts, while a
synthetic GPS + speed track along the real roads of the Leeds extract (vehicle_assist.route.synth,
10 Hz, 10 m GNSS noise) is the vehicle source. Runs alternate route lane off (``route.map: null``),
on (``route.map``: the Leeds extract), and on but silent (its advisories and speeding alert not
passed on: the lane's own cost without the speech it causes), ``--repeats`` times each,
``--duration`` seconds per run, the models loaded once; everything is read back from each run's trip log: perception frames
per second (detect timings over their span), detect and frame-to-decision ms, and with the lane on
the route context updates (count, ms per fix, ms per second), advisories logged, and the
process CPU seconds per second (all threads). The camera clip and the track are unrelated (no
drive has both a camera and GPS on these maps); what is measured is the cost of the lane beside
perception on the same event loop and CPUs.

    python bench/route_runtime.py [--duration 30] [--repeats 3] [--yaw] [--json-out bench/results/route_runtime.json]

JSON on stdout, a one-line summary on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from vehicle_assist import paths, runtime, triplog
from vehicle_assist import config as config_mod
from vehicle_assist.audio_out import NullSink
from vehicle_assist.clock import WallClock
from vehicle_assist.route.limits import way_limits
from vehicle_assist.route.map import load_map, load_tables
from vehicle_assist.route.synth import drive, random_path
from vehicle_assist.vehicle import load_telemetry_file

from common import looped_clips, pct  # bench/common.py (the script's folder is on sys.path)

CONDITIONS = ("off", "on", "on_silent")
"""Route lane off; on; on with its advisories and speeding alert not passed on (isolates the lane's
own cost from the cost of speaking what it advises)."""
CLIP = "sim/drives/urban_busy_street_pedestrians_scooters_dad000487.mp4"
MAP = "sim/maps/leeds_city_centre.osm"


def make_track(map_path: Path, seconds: float, out: Path, yaw: bool = False) -> Path:
    """A GPS + speed CSV along the map's roads, at least ``seconds`` long (10 Hz, 10 m noise); with
    ``yaw``, also the synthetic gyro's yaw rate (the matcher then integrates and anchors a heading)."""
    rmap = load_map(map_path)
    limits = way_limits(rmap, load_tables())
    rng = np.random.default_rng(7)
    d = drive(rmap, limits, random_path(rmap, rng, max(1500.0, seconds * 15.0)), rng, "bench", sigma_m=10.0)
    d.write_csv(out, yaw=yaw)
    return out


def one_run(cfg, parts, clip: Path, track: Path, duration: float, tmp: Path, tag: str, silent: bool = False) -> dict:
    clock = WallClock()
    stop = threading.Event()
    trip = tmp / f"{tag}.jsonl"
    src = runtime.Sources(frames=looped_clips([clip], clock, stop),
                          vehicle=load_telemetry_file(track, start_ns=clock.now_ns()))
    rt = runtime.build(cfg, src, clock, runtime.Sinks(NullSink(), trip), parts)
    if silent:  # the lane runs and publishes, but its advisories and speeding alert are not passed on
        rt._on_route_step = lambda step: None
    cpu0 = time.process_time()

    async def go() -> dict:
        try:
            return await rt.run(duration)
        finally:
            stop.set()

    summary = asyncio.run(go())
    cpu_s = time.process_time() - cpu0
    _, records = triplog.read(trip)
    timings: dict[tuple[str, str], list[tuple[int, float]]] = {}
    route_records = advisories = 0
    for r in records:
        m = r["msg"]
        if r["topic"] == "timings":
            timings.setdefault((m.get("lane", ""), m["stage"]), []).append((r["t_ns"], m["ms"]))
        elif r["topic"] == "route":
            route_records += 1
        elif r["topic"] == "advisories":
            advisories += 1
    detect = [t for (lane, stage), v in timings.items() if stage == "detect" for t, _ in v]
    detect.sort()
    span = (detect[-1] - detect[0]) / 1e9 if len(detect) > 1 else 0.0
    route_ms = [ms for (lane, stage), v in timings.items() if lane == "route" for _, ms in v]
    return {"condition": tag.rsplit("-", 1)[0], "route_lane": tag.startswith("on"), "frames_processed": len(detect),
            "perception_fps": round((len(detect) - 1) / span, 2) if span else None,
            "detect_ms": pct([ms for (_, stage), v in timings.items() if stage == "detect" for _, ms in v]),
            "frame_to_decision_ms": pct([ms for (_, stage), v in timings.items() if stage == "frame_to_decision"
                                         for _, ms in v]),
            "route_records": route_records, "route_update_ms": pct(route_ms),
            "route_ms_per_s": round(sum(route_ms) / duration, 2), "advisories": advisories,
            "process_cpu_s_per_s": round(cpu_s / duration, 2),
            "dropped": summary.get("dropped"), "errors": summary["published"].get("errors", 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each condition (alternating off, on)")
    ap.add_argument("--clip", default=CLIP)
    ap.add_argument("--map", default=MAP)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--yaw", action="store_true", help="the track carries a gyro's yaw rate too")
    args = ap.parse_args()
    clip, map_path = paths.resolve(args.clip), paths.resolve(args.map)
    for p in (clip, map_path):
        if not p.is_file():
            sys.exit(f"{p} missing (vehicle-assist fetch)")
    base = config_mod.load_app()
    parts = runtime.load_parts(base, voice=False)
    runs = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        track = make_track(map_path, args.duration + 5.0, tmp / "track.csv", yaw=args.yaw)
        for k in range(args.repeats):
            for cond in CONDITIONS:
                on = cond != "off"
                cfg = base.model_copy(update={"route": base.route.model_copy(update={"map": str(map_path) if on else None})})
                runs.append(one_run(cfg, parts, clip, track, args.duration, tmp, f"{cond}-{k}", silent=cond == "on_silent"))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    fps = {c: [r["perception_fps"] for r in runs if r["condition"] == c and r["perception_fps"]] for c in CONDITIONS}
    doc = {"bench": "route_runtime", "clip": clip.name, "map": map_path.name, "duration_s": args.duration, "yaw": args.yaw,
           "repeats": args.repeats, "cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
           "threads": base.runtime.threads.model_dump(),
           "perception_fps": fps,
           "perception_fps_mean": {c: round(statistics.mean(v), 2) if v else None for c, v in fps.items()},
           "perception_fps_sd": {c: round(statistics.stdev(v), 2) if len(v) > 1 else None for c, v in fps.items()},
           "route_update_ms_on": [r["route_update_ms"] for r in runs if r["route_lane"]],
           "runs": runs}
    text = json.dumps(doc, indent=1)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    print(f"perception fps {fps} (load avg {doc['load_avg']})", file=sys.stderr)


if __name__ == "__main__":
    main()
