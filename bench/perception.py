"""Perception / safety-lane benchmark: throughput, weights, approach warnings, false alerts, latency.

    python bench/perception.py [--split test|dev] [--sections throughput,weights,approach,negatives,latency]
                               [--json-out FILE]

Prints one JSON document on stdout and a short summary on stderr. Sections:

- throughput: detect + track + assess per frame over real 720p clips, lockstep (frames/s, p50/p95 ms),
  and the process CPU time per frame (independent of other load: 1000 / cpu_ms is the frame rate
  one free core would give, a lower bound for two).
- weights: one detector pass (320 px) with each weights file in the model cache (fp32 vs int8).
- approach: the NHTSA approach sequences (vehicle_assist.tools.approach, generated if missing):
  time of the first forward-collision alert and the true TTC then, against the required TTC.
- negatives: ordinary driving (sim/drives/*.mp4: the highway clips whole, the urban clips' quiet
  stretches before their events): forward-collision and in-path hazard alerts per hour (all are false).
- latency: the approach sequences played in real time (latest-frame source, frames dropped when the
  lane is slower than the camera) through the lane, the pre-rendered alert phrases and the audio
  arbiter (paced null sink, an advisory playing): frame captured -> alert audio start.
All sections also check that no alert started twice within its cooldown.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vehicle_assist import clock, config, fetch, models
from vehicle_assist.audio_out import AudioArbiter, NullSink
from vehicle_assist.messages import SpeechRequest, Tier
from vehicle_assist.speech.tts import load_tts
from vehicle_assist.perception import video
from vehicle_assist.tools import approach
from vehicle_assist.perception.sources import open_source
from vehicle_assist.safety import alerts
from vehicle_assist.safety import lane as safety_lane
from vehicle_assist.safety.voice import AlertVoice
from common import emit_json, save_json  # bench/common.py (the script's folder is on sys.path)

FCW = ("forward-collision", "brake-now")
REAL_CLIPS = ("highway_cars_1s.mp4", "urban_boston_parked_cars_nuscenes_2s.mp4",
              "urban_busy_street_pedestrians_scooters_dad000487.mp4",
              "urban_crosswalk_scooters_cyclist_fall_dad000617.mp4",
              "urban_narrow_street_taxi_pedestrians_dad000597.mp4")
NEGATIVE_SPLIT = {"dev": REAL_CLIPS[:3], "test": REAL_CLIPS[3:],
                  "ordinary": ("highway_project_video_start_8s.mp4", "highway_project_video_bridge_6.7s.mp4",
                               "highway_project_video_black_car_4s.mp4")}
"""Real clips used while tuning (dev), held out (test), and ordinary highway driving nobody tuned on
(issue 16: Udacity project_video excerpts); all are reported."""
QUIET_UNTIL_S = {"urban_busy_street_pedestrians_scooters_dad000487.mp4": 3.0,
                 "urban_crosswalk_scooters_cyclist_fall_dad000617.mp4": 4.5,
                 "urban_narrow_street_taxi_pedestrians_dad000597.mp4": 4.4}
"""Urban clips with an event at the end: only the quiet stretch before it counts as ordinary driving
(the same windows as sim/scenarios and bench/replay_dev.py); other clips count whole."""
SYSTEM_ALERTS = ("camera-lost", "perception-lagging")


def _plain(o):
    """numpy scalars as numbers, anything else JSON cannot hold as text."""
    return o.item() if hasattr(o, "item") else str(o)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load() -> dict:
    """Load average now (1, 5, 15 min) and the CPU count: the bench shares its CPUs."""
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}


def cooldown_violations(starts: list[tuple[float, str]], table) -> list[dict]:
    """Alerts that started again within their cooldown."""
    last: dict[str, float] = {}
    bad = []
    for t, name in starts:
        if name in last and t - last[name] < table[name].cooldown_s - 1e-6:
            bad.append({"name": name, "t_s": t, "previous_t_s": last[name]})
        last[name] = t
    return bad


def app_config():
    """The perception section and the thread counts of the onboard config (validated alone)."""
    return config.load_app(only=("perception", "runtime.threads"))


def run_clip(path: Path, settings, calib=None, model=None, ego_speed=None) -> dict:
    """Lockstep run of the lane over one clip: alert starts and per-frame timings."""
    starts, totals, stages = [], [], {"detect": [], "motion": [], "track": [], "assess": []}
    n = 0
    cpu0 = time.process_time()
    lane = safety_lane.load(settings, app_config().runtime.threads.detector, calib, model)
    for frame, step in safety_lane.run_lockstep(lane, str(path), ego_speed):
        n += 1
        totals.append(step.result.timings["total"])
        for k in stages:
            stages[k].append(step.result.timings.get(k, 0.0))
        starts += [(round(e.t_ns / 1e9, 3), e.name) for e in step.events if e.state == "start"]
    cpu_ms = (time.process_time() - cpu0) * 1000  # whole process (decode + lane), independent of other load
    return {"frames": n, "starts": starts, "totals_ms": totals, "stages_ms": stages,
            "cpu_ms_per_frame": round(cpu_ms / n, 1) if n else None}


def section_throughput(settings, model) -> dict:
    clips = ["urban_busy_street_pedestrians_scooters_dad000487.mp4", "highway_cars_1s.mp4"]
    before = load()
    totals, stages = [], {"detect": [], "motion": [], "track": [], "assess": []}
    c0 = clock.cpu_ns()
    for name in clips:
        r = run_clip(fetch.data_path("drives", name), settings, model=model)
        totals += r["totals_ms"][3:]  # the first frames warm the runtime
        for k in stages:
            stages[k] += r["stages_ms"][k][3:]
    cpu_ms = (clock.cpu_ns() - c0) / 1e6 / max(len(totals) + 3 * len(clips), 1)
    t = np.array(totals)
    return {
        "clips": clips, "frames": len(t), "fps_mean": round(1000 / t.mean(), 2),
        "cpu_ms_per_frame": round(cpu_ms, 2),
        "fps_one_free_core_estimate": round(1000 / cpu_ms, 1),
        "backend": _backend(settings, model),
        "ms_p50": round(float(np.percentile(t, 50)), 2), "ms_p95": round(float(np.percentile(t, 95)), 2),
        "stage_ms_mean": {k: round(float(np.mean(v)), 2) for k, v in stages.items()},
        "passes": {"full_every": settings.full_every, "roi_every": settings.roi.every, "imgsz": settings.imgsz,
                   "roi_imgsz": settings.roi.imgsz},
        "load_before": before, "load_after": load(),
    }


def _backend(settings, model) -> str:
    from vehicle_assist.perception.detector import Detector

    return Detector(model, settings, threads=app_config().runtime.threads.detector).backend


def section_weights(settings) -> dict:
    """One 320 px pass per weights file and backend: wall ms (load-dependent) and process CPU ms."""
    import cv2

    from vehicle_assist.perception.detector import Detector

    res = models.resolve("detector")
    img = cv2.imread(str(fetch.data_path("frames", "highway_test1.jpg")))
    out = {}
    for p in sorted(res.path.parent.glob("yolov8n_*.onnx")):
        m = models.load_detector(models.Resolved("detector", res.kind, p, "bench", p.stat().st_size, {}))
        for backend in ("ultralytics", "onnxruntime"):
            det = Detector(m, settings.model_copy(update={"backend": backend}), threads=app_config().runtime.threads.detector)
            det._predict(img, 320)
            ms, cpu, boxes = [], [], 0
            for _ in range(10):
                t0, c0 = clock.perf_ns(), clock.cpu_ns()
                boxes = len(det._predict(img, 320))
                ms.append((clock.perf_ns() - t0) / 1e6)
                cpu.append((clock.cpu_ns() - c0) / 1e6)
            out[f"{p.name}/{backend}"] = {"wall_ms_p50": round(float(np.median(ms)), 2),
                                          "cpu_ms_p50": round(float(np.median(cpu)), 2), "detections": boxes}
            log(f"  {p.name:<20} {backend:<12} wall {out[f'{p.name}/{backend}']['wall_ms_p50']:7.1f} ms  cpu {out[f'{p.name}/{backend}']['cpu_ms_p50']:7.1f} ms  boxes {boxes}")
    out["load"] = load()
    return out


def section_approach(split: str, settings, model) -> dict:
    table = alerts.load_table()
    rows, all_starts = [], []
    for mp4, js in approach.ensure(split, model=model):
        truth = approach.load_truth(js)
        cal = video.sidecar_calibration(mp4)
        r = run_clip(mp4, settings, cal, model)
        first = next((t for t, n in r["starts"] if n in FCW), None)
        ttc = round(truth["collision_t_s"] - first, 3) if first is not None else None
        req = truth["scenario"]["required_ttc_s"]
        rows.append({"scenario": truth["scenario"]["name"], "first_fcw_t_s": first, "ttc_true_at_alert_s": ttc,
                     "required_ttc_s": req, "in_time": ttc is not None and ttc >= req,
                     "margin_s": None if ttc is None else round(ttc - req, 3), "alerts": r["starts"]})
        all_starts.append(cooldown_violations(r["starts"], table))
        log(f"  {rows[-1]['scenario']:<22} alert at TTC {ttc} (need >= {req}) {'OK' if rows[-1]['in_time'] else 'MISSED'}")
    return {"split": split, "scenarios": rows, "all_in_time": all(r["in_time"] for r in rows),
            "missed": [r["scenario"] for r in rows if not r["in_time"]],
            "cooldown_violations": sum(len(v) for v in all_starts)}


def section_negatives(settings, model) -> dict:
    """False alerts on ordinary driving: every forward-collision alert and every hazard alert (pedestrian,
    cyclist, ...: an in-path alert) within a clip's quiet stretch is false. Per hour of that footage."""
    table = alerts.load_table()
    rows = []
    for split, names in NEGATIVE_SPLIT.items():
        for name in names:
            path = fetch.data_path("drives", name)
            r = run_clip(path, settings, model=model)
            src = open_source(str(path), realtime=False)
            dur = src.frame_count / (src.fps or 25.0)
            src.close()
            quiet = min(QUIET_UNTIL_S.get(name, dur), dur)
            within = [s for s in r["starts"] if s[0] <= quiet]
            fcw = [s for s in within if s[1] in FCW]
            hazard = [s for s in within if s[1] not in SYSTEM_ALERTS]
            rows.append({"clip": name, "split": split, "seconds": round(dur, 2), "quiet_seconds": round(quiet, 2),
                         "frames": r["frames"], "cpu_ms_per_frame": r["cpu_ms_per_frame"],
                         "fcw_alerts": len(fcw), "hazard_alerts": len(hazard), "alerts": r["starts"],
                         "cooldown_violations": len(cooldown_violations(r["starts"], table))})
            log(f"  {name:<55} {quiet:5.1f} of {dur:5.1f} s  FCW {len(fcw)}  in-path/hazard {len(hazard)}  all alerts {r['starts']}")
    secs = sum(r["quiet_seconds"] for r in rows)
    n = sum(r["fcw_alerts"] for r in rows)
    m = sum(r["hazard_alerts"] for r in rows)
    by_split = {sp: {"seconds": round(sum(r["quiet_seconds"] for r in rows if r["split"] == sp), 2),
                     "fcw_alerts": sum(r["fcw_alerts"] for r in rows if r["split"] == sp),
                     "hazard_alerts": sum(r["hazard_alerts"] for r in rows if r["split"] == sp)} for sp in NEGATIVE_SPLIT}
    return {"clips": rows, "seconds": round(secs, 2), "fcw_alerts": n, "hazard_alerts": m,
            "fcw_per_hour": round(n / secs * 3600, 1) if secs else None,
            "hazard_alerts_per_hour": round(m / secs * 3600, 1) if secs else None, "by_split": by_split,
            "cooldown_violations": sum(r["cooldown_violations"] for r in rows),
            "settings": {k: getattr(settings, k, None) for k in ("imgsz", "rect", "full_every", "conf", "nms_groups", "riders")},
            "load": load()}


