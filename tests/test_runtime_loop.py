"""The runtime loop end to end with the real bus, trip log, alert table/manager, pre-rendered alert
voice, audio arbiter and TTS; perception is scripted (tests/runtime_parts.py) so that a critical
hazard comes at a known moment: while a long answer is being spoken."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from vehicle_assist import config, triplog
from vehicle_assist.audio_out import WavSink
from vehicle_assist.clock import WallClock
from vehicle_assist.messages import Hazard, HazardLevel
from vehicle_assist.advisory.dispatch import scene_of
from vehicle_assist.runtime import Sinks, Sources, build

import runtime_parts as rp  # noqa: E402  (tests/ is on sys.path under pytest)

REPO = Path(__file__).resolve().parent.parent


def _records(path):
    header, records = triplog.read(path)
    return header, list(records), records


def test_scene_is_pure():
    hz = [Hazard(1, "cyclist-ahead", HazardLevel.CAUTION, "bicycle", 2, 12.0)]
    s = scene_of(hz, None)
    assert (s.label, s.distance_m, s.hazard, s.speed_mps) == ("bicycle", 12.0, "cyclist-ahead", None)
    assert scene_of([], None) is None


def test_alert_preempts_a_running_answer(tmp_path):
    clock = WallClock()
    tracker = rp.ClosingCarTracker(ttc_s=1.0)
    cfg = config.AppConfig()
    rt = build(cfg, Sources(frames=rp.frames(clock.now_ns)), clock,
               Sinks(WavSink(tmp_path / "out.wav"), tmp_path / "trip.jsonl"), rp.parts(tracker))

    def on_speech(kind, req, t):
        if kind == "start" and req.source == "advisory":
            tracker.go.set()  # the car appears once the answer is audible

    rt.arbiter.add_listener(on_speech)

    async def main():
        async def ask_soon():
            await asyncio.sleep(0.3)
            rt.ask("how far behind should I keep")
        asyncio.ensure_future(ask_soon())
        return await rt.run(duration_s=4.0)

    summary = asyncio.run(main())
    header, recs, reader = _records(tmp_path / "trip.jsonl")
    assert not reader.truncated and summary["records"] == len(recs)
    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(set(seqs))
    speech = [(r["msg"]["kind"], r["msg"]["source"]) for r in recs if r["topic"] == "speech"]
    first_alert = speech.index(("start", "alert:brake-now"))
    assert ("start", "advisory") in speech[:first_alert]
    assert ("preempted", "advisory") in speech[:first_alert + 2]  # stopped before its next block
    alerts = [r["msg"] for r in recs if r["topic"] == "alerts"]
    assert alerts[0]["name"] == "brake-now" and alerts[0]["state"] == "start"
    assert any(r["topic"] == "hazards" and r["msg"] and r["msg"][0]["level"] == "critical" for r in recs)
    # the answer's later sentences never play after the pre-emption
    assert ("start", "advisory") not in speech[first_alert:]
    timings = {(r["msg"]["lane"], r["msg"]["stage"]) for r in recs if r["topic"] == "timings"}
    assert {("safety", "detect"), ("safety", "frame_to_decision"), ("safety", "frame_to_audio")} <= timings
    frame_to_audio = [r["msg"]["ms"] for r in recs if r["topic"] == "timings" and r["msg"]["stage"] == "frame_to_audio"]
    assert frame_to_audio and frame_to_audio[0] < 250  # one queue hop and at most one 20 ms block
    assert any(r["topic"] == "advisory_events" for r in recs)
    assert header["inputs"]["camera"] and header["models"]["detector"]["fingerprint"]


def test_camera_outage_raises_camera_lost_and_a_crashed_stage_restarts(tmp_path):
    clock = WallClock()
    cfg = config.AppConfig.model_validate({"runtime": {"watchdog": {"initial_backoff_s": 0.05}}})
    parts = rp.parts(detector=rp.EmptyDetector(fail_on={3}), advisor=False)
    rt = build(cfg, Sources(frames=rp.frames(clock.now_ns, stop_after=20)), clock,
               Sinks(WavSink(tmp_path / "out.wav"), tmp_path / "trip.jsonl"), parts)
    asyncio.run(rt.run(duration_s=2.5))
    _, recs, _ = _records(tmp_path / "trip.jsonl")
    errors = [r["msg"] for r in recs if r["topic"] == "errors"]
    assert errors[0]["code"] == "stage-crashed" and errors[0]["stage"] == "perception"
    assert "detector fault on frame 3" in errors[0]["message"]
    processed = [r["msg"]["frame_seq"] for r in recs if r["topic"] == "detections"]
    assert max(processed) >= 15  # perception went on after the restart
    health = [r["msg"] for r in recs if r["topic"] == "health"]
    assert any(h["topic"] == "frames" and h["stale"] for h in health)
    lost = [r["msg"] for r in recs if r["topic"] == "alerts" and r["msg"]["name"] == "camera-lost"]
    assert lost and lost[0]["state"] == "start"
    spoken = [r["msg"]["text"] for r in recs if r["topic"] == "speech" and r["msg"]["kind"] == "start"]
    assert any("Camera lost" in t for t in spoken)


RUNNER = textwrap.dedent("""
    import asyncio, json, sys
    sys.path.insert(0, sys.argv[2])
    import runtime_parts as rp
    from vehicle_assist import config
    from vehicle_assist.audio_out import NullSink
    from vehicle_assist.clock import WallClock
    from vehicle_assist.runtime import Sinks, Sources, build
    clock = WallClock()
    rt = build(config.AppConfig(), Sources(frames=rp.frames(clock.now_ns)), clock,
               Sinks(NullSink(), sys.argv[1]), rp.parts(advisor=False))
    print(json.dumps(asyncio.run(rt.run())), flush=True)
