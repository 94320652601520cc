"""Speech rendering beside perception: frames the detector keeps while a neural voice renders, at
the speaker's priority settings (``speech.tts.nice``).

A real dashcam clip (default: sim/drives/urban_busy_street_pedestrians_scooters_dad000487.mp4, 20
fps, looped in real time: frames the detector cannot keep up with are dropped, as from a camera)
goes through the real detector with the configured schedule. In alternating windows of
``--window`` seconds, a second thread renders Highway Code sentences with the real Piper voice (disk
cache off, so every sentence renders cold) back to back, the worst case of a long answer: at
niceness 0 (the same priority as perception) and at each ``--nice`` value; a window with no rendering
is the reference. Reported per condition: detector frames per second (mean over windows, and each
window), and the render time per sentence (ms p50 / p95: how much later an answer's sentence is ready).

    python bench/render_priority.py [--window 10] [--repeats 3] [--nice 5,10] [--json-out FILE]

JSON on stdout, a one-line summary per window on stderr. The machine's load is recorded: other
processes on the machine compete with both threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

import numpy as np

from vehicle_assist import clock, config, models, paths
from vehicle_assist.speech.speak import lower_priority
from common import emit_json, looped_clips, pct  # bench/common.py (the script's folder is on sys.path)

CLIP = "sim/drives/urban_busy_street_pedestrians_scooters_dad000487.mp4"
SENTENCES = [
    "You should leave at least a two-second gap between you and the vehicle in front on high-speed roads.",
    "The gap should be at least doubled on wet roads and increased still further on icy roads.",
    "Give motorcyclists, cyclists, horse riders and pedestrians at least as much room as you would when overtaking a car.",
    "You MUST NOT exceed the maximum speed limits for the road and for your vehicle.",
    "Look out for pedestrians waiting to cross and be prepared to slow down or stop to let them cross.",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def render_loop(renderer, nice: int, stop: threading.Event, times: list[float]) -> None:
    if nice > 0 and not lower_priority(nice):
        log(f"  could not lower the render thread's priority by {nice}")
    k = 0
    while not stop.is_set():
        t0 = clock.perf_ns()
        renderer.render(SENTENCES[k % len(SENTENCES)])
        times.append((clock.perf_ns() - t0) / 1e6)
        k += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", type=float, default=10.0, help="seconds per condition window")
    ap.add_argument("--repeats", type=int, default=3, help="windows per condition (conditions alternate)")
    ap.add_argument("--nice", default="5,10", help="comma-separated niceness values to compare with 0")
    ap.add_argument("--clip", default=CLIP)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.speech.tts import load_tts

    cfg = config.load_app()
    det = Detector(models.load_detector(), cfg.perception, threads=cfg.runtime.threads.detector)
    renderer = load_tts()
    if hasattr(renderer, "disk_cache"):
        renderer.disk_cache = None  # every sentence renders cold
    renderer.render("Warm up.")
    conditions = ["none", "nice0"] + [f"nice{int(n)}" for n in args.nice.split(",") if n.strip()]
    fps: dict[str, list[float]] = {c: [] for c in conditions}
    render_ms: dict[str, list[float]] = {c: [] for c in conditions}
    stop_all = threading.Event()
    frames = looped_clips([paths.resolve(args.clip)], clock.WallClock(), stop_all)
    det.detect(next(frames))
    loads = [load()]
    for rep in range(args.repeats):
        for cond in conditions:
            stop, times = threading.Event(), []
            worker = None
            if cond != "none":
                worker = threading.Thread(target=render_loop, args=(renderer, int(cond[4:]), stop, times), daemon=True)
                worker.start()
            t_end, n = clock.perf_ns() + int(args.window * 1e9), 0
            t0 = clock.perf_ns()
            for f in frames:
                det.detect(f)
                n += 1
                if clock.perf_ns() >= t_end:
                    break
            secs = (clock.perf_ns() - t0) / 1e9
            stop.set()
            if worker:
                worker.join()
            fps[cond].append(round(n / secs, 2))
            render_ms[cond] += times
            log(f"repeat {rep + 1} {cond:<6} detector {n / secs:5.1f} fps"
                + (f"  render p50 {np.percentile(times, 50):.0f} ms ({len(times)} sentences)" if times else "")
                + f"  load {load()[0]}")
        loads.append(load())
    stop_all.set()
    out = {"command": " ".join(["python", "bench/render_priority.py"] + sys.argv[1:]), "clip": args.clip,
           "window_s": args.window, "repeats": args.repeats, "machine_load": loads,
           "perception": {k: cfg.perception.model_dump().get(k) for k in ("imgsz", "full_every", "parallel_passes")},
           "conditions": {c: {"detector_fps_mean": round(float(np.mean(fps[c])), 2), "detector_fps": fps[c],
                              "render_ms_per_sentence": pct(render_ms[c])} for c in conditions}}
    emit_json(out, args.json_out)


if __name__ == "__main__":
    main()