def section_latency(split: str, settings, model) -> dict:
    """Real-time runs: frame captured -> first audio block of the alert it caused."""
    table = alerts.load_table()
    renderer = load_tts()
    samples, dropped, captured, frames_done = [], 0, 0, 0
    advisory = renderer.render("Keep a two second gap to the vehicle in front; in the wet, leave at least four seconds.")
    for mp4, js in approach.ensure(split, model=model):
        cal = video.sidecar_calibration(mp4)
        arb = AudioArbiter(NullSink(advisory.sample_rate, realtime=True), block_ms=20).start()
        voice = AlertVoice(table, renderer, arb)
        capture_perf: dict[int, int] = {}
        lock = threading.Lock()

        def on_audio(kind: str, req: SpeechRequest, t_perf: int) -> None:
            if kind == "start" and req.tier == Tier.ALERT:
                with lock:
                    cap = capture_perf.get(req.t_ns)
                if cap is not None:
                    samples.append((t_perf - cap) / 1e6)

        arb.add_listener(on_audio)
        arb.say(SpeechRequest(t_ns=0, text=advisory.text, tier=Tier.ADVISORY, pcm=advisory.pcm,
                              sample_rate=advisory.sample_rate, source="bench-advisory"))
        lane = safety_lane.load(settings, app_config().runtime.threads.detector, cal, model, voice)
        src = open_source(str(mp4), realtime=True)
        for frame in src:
            with lock:
                capture_perf[frame.t_ns] = frame.perf_ns
            lane.step(frame, frame.t_ns)
            frames_done += 1
        arb.wait_idle(10.0)
        arb.close()
        src.close()
        dropped += src.stats.dropped
        captured += src.stats.captured
        log(f"  {mp4.stem:<22} frames {src.stats.captured} processed {src.stats.delivered} dropped {src.stats.dropped}")
    s = np.array(samples) if samples else np.zeros(0)
    return {"split": split, "alerts_measured": len(s),
            "ms_p50": round(float(np.percentile(s, 50)), 1) if len(s) else None,
            "ms_p95": round(float(np.percentile(s, 95)), 1) if len(s) else None,
            "ms_max": round(float(s.max()), 1) if len(s) else None,
            "samples_ms": [round(float(x), 1) for x in s],
            "frames_captured": captured, "frames_processed": frames_done, "frames_dropped": dropped,
            "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=("dev", "test"), help="approach split to report (dev is for tuning)")
    ap.add_argument("--sections", default="throughput,weights,approach,negatives,latency", help="comma-separated sections")
    ap.add_argument("--json-out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    settings = app_config().perception
    import torch

    model = models.load_detector()
    backend = _backend(settings, model)  # builds a Detector, which sets torch's threads on the ultralytics path
    threads = app_config().runtime.threads.detector
    out: dict = {"command": " ".join(["python", "bench/perception.py"] + sys.argv[1:]),
                 "threads": {"detector_backend": backend,
                             "onnxruntime_intra_op": threads if backend == "onnxruntime" else "Ultralytics default",
                             "torch": torch.get_num_threads(), "runtime.threads.detector": threads},
                 "machine": load()}
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for name in sections:
        log(f"[{name}]")
        t0 = clock.perf_ns()
        if name == "throughput":
            out[name] = section_throughput(settings, model)
        elif name == "weights":
            out[name] = section_weights(settings)
        elif name == "approach":
            out[name] = section_approach(args.split, settings, model)
        elif name == "negatives":
            out[name] = section_negatives(settings, model)
        elif name == "latency":
            out[name] = section_latency(args.split, settings, model)
        else:
            ap.error(f"unknown section {name}")
        out[name]["wall_s"] = round((clock.perf_ns() - t0) / 1e9, 1)
        save_json(out, args.json_out, default=_plain)  # keep what is done if a later section fails
    targets = {}
    if "throughput" in out:
        targets["fps>=25"] = {"value": out["throughput"]["fps_mean"], "met": out["throughput"]["fps_mean"] >= 25}
    if "latency" in out and out["latency"]["ms_p95"] is not None:
        targets["alert_latency_p95<=150ms"] = {"value": out["latency"]["ms_p95"], "met": out["latency"]["ms_p95"] <= 150}
    if "approach" in out:
        targets["approach_all_in_time"] = {"value": out["approach"]["missed"], "met": out["approach"]["all_in_time"]}
    if "negatives" in out:
        targets["false_fcw_per_hour==0"] = {"value": out["negatives"]["fcw_per_hour"], "met": out["negatives"]["fcw_alerts"] == 0}
        targets["false_hazard_alerts_per_hour==0"] = {"value": out["negatives"]["hazard_alerts_per_hour"],
                                                      "met": out["negatives"]["hazard_alerts"] == 0}
    cd = sum(out[s].get("cooldown_violations", 0) for s in ("approach", "negatives") if s in out)
    if "approach" in out or "negatives" in out:
        targets["no_repeat_within_cooldown"] = {"value": cd, "met": cd == 0}
    out["targets"] = targets
    emit_json(out, args.json_out, default=_plain)
    for k, v in targets.items():
        log(f"{'MET ' if v['met'] else 'MISS'} {k}: {v['value']}")


if __name__ == "__main__":
    main()
