"""The whole runtime under load: perception rate and alert latency while the SLM answers, peak RSS.

A real approach sequence (sim/generated/approach, a real car composited into a real road, closing to
a critical TTC) is played in a loop in real time through the real detector, tracker, hazard
assessment, alert manager and audio arbiter (null sink, paced like a device); every
``--ask-every`` seconds a rule question goes to the real AdvisoryRun with the SLM route (SmolLM2,
llama.cpp). Everything is read back from the trip log.

python bench/runtime.py [--duration 60] [--clip lead-braking] [--ask-every 4] [--json-out FILE]
(JSON on stdout, a short summary on stderr)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
from pathlib import Path

import psutil

from vehicle_assist import clock as clock_mod
from vehicle_assist import config, paths, runtime, triplog
from vehicle_assist.audio_out import NullSink
from vehicle_assist.clock import WallClock

from common import emit_json, looped_clips, pct  # bench/common.py (the script's folder is on sys.path)

QUESTION = "What is the stopping distance at 50 miles per hour?"




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of running")
    ap.add_argument("--clip", default="lead-braking", help="approach sequence under sim/generated/approach")
    ap.add_argument("--ask-every", type=float, default=4.0, help="seconds between questions")
    ap.add_argument("--json-out", type=Path, help="also write the JSON here")
    args = ap.parse_args()

    clip = paths.sim() / "generated" / "approach" / f"{args.clip}.mp4"
    if not clip.is_file():
        sys.exit(f"{clip} missing: generate the approach sequences first "
                 "(python -c 'from vehicle_assist.tools.approach import ensure; ensure(\"test\")')")
    cfg = config.load_app()
    cfg = cfg.model_copy(update={"advisory": cfg.advisory.model_copy(update={"route": "slm"})})
    proc = psutil.Process()
    peak = {"rss": proc.memory_info().rss}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.2):
            peak["rss"] = max(peak["rss"], proc.memory_info().rss)

    threading.Thread(target=sample, daemon=True).start()
    t0 = clock_mod.perf_ns()
    parts = runtime.load_parts(cfg, voice=True)
    load_s = (clock_mod.perf_ns() - t0) / 1e9
    rss_loaded = proc.memory_info().rss
    clock = WallClock()
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        trip = Path(tmp) / "trip.jsonl"
        rt = runtime.build(cfg, runtime.Sources(frames=looped_clips([clip], clock, stop)), clock,
                           runtime.Sinks(NullSink(), trip), parts)

        async def go() -> dict:
            async def asker() -> None:
                while True:
                    await asyncio.sleep(args.ask_every)
                    rt.ask(QUESTION)

            task = asyncio.ensure_future(asker())
            try:
                return await rt.run(args.duration)
            finally:
                task.cancel()
                stop.set()

        summary = asyncio.run(go())
        sampling.set()
        header, records = triplog.read(trip)
        recs = list(records)
    gen: list[tuple[int, int]] = []
    open_gen: int | None = None
    timings: dict[str, list[tuple[int, float]]] = {}
    alerts: dict[str, int] = {}
    audio_starts: list[tuple[int, str]] = []
    for r in recs:
        m = r["msg"]
        if r["topic"] == "timings":
            timings.setdefault(m["stage"], []).append((r["t_ns"], m["ms"]))
        elif r["topic"] == "advisory_events" and m["stage"] == "generate":
            if m["type"] == "start":
                open_gen = r["t_ns"]
            elif open_gen is not None:
                gen.append((open_gen, r["t_ns"]))
                open_gen = None
        elif r["topic"] == "alerts" and m["state"] == "start":
            alerts[m["name"]] = alerts.get(m["name"], 0) + 1
        elif r["topic"] == "speech" and m["kind"] == "start" and m["source"].startswith("alert:"):
            audio_starts.append((r["t_ns"], m["source"][6:]))

    def during(t: int) -> bool:
        return any(a <= t <= b for a, b in gen)

    detect_t = [t for t, _ in timings.get("detect", [])]
    span_s = (detect_t[-1] - detect_t[0]) / 1e9 if len(detect_t) > 1 else 0.0
    gen_s = sum(b - a for a, b in gen) / 1e9
    in_gen = sum(1 for t in detect_t if during(t))
    f2a = timings.get("frame_to_audio", [])
    doc = {
        "bench": "runtime",
        "clip": str(clip.name),
        "duration_s": args.duration,
        "threads": cfg.runtime.threads.model_dump(),
        "model_load_s": round(load_s, 1),
        "frames_processed": len(detect_t),
        "perception_fps": round(len(detect_t) / span_s, 1) if span_s else None,
        "perception_fps_while_generating": round(in_gen / gen_s, 1) if gen_s else None,
        "slm_generating_s": round(gen_s, 1),
        "slm_generate_ms": pct([(b - a) / 1e6 for a, b in gen]),
        "advisories": summary["published"].get("advisories", 0),
        "detect_ms": pct([ms for _, ms in timings.get("detect", [])]),
        "frame_to_decision_ms": pct([ms for _, ms in timings.get("frame_to_decision", [])]),
        "frame_to_decision_ms_while_generating": pct([ms for t, ms in timings.get("frame_to_decision", []) if during(t)]),
        "frame_to_alert_audio_ms": pct([ms for _, ms in f2a]),
        "frame_to_alert_audio_ms_while_generating": pct([ms for t, ms in f2a if during(t)]),
        "alerts_started": alerts,
        "dropped": summary["dropped"],
        "errors": summary["published"].get("errors", 0),
        "rss_mib": {"after_load": round(rss_loaded / 2**20), "peak": round(peak["rss"] / 2**20)},
        "records": summary["records"],
    }
    emit_json(doc, args.json_out, indent=2)
    print(f"perception {doc['perception_fps']} fps ({doc['perception_fps_while_generating']} while the SLM generates, "
          f"{doc['slm_generating_s']} s of generation); frame->alert audio {doc['frame_to_alert_audio_ms']}; "
          f"peak RSS {doc['rss_mib']['peak']} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
