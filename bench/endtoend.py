"""End-to-end benchmark: the runtime on a recorded drive (lockstep and realtime) against a naive
sequential loop (detect -> transcribe -> retrieve -> generate -> speak in one thread).

    python bench/endtoend.py [--drive approach_lead_slower] [--question-t 1.0] [--json-out FILE] [--skip-naive]
    python bench/endtoend.py --skip-naive --utterances 8 --every 6 --drive DRIVE   # end of speech -> intent
    VA_SPEECH__ASR__MODEL=base python bench/endtoend.py ...                            # the same with Whisper base

Measures, with every model loaded: lockstep replay speed (x real time, every frame processed);
in realtime mode, hazard frame -> alert audio latency (the runtime's ``frame_to_audio`` timings),
frame -> decision latency, frames dropped, and question end -> first advisory audio; peak RSS.
The naive loop runs on the same drive in real time: while it transcribes and answers, frames wait,
so the frame age at decision shows what the design buys. JSON on stdout, a summary on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vehicle_assist import config, runtime, triplog
from vehicle_assist.replay.drive import open_drive
from vehicle_assist.replay.run import ReplayOptions, run_replay
from vehicle_assist.replay.scenario import Question, render_questions
from vehicle_assist.tripstats import percentiles, stage_latencies
from common import emit_json  # bench/common.py (the script's folder is on sys.path)

QUESTION = "How much room should I give a cyclist when I overtake?"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def replay(drive_name: str, clips, cfg, parts, mode: str, out: Path) -> tuple[dict, list[dict]]:
    drive = open_drive(drive_name, voice=clips)
    res = asyncio.run(run_replay(drive, cfg, parts, out, ReplayOptions(mode=mode), has_voice=bool(clips)))
    _, recs = triplog.read(res.trip_log)
    return res.info | {"summary": res.summary}, list(recs)


def speech_end_to_intent_ms(records: list[dict]) -> dict | None:
    """End of speech -> intent under the full runtime, per intent: from the VAD's end event (the
    utterance's publication, 0.5 s of trailing silence after the last word) and from the end of the
    utterance's audio (``t_end_ns``), each to the intent's publication (transcription, the
    end-of-speech hold and classification). A held fragment merged into the next utterance counts
    from the utterance that completed it."""
    from_event, from_audio, last = [], [], None
    for r in records:
        if r["topic"] == "utterances":
            last = r
        elif r["topic"] == "intents" and last is not None:
            from_event.append((r["t_ns"] - last["t_ns"]) / 1e6)
            from_audio.append((r["t_ns"] - last["msg"]["t_end_ns"]) / 1e6)
            last = None
    if not from_event:
        return None
    return {"from_vad_end_event": percentiles(from_event), "from_audio_end": percentiles(from_audio), "n": len(from_event)}


def voice_stages(records: list[dict]) -> list[dict]:
    """Where the time of each utterance went, from the trip log: the VAD end event (utterance published) ->
    transcript published (queueing + Whisper, ``asr_ms`` Whisper alone) -> intent published (the end-of-speech
    hold beyond the transcription, classification), in ms; ``held_audio_s``: the utterance's audio length."""
    out, utt, tr = [], None, None
    for r in records:
        if r["topic"] == "utterances":
            utt, tr = r, None
        elif r["topic"] == "transcripts" and utt is not None:
            tr = r
        elif r["topic"] == "intents" and utt is not None:
            row = {"intent": r["msg"]["name"], "to_intent_ms": round((r["t_ns"] - utt["t_ns"]) / 1e6, 1)}
            if tr is not None:
                row |= {"to_transcript_ms": round((tr["t_ns"] - utt["t_ns"]) / 1e6, 1), "asr_ms": round(tr["msg"]["asr_ms"], 1),
                        "after_transcript_ms": round((r["t_ns"] - tr["t_ns"]) / 1e6, 1), "text": tr["msg"]["text"]}
            out.append(row)
            utt = None
    return out


def question_to_audio_s(records: list[dict]) -> float | None:
    """Drive time from the end of the question (utterance end) to the first advisory-tier audio."""
    ends = [r["msg"]["t_end_ns"] for r in records if r["topic"] == "utterances"]
    starts = [r["t_ns"] for r in records if r["topic"] == "speech" and r["msg"]["kind"] == "start"
              and r["msg"]["tier"] == "advisory" and r["msg"].get("source") == "advisory"]
    if not ends or not starts:
        return None
    after = [s for s in starts if s >= ends[0]]
    return round((after[0] - ends[0]) / 1e9, 3) if after else None


def decision_gap_ms(records: list[dict]) -> float | None:
    """Longest processing-time gap between consecutive hazard decisions (how long the safety lane was blind)."""
    t = [r["proc_ns"] for r in records if r["topic"] == "hazards" and r.get("proc_ns") is not None]
    return round(max(np.diff(t)) / 1e6, 1) if len(t) > 1 else None