""")


def test_sigterm_shuts_down_gracefully_and_closes_the_trip_log(tmp_path):
    path = tmp_path / "trip.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(path), str(REPO / "tests")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().count('"topic":"hazards"') >= 10:
                break
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    import json

    summary = json.loads(out.strip().splitlines()[-1])
    _, recs, reader = _records(path)
    assert not reader.truncated and summary["records"] == len(recs) >= 10


def test_stalled_perception_raises_perception_lagging_and_recovers(tmp_path):
    clock = WallClock()
    parts = rp.parts(detector=rp.StallingDetector(on=5, stall_s=2.2), advisor=False)
    rt = build(config.AppConfig(), Sources(frames=rp.frames(clock.now_ns)), clock,
               Sinks(WavSink(tmp_path / "out.wav"), tmp_path / "trip.jsonl"), parts)
    summary = asyncio.run(rt.run(duration_s=4.0))
    _, recs, _ = _records(tmp_path / "trip.jsonl")
    health = [(r["msg"]["topic"], r["msg"]["stale"]) for r in recs if r["topic"] == "health"]
    assert ("detections", True) in health and ("detections", False) in health  # stalled, then recovered
    assert ("frames", True) not in health  # the camera kept delivering
    names = [r["msg"]["name"] for r in recs if r["topic"] == "alerts" and r["msg"]["state"] == "start"]
    assert names == ["perception-lagging"]
    assert summary["dropped"].get("frames", 0) > 0  # frames that came during the stall were skipped, not queued


def test_speak_more_slowly_slows_the_answers(tmp_path):
    """The driver's "speak more slowly" reaches the one speaker: the same answer, said again, is longer."""
    from vehicle_assist.messages import Intent

    clock = WallClock()
    sink = WavSink(tmp_path / "out.wav", realtime=False)
    rt = build(config.AppConfig(), Sources(), clock, Sinks(sink, tmp_path / "trip.jsonl"), rp.parts())

    async def idle():
        while rt.advice.busy() or rt.arbiter.is_speaking():
            await asyncio.sleep(0.05)

    async def main():
        async def script():
            rt.ask("how far behind should I keep")
            await idle()
            await rt.voice.act(Intent(clock.now_ns(), "slower", "speak more slowly"))
            rt.ask("how far behind should I keep")
            await asyncio.sleep(0.1)
            await idle()
            rt.stop()
        asyncio.ensure_future(script())
        return await rt.run(duration_s=60.0)

    asyncio.run(main())
    answers = [len(s.pcm) for s in sink.segments if s.request.source == "advisory"]
    reply = [s.request.text for s in sink.segments if s.request.source == "command:slower"]
    assert len(answers) == 6 and reply == ["I'll speak more slowly."]
    assert all(slow > 1.1 * normal for normal, slow in zip(answers[:3], answers[3:]))


def test_a_camera_missing_at_start_is_said_at_once_and_cleared_by_the_first_frame(tmp_path):
    """Issue 13 item 7: a camera that does not answer at start raises the same spoken camera-lost
    alert as a camera lost mid-drive, at once; the first frame back ends it."""
    clock = WallClock()

    def late_camera():  # a live camera that answers only after 1.5 s (it retries meanwhile)
        time.sleep(1.5)
        yield from rp.frames(clock.now_ns, n=25)

    rt = build(config.AppConfig(), Sources(frames=late_camera(), missing={"camera": "no camera answers at '7'"}), clock,
               Sinks(WavSink(tmp_path / "out.wav"), tmp_path / "trip.jsonl"), rp.parts(advisor=False))
    asyncio.run(rt.run(duration_s=3.0))
    _, recs, _ = _records(tmp_path / "trip.jsonl")
    (t0,) = [r["t_ns"] for r in recs if r["topic"] == "errors" and r["msg"]["code"] == "camera-missing"]  # run start
    alerts = [(r["msg"]["state"], (r["t_ns"] - t0) / 1e9) for r in recs if r["topic"] == "alerts"
              if r["msg"]["name"] == "camera-lost"]
    assert alerts[0][0] == "start" and alerts[0][1] < 0.25  # at the first staleness check, not camera_lost_after_s later
    spoken = [(r["t_ns"] - t0) / 1e9 for r in recs if r["topic"] == "speech" and r["msg"]["kind"] == "start"
              and r["msg"]["text"].startswith("Camera lost")]
    assert spoken and spoken[0] < 0.5
    first_frame = min(r["t_ns"] for r in recs if r["topic"] == "detections")
    ended = [r["t_ns"] for r in recs if r["topic"] == "alerts" and r["msg"]["name"] == "camera-lost"
             and r["msg"]["state"] == "end"]
    assert ended and 0 <= ended[0] - first_frame < 50_000_000  # cleared with the first frame back, not 1 s later
    assert [s for s, _ in alerts] == ["start", "end"]  # and not raised again
