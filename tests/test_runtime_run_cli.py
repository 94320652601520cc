"""`vehicle-assist run` with files standing in for the devices: real YOLO on a real clip, a spoken
question (espeak-ng) through real Whisper, a retrieved advisory; the trip log holds them all."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vehicle_assist import triplog
from vehicle_assist.speech.tts import TTSRenderer, write_wav


@pytest.mark.slow
def test_run_on_files_logs_hazards_transcript_and_advisory(data, tmp_path):
    r = TTSRenderer().render("How far behind the car in front should I stay?")
    pcm = np.concatenate([np.zeros(r.sample_rate // 2, np.float32), r.pcm, np.zeros(r.sample_rate, np.float32)])
    question = write_wav(tmp_path / "question.wav", pcm, r.sample_rate)
    clip = data("drives", "highway_cars_1s.mp4")
    trip = tmp_path / "trip.jsonl"
    res = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "run", "--camera", str(clip), "--mic", str(question),
                          "--telemetry", str(data("telemetry", "comma2k19_example1_seg40/global_pose/frame_times").parents[1]),
                          "--speaker", f"wav:{tmp_path / 'out.wav'}", "--trip-log", str(trip), "--duration", "30", "--json"],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["trip_log"] == str(trip)
    header, records = triplog.read(trip)
    recs = list(records)
    assert not records.truncated and len(recs) == summary["records"]
    by = {}
    for rec in recs:
        by.setdefault(rec["topic"], []).append(rec["msg"])
    assert sum(len(d["items"]) for d in by["detections"]) > 0  # real cars on the real highway clip
    assert len(by["hazards"]) == len(by["detections"])
    assert "behind" in by["transcripts"][0]["text"].lower()
    assert by["intents"][0]["name"] == "question"
    adv = by["advisories"][0]
    assert adv["text"] and adv["question"]
    assert any(e["stage"] == "retrieve" for e in by["advisory_events"])
    assert any(s["kind"] == "start" and s["source"] == "advisory" for s in by["speech"])
    assert by["vehicle"][0]["speed_mps"] is not None and by["vehicle"][0]["road_type"] is None
    assert header["models"]["detector"]["fingerprint"] and header["git"]["commit"]


@pytest.mark.slow
def test_run_without_any_input_says_what_is_missing(tmp_path):
    res = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "run", "--camera", str(tmp_path / "none.mp4"),
                          "--no-voice", "--speaker", "null", "--trip-log", str(tmp_path / "t.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 3
    assert "camera:" in res.stderr and "nothing to run" in res.stderr
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.slow
def test_run_with_no_such_camera_says_camera_lost_at_start(tmp_path):
    """Issue 13 item 7: `run --camera 7` (nothing answers there) speaks the camera-lost alert at start,
    as mid-drive, while the voice lane runs and the camera is retried."""
    r = TTSRenderer().render("Louder.")
    mic = write_wav(tmp_path / "q.wav", np.concatenate([np.zeros(r.sample_rate, np.float32), r.pcm]), r.sample_rate)
    trip = tmp_path / "trip.jsonl"
    res = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "run", "--camera", "7", "--mic", str(mic),
                          "--speaker", f"wav:{tmp_path / 'out.wav'}", "--trip-log", str(trip), "--duration", "4", "--json"],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "camera:" in res.stderr and "no camera answers at '7'" in res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert "retrying" in summary["missing"]["camera"]
    _, records = triplog.read(trip)
    recs = list(records)
    (start,) = [r["t_ns"] for r in recs if r["topic"] == "errors" and r["msg"]["code"] == "camera-missing"]
    lost = [r for r in recs if r["topic"] == "alerts" and r["msg"]["name"] == "camera-lost" and r["msg"]["state"] == "start"]
    assert lost and (lost[0]["t_ns"] - start) / 1e9 < 0.5
    said = [r for r in recs if r["topic"] == "speech" and r["msg"]["kind"] == "start" and r["msg"]["source"] == "alert:camera-lost"]
    assert said and said[0]["msg"]["text"] == "Camera lost. Hazard warnings are off."
    assert summary["published"]["audio"] > 0  # the voice lane ran meanwhile