def naive(drive_name: str, clips, cfg, parts) -> dict:
    """One thread, in real time: newest frame -> detect -> track -> assess -> alerts; when the question
    has been spoken: transcribe -> advise (retrieve, route, generate, render speech) before the next frame."""
    from vehicle_assist.audio_out import AudioArbiter, NullSink
    from vehicle_assist.messages import AlertState, Utterance
    from vehicle_assist.replay.run import replay_config
    from vehicle_assist.safety import lane as safety_lane

    drive = open_drive(drive_name)
    frames = [m.msg for m in drive.messages() if m.topic == "frames"]
    lane = safety_lane.assemble(replay_config(cfg, drive).perception, parts.detector, parts.tracker, parts.hazard_table,
                                parts.alert_table)
    q = clips[0]
    q_end = q.t_s + len(q.pcm) / 16000
    arbiter = AudioArbiter(NullSink(realtime=False)).start()
    from vehicle_assist.speech.speak import Speaker

    advisor = parts.advisory.bind(Speaker(arbiter, parts.renderer), cancel_event=arbiter.cancel_event)
    ages, alert_ages, processed, answered_after, decided, heard = [], [], 0, None, [], None
    t0 = time.perf_counter()
    i = 0
    while i < len(frames):
        now = time.perf_counter() - t0
        if answered_after is None and now >= q_end:  # the driver stopped speaking: handle it now, in line
            utt = Utterance(int(q.t_s * 1e9), int(q_end * 1e9), q.pcm)
            text = heard = parts.asr.transcribe(utt).text
            asyncio.run(advisor.execute(text, None, int(q_end * 1e9)))
            answered_after = time.perf_counter() - t0 - q_end
            continue
        due = [k for k in range(i, len(frames)) if frames[k].t_ns / 1e9 <= now]
        if not due:
            time.sleep(max(0.0, frames[i].t_ns / 1e9 - now))
            continue
        i = due[-1]  # the newest frame; older ones are dropped
        f = frames[i]
        step = lane.step(f, f.t_ns)
        age = time.perf_counter() - t0 - f.t_ns / 1e9
        ages.append(age * 1000)
        decided.append(time.perf_counter())
        if any(e.state == AlertState.START and e.audible for e in step.events):
            alert_ages.append(age * 1000)
        processed += 1
        i += 1
    arbiter.close()
    return {"frames": len(frames), "processed": processed, "dropped": len(frames) - processed,
            "frame_age_at_decision_ms": percentiles(ages) if ages else None,
            "alert_frame_age_ms": percentiles(alert_ages) if alert_ages else None,
            "longest_gap_between_decisions_ms": round(max(np.diff(decided)) * 1000, 1) if len(decided) > 1 else None,
            "question_end_to_answer_s": round(answered_after, 3) if answered_after is not None else None,
            "heard": heard}


