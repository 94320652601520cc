"""Soak: the real runtime for a long time on looped real clips with spoken questions; RSS and trip-log integrity.

The REAL runtime (``runtime.build`` + ``runtime.load_parts`` with every model loaded: YOLOv8n, ByteTrack,
Whisper tiny.en, MiniLM retriever, SmolLM2 on the ``slm`` advisory route, espeak-ng TTS) runs on a
WallClock in real time:

- camera: the real clips ``sim/drives/*.mp4`` played one after another in a loop, in real time, each
  frame re-stamped on the run clock;
- microphone: light road noise (``sim/noise/car_interior_rumble_*.wav`` looped at a low level) paced in
  real time, into which a synthesized spoken question (TTSRenderer, a rotating list of rule questions,
  cached like replay scenarios) is mixed every ``--ask-every`` s, so VAD -> ASR -> intent ->
  AdvisoryRun runs exactly as live. The mic stands in for a held push-to-talk (as ``run --mic FILE``),
  so the VAD hears the road noise the whole time. A question falling while the assistant speaks waits
  (up to 10 s) until it has stopped, as a driver would;
- speaker: ``NullSink`` (paced in real time by the arbiter); trip log in a temporary file.

Process RSS (psutil) is sampled every 10 s. At the end the trip log is read back: seqs strictly
increasing; every logged envelope the bus published is in the log (per-topic counts equal, and the
logged seqs plus the unlogged topics' publishes account for every seq); no truncated line; questions
injected vs transcripts vs advisories; errors and watchdog restarts. RSS growth is measured from the
first sample after ``--warmup`` s to the maximum and to the last sample.

python bench/soak.py [--duration 1800] [--ask-every 20] [--clips A.mp4 B.mp4 ...] [--json-out FILE]
(JSON on stdout, a short summary on stderr)
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gc
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import psutil

from vehicle_assist import clock as clock_mod
from vehicle_assist import config, paths, runtime, triplog
from vehicle_assist.audio_out import NullSink
from vehicle_assist.clock import WallClock
from vehicle_assist.messages import AudioChunk
from vehicle_assist.topics import TOPICS

from common import emit_json, looped_clips, pct  # bench/common.py (the script's folder is on sys.path)

SAMPLE_RATE = 16000
QUESTIONS = (
    "How far back should I stay in the rain?",
    "What is the stopping distance at 50 miles per hour?",
    "When can I use the hard shoulder on a motorway?",
    "What should I do at a zebra crossing?",
    "How much room should I give a cyclist when overtaking?",
    "When should I use my fog lights?",
)
NOISE_RMS_DBFS = -45.0  # light road noise
SPEECH_RMS_DBFS = -22.0  # a driver speaking at arm's length from the mic
MAX_DEFER_S = 10.0



def at_level(pcm: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """``pcm`` scaled to an RMS of ``rms_dbfs``."""
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) or 1.0
    return (pcm * (10 ** (rms_dbfs / 20) / rms)).astype(np.float32)


def road_noise() -> np.ndarray:
    """The car-interior rumble recordings, 16 kHz, concatenated, at a low level."""
    from vehicle_assist.speech.audio import load_audio

    parts = [load_audio(p, SAMPLE_RATE)[0] for p in sorted((paths.sim() / "noise").glob("car_interior_rumble_*.wav"))]
    if not parts:
        sys.exit("sim/noise/car_interior_rumble_*.wav missing: vehicle-assist fetch first")
    return at_level(np.concatenate(parts), NOISE_RMS_DBFS)


def spoken_questions(renderer) -> list[tuple[str, np.ndarray]]:
    """The questions synthesized (and cached) exactly as replay scenarios do."""
    from vehicle_assist.replay.scenario import Question, render_questions

    clips = render_questions([Question(t=0, text=q) for q in QUESTIONS], renderer)
    return [(c.label, at_level(c.pcm, SPEECH_RMS_DBFS)) for c in clips]


def mic_stream(clock: WallClock, noise: np.ndarray, questions: list[tuple[str, np.ndarray]], ask_every_s: float,
               block_ms: int, speaking: Callable[[], bool], injected: list[dict],
               stop: threading.Event) -> Iterator[AudioChunk]:
    """Road noise in real-time blocks; a question mixed in every ``ask_every_s`` (deferred while the
    assistant speaks, as a driver would wait). Each injection is recorded in ``injected``."""
    step = SAMPLE_RATE * block_ms // 1000
    start = clock.perf_ns()
    pos, i, k = 0, 0, 0
    next_q = ask_every_s
    active: np.ndarray | None = None
    qpos = 0
    while not stop.is_set():
        due = start + int(i * step / SAMPLE_RATE * 1e9)
        wait = (due - clock.perf_ns()) / 1e9
        if wait > 0 and stop.wait(wait):
            return
        elapsed = i * step / SAMPLE_RATE
        if active is None and elapsed >= next_q:
            late = elapsed - next_q
            if not speaking() or late >= MAX_DEFER_S:
                text, active = questions[k % len(questions)]
                qpos = 0
                injected.append({"t_ns": clock.now_ns(), "elapsed_s": round(elapsed, 1), "text": text,
                                 "deferred_s": round(late, 1), "assistant_speaking": speaking()})
                k += 1
                next_q += ask_every_s * max(1, int(late // ask_every_s) + 1)
        idx = (pos + np.arange(step)) % len(noise)
        block = noise[idx].copy()
        pos = (pos + step) % len(noise)
        if active is not None:
            part = active[qpos:qpos + step]
            block[:len(part)] += part
            qpos += step
            if qpos >= len(active):
                active = None
        yield AudioChunk(clock.now_ns(), np.clip(block, -1.0, 1.0), SAMPLE_RATE)
        i += 1


def similarity(a: str, b: str) -> float:
    norm = lambda s: " ".join("".join(c.lower() if c.isalnum() else " " for c in s).split())  # noqa: E731
    return difflib.SequenceMatcher(None, norm(a), norm(b)).ratio()


def check_log(trip: Path, published: dict[str, int]) -> dict:
    """Read the trip log back (streaming): seq order, completeness against the bus's counts, content."""
    header, records = triplog.read(trip)
    last_seq, non_increasing = 0, 0
    seqs = 0
    per_topic: dict[str, int] = {}
    transcripts: list[str] = []
    advisories: list[dict] = []
    intents: dict[str, int] = {}
    errors: list[dict] = []
    alerts: dict[str, int] = {}
    restarts_logged = 0
    stages: dict[str, list[float]] = {}
    for r in records:
        s = r["seq"]
        if s <= last_seq:
            non_increasing += 1
        last_seq = max(last_seq, s)
        seqs += 1
        topic, m = r["topic"], r["msg"]
        per_topic[topic] = per_topic.get(topic, 0) + 1
        if topic == "transcripts":
            transcripts.append(m.get("text", ""))
        elif topic == "advisories":
            advisories.append({"question": m.get("question"), "route": m.get("route"), "refused": m.get("refused")})
        elif topic == "intents":
            intents[m["name"]] = intents.get(m["name"], 0) + 1
        elif topic == "errors":
            errors.append({"code": m.get("code"), "stage": m.get("stage"), "message": str(m.get("message"))[:200]})
            restarts_logged += m.get("code") == "stage-crashed"
        elif topic == "alerts" and m.get("state") == "start":
            alerts[m["name"]] = alerts.get(m["name"], 0) + 1
        elif topic == "timings" and m["stage"] in ("detect", "asr", "frame_to_audio", "frame_to_decision"):
            stages.setdefault(m["stage"], []).append(m["ms"])
    logged_published = {t: n for t, n in published.items() if TOPICS[t].logged}
    unlogged_published = sum(n for t, n in published.items() if not TOPICS[t].logged)
    missing = {t: n - per_topic.get(t, 0) for t, n in logged_published.items() if n != per_topic.get(t, 0)}
    extra = {t: n for t, n in per_topic.items() if t not in logged_published}
    total_published = sum(published.values())
    return {
        "header_ok": header.get("type") == "header",
        "records": records.count,
        "truncated": records.truncated,
        "truncated_bytes": records.truncated_bytes,
        "seq_non_increasing": non_increasing,
        "last_seq": last_seq,
        # every publish takes one seq: logged records + unlogged publishes must account for all of them
        "seq_unaccounted": total_published - (seqs + unlogged_published),
        "lost_per_topic": missing,
        "unexpected_topics": extra,
        "records_per_topic": dict(sorted(per_topic.items())),
        "_transcripts": transcripts, "_advisories": advisories, "intents": intents, "_errors": errors,
        "alerts_started": alerts, "stage_crashes_logged": restarts_logged, "_stages": stages,
    }



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds of running (default 1800)")
    ap.add_argument("--ask-every", type=float, default=20.0, help="seconds between spoken questions (default 20)")
    ap.add_argument("--clips", type=Path, nargs="+", help="video clips to loop (default: sim/drives/*.mp4)")
    ap.add_argument("--warmup", type=float, default=60.0, help="RSS baseline = first sample after this many s")
    ap.add_argument("--sample-every", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--route", default="slm", help="advisory route (default slm: the SLM is loaded too)")
    ap.add_argument("--json-out", type=Path, help="also write the JSON here")
    args = ap.parse_args()

    clips = args.clips or sorted((paths.sim() / "drives").glob("*.mp4"))
    if not clips:
        sys.exit("no clips: sim/drives/*.mp4 missing (vehicle-assist fetch) and no --clips given")
    cfg = config.load_app()
    cfg = cfg.model_copy(update={"advisory": cfg.advisory.model_copy(update={"route": args.route})})
    proc = psutil.Process()
    t_load = clock_mod.perf_ns()
    parts = runtime.load_parts(cfg, voice=True)
    load_s = (clock_mod.perf_ns() - t_load) / 1e9
    rss_loaded = proc.memory_info().rss
    questions = spoken_questions(parts.renderer)
    noise = road_noise()

    clock = WallClock()
    stop = threading.Event()
    injected: list[dict] = []
    samples: list[dict] = []
    t_start = clock.perf_ns()
    holder: dict = {}

    def sample() -> None:
        while True:
            mi = proc.memory_info()
            rt = holder.get("rt")
            samples.append({"t_s": round((clock.perf_ns() - t_start) / 1e9, 1), "rss_mib": round(mi.rss / 2**20, 1),
                            "threads": proc.num_threads(), "fds": proc.num_fds(),
                            "py_objects": len(gc.get_objects()),  # a Python-level leak shows here, a native one not
                            "alert_origins": len(rt._alert_origin) if rt else 0})
            if stop.wait(args.sample_every):
                return

    with tempfile.TemporaryDirectory() as tmp:
        trip = Path(tmp) / "soak_trip.jsonl"
        speaking = lambda: holder["rt"].arbiter.is_speaking() if "rt" in holder else False  # noqa: E731
        sources = runtime.Sources(
            frames=looped_clips(clips, clock, stop),
            audio=mic_stream(clock, noise, questions, args.ask_every, cfg.speech.block_ms, speaking, injected, stop),
            audio_is_held=True)
        rt = runtime.build(cfg, sources, clock, runtime.Sinks(NullSink(), trip), parts)
        holder["rt"] = rt
        sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        crash: str | None = None

        async def go() -> dict:
            try:
                return await rt.run(args.duration)
            finally:
                stop.set()

        sampler.start()
        try:
            summary = asyncio.run(go())
        except BaseException as err:  # a crash of the run itself is the finding, still report what we have
            crash = f"{type(err).__name__}: {err}"
            summary = {"published": {t: s["published"] for t, s in rt.bus.stats().items() if s["published"]},
                       "restarts": dict(rt.watchdog.restarts), "dropped": {}, "records": rt.trip.count}
        stop.set()
        sampler.join(5)
        run_s = (clock.perf_ns() - t_start) / 1e9
        trip_bytes = trip.stat().st_size
        logcheck = check_log(trip, summary["published"])

    # questions -> transcripts -> advisories
    transcripts, advisories = logcheck.pop("_transcripts"), logcheck.pop("_advisories")
    errors, stages = logcheck.pop("_errors"), logcheck.pop("_stages")
    heard = sum(1 for t in transcripts if max(similarity(t, q) for q in QUESTIONS) >= 0.7)
    answered = [a for a in advisories if a["question"] and max(similarity(a["question"], q) for q in QUESTIONS) >= 0.7]
    routes: dict[str, int] = {}
    for a in advisories:
        routes[str(a["route"])] = routes.get(str(a["route"]), 0) + 1
    err_codes: dict[str, int] = {}
    for e in errors:
        err_codes[e["code"]] = err_codes.get(e["code"], 0) + 1

    after = [s for s in samples if s["t_s"] >= args.warmup]
    base = after[0] if after else (samples[0] if samples else None)
    rss_all = [s["rss_mib"] for s in samples]
    rss_after = [s["rss_mib"] for s in after] or rss_all
    rss = {
        "after_load_mib": round(rss_loaded / 2**20, 1),
        "first_after_warmup_mib": base["rss_mib"] if base else None,
        "first_after_warmup_t_s": base["t_s"] if base else None,
        "max_mib": max(rss_after) if rss_after else None,
        "last_mib": rss_after[-1] if rss_after else None,
        "peak_any_sample_mib": max(rss_all) if rss_all else None,
    }
    if base:
        rss["growth_max_pct"] = round(100 * (rss["max_mib"] / base["rss_mib"] - 1), 2)
        rss["growth_last_pct"] = round(100 * (rss["last_mib"] / base["rss_mib"] - 1), 2)
        if len(after) >= 3:  # trend: MiB per 10 min, least squares over the post-warm-up samples
            t = np.array([s["t_s"] for s in after])
            y = np.array([s["rss_mib"] for s in after])
            rss["slope_mib_per_10min"] = round(float(np.polyfit(t, y, 1)[0]) * 600, 2)
    lost = logcheck["lost_per_topic"] or logcheck["seq_unaccounted"] or logcheck["truncated"] \
        or logcheck["seq_non_increasing"]
    doc = {
        "bench": "soak",
        "command": "python bench/soak.py " + " ".join(sys.argv[1:]),
        "duration_s": args.duration,
        "ran_s": round(run_s, 1),
        "ask_every_s": args.ask_every,
        "clips": [p.name for p in clips],
        "advisory_route": args.route,
        "threads": cfg.runtime.threads.model_dump(),
        "model_load_s": round(load_s, 1),
        "crash": crash,
        "rss": rss,
        "rss_samples": samples,
        "threads_first_last": [samples[0]["threads"], samples[-1]["threads"]] if samples else None,
        "fds_first_last": [samples[0]["fds"], samples[-1]["fds"]] if samples else None,
        "trip_log": {**logcheck, "bytes": trip_bytes, "records_written": summary.get("records"),
                     "sink_errors": summary.get("sink_errors")},
        "log_complete": not lost,
        "questions": {
            "injected": len(injected),
            "deferred_while_speaking": sum(1 for q in injected if q["deferred_s"] > 0),
            "injected_over_speech": sum(1 for q in injected if q["assistant_speaking"]),
            "transcripts": len(transcripts),
            "transcripts_matching_a_question": heard,
            "question_intents": logcheck["intents"].get("question", 0),
            "advisories": len(advisories),
            "advisories_for_a_question": len(answered),
            "advisories_refused": sum(1 for a in advisories if a["refused"]),
            "advisory_routes": routes,
            "transcript_examples": transcripts[:8],
        },
        "errors": {"count": len(errors), "codes": err_codes, "first": errors[:10]},
        "watchdog_restarts": summary.get("restarts", {}),
        "dropped": summary.get("dropped", {}),
        "published": summary.get("published", {}),
        "frames_processed": len(stages.get("detect", [])),
        "perception_fps": round(len(stages.get("detect", [])) / run_s, 1) if run_s else None,
        "detect_ms": pct(stages.get("detect", [])),
        "asr_ms": pct(stages.get("asr", [])),
        "frame_to_decision_ms": pct(stages.get("frame_to_decision", [])),
        "frame_to_alert_audio_ms": pct(stages.get("frame_to_audio", [])),
    }
    emit_json(doc, args.json_out, indent=2)
    q = doc["questions"]
    print(f"soak {doc['ran_s']} s: RSS {rss['first_after_warmup_mib']} -> max {rss['max_mib']}, last {rss['last_mib']} MiB "
          f"(growth max {rss.get('growth_max_pct')} %, last {rss.get('growth_last_pct')} %); "
          f"log {logcheck['records']} records, complete={doc['log_complete']}, truncated={logcheck['truncated']}; "
          f"questions {q['injected']} -> transcripts {q['transcripts']} ({q['transcripts_matching_a_question']} matching) "
          f"-> advisories {q['advisories']}; errors {doc['errors']['count']} {err_codes}; "
          f"restarts {doc['watchdog_restarts']}; crash {crash}", file=sys.stderr)


if __name__ == "__main__":
    main()