def voice_only(args, cfg, parts, load_s: float) -> None:
    """``--utterances N``: N dev questions and commands (Piper voice), each in its own realtime replay
    of the drive (the drives are a few seconds long) with every lane running; end of speech -> intent."""
    from vehicle_assist.speech.tts import load_renderer
    from vehicle_assist.tools import evalset

    dev = evalset.load_utterances("dev")
    qs, cs = [u for u in dev if u.kind == "question"], [u for u in dev if u.kind == "command"]
    pool = [u for pair in zip(qs, cs) for u in pair][:args.utterances]  # questions and commands alternate
    renderer = load_renderer("piper", cache_mb=0)
    out = Path(tempfile.mkdtemp(prefix="va-e2e-voice-"))
    recs_all, heard = [], []
    for k, u in enumerate(pool):
        clips = render_questions([Question(t=args.question_t, text=u.text)], renderer=renderer)
        _, recs = replay(args.drive, clips, cfg, parts, "realtime", out / f"u{k}")
        recs_all.append(recs)
        heard.append({"id": u.id, "said": u.text, "intents": [(r["msg"]["name"], r["msg"].get("text")) for r in recs
                                                             if r["topic"] == "intents"],
                      "ms": (speech_end_to_intent_ms(recs) or {}).get("from_vad_end_event", {}).get("p50"),
                      "stages": voice_stages(recs)})
        print(f"\rutterance {k + 1}/{len(pool)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    import os

    result = {"drive": args.drive, "asr_model": cfg.speech.asr.model, "models_load_s": round(load_s, 2),
              "speech_end_to_intent_ms": speech_end_to_intent_ms([r for recs in recs_all for r in recs]),
              "utterances": heard, "load_average": [round(x, 2) for x in os.getloadavg()], "out": str(out)}
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.json_out:
        args.json_out.write_text(text)
    lat = result["speech_end_to_intent_ms"] or {}
    print(f"{cfg.speech.asr.model}: speech end -> intent p50 {lat.get('from_vad_end_event', {}).get('p50')} ms from the "
          f"VAD end event, {lat.get('from_audio_end', {}).get('p50')} ms from the audio's end (n={lat.get('n')})", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drive", default="approach_lead_slower", help="drive name (sim/manifests) or path")
    ap.add_argument("--question-t", type=float, default=1.0, help="drive time (s) at which the driver asks")
    ap.add_argument("--json-out", type=Path, help="also write the JSON here")
    ap.add_argument("--utterances", type=int, default=0,
                    help="instead of the one question: this many dev questions and commands (bench/data), Piper voice, "
                         "one every --every seconds from --question-t (end of speech -> intent p50 under the runtime)")
    ap.add_argument("--every", type=float, default=6.0, help="seconds between --utterances")
    ap.add_argument("--skip-naive", action="store_true", help="do not run the naive sequential loop")
    args = ap.parse_args()
    cfg = config.load_app()
    t = time.perf_counter()
    parts = runtime.load_parts(cfg, voice=True)
    load_s = time.perf_counter() - t
    if args.utterances:
        return voice_only(args, cfg, parts, load_s)
    clips = render_questions([Question(t=args.question_t, text=QUESTION)])
    out = Path(tempfile.mkdtemp(prefix="va-e2e-"))
    lock_info, lock_recs = replay(args.drive, clips, cfg, parts, "lockstep", out / "lockstep")
    rt_info, rt_recs = replay(args.drive, clips, cfg, parts, "realtime", out / "realtime")
    lat = stage_latencies(rt_recs)
    result = {
        "drive": args.drive, "question": QUESTION, "question_t": args.question_t, "models_load_s": round(load_s, 2),
        "lockstep": {"x_realtime": lock_info["replay"]["x_realtime"], "frames": lock_info["replay"]["frames_in"],
                     "frame_count": lock_info["drive"]["frame_count"], "wall_s": lock_info["replay"]["wall_s"],
                     "detect_ms": percentiles(stage_latencies(lock_recs).get("safety.detect", [0.0]))},
        "realtime": {"frames_processed": sum(r["topic"] == "detections" for r in rt_recs),
                     "frame_count": rt_info["drive"]["frame_count"], "dropped": rt_info["summary"].get("dropped", {}),
                     "frame_to_audio_ms": percentiles(lat["safety.frame_to_audio"]) if lat.get("safety.frame_to_audio") else None,
                     "frame_to_decision_ms": percentiles(lat["safety.frame_to_decision"]) if lat.get("safety.frame_to_decision") else None,
                     "question_end_to_first_advisory_audio_s": question_to_audio_s(rt_recs),
                     "speech_end_to_intent_ms": speech_end_to_intent_ms(rt_recs),
                     "longest_gap_between_decisions_ms": decision_gap_ms(rt_recs),
                     "alerts": [(round(r["t_ns"] / 1e9, 2), r["msg"]["name"]) for r in rt_recs
                                if r["topic"] == "alerts" and r["msg"]["state"] == "start"]},
        "peak_rss_mb": None, "out": str(out),
    }
    if not args.skip_naive:
        result["naive_sequential"] = naive(args.drive, clips, cfg, parts)
    result["peak_rss_mb"] = round(rss_mb(), 1)
    emit_json(result, args.json_out, default=str)
    lk, rt = result["lockstep"], result["realtime"]
    print(f"lockstep {lk['x_realtime']}x real time ({lk['frames']}/{lk['frame_count']} frames); realtime: "
          f"{rt['frames_processed']}/{rt['frame_count']} frames, frame->decision p95 "
          f"{(rt['frame_to_decision_ms'] or {}).get('p95')} ms, frame->alert audio p95 {(rt['frame_to_audio_ms'] or {}).get('p95')} ms, "
          f"question end -> advisory audio {rt['question_end_to_first_advisory_audio_s']} s; "
          f"speech end -> intent {(rt['speech_end_to_intent_ms'] or {}).get('from_vad_end_event')} ms; peak RSS {result['peak_rss_mb']} MB",
          file=sys.stderr)
    if "naive_sequential" in result:
        n = result["naive_sequential"]
        print(f"naive loop: {n['processed']}/{n['frames']} frames, frame age at decision p95 "
              f"{(n['frame_age_at_decision_ms'] or {}).get('p95')} ms (max {(n['frame_age_at_decision_ms'] or {}).get('max')}), "
              f"longest blind gap {n['longest_gap_between_decisions_ms']} ms, question end -> answer {n['question_end_to_answer_s']} s "
              f"(runtime's longest gap {rt['longest_gap_between_decisions_ms']} ms)", file=sys.stderr)


if __name__ == "__main__":
    main()
