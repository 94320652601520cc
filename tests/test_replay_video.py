"""The annotated video shows and plays what happened: the speaker's output placed on the drive clock,
the caption schedule (driver transcript, each spoken answer with its rules, alerts), captions drawn
readably, and the MP4 (H.264 + AAC) lasting until the last word, in sync; then on a real scenario."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vehicle_assist.audio_out import AudioArbiter, WavSink
from vehicle_assist.messages import (Advisory, AlertEvent, Envelope, SpeechEvent, SpeechRequest, Tier, Transcript,
                                     envelope_record)
from vehicle_assist.replay import annotate, soundtrack
from vehicle_assist.replay.drive import open_drive
from vehicle_assist.replay.soundtrack import Played, Soundtrack, Spoken

DRIVE = "urban_busy_street_pedestrians_scooters_dad000487"
SR = 22050


def records(items):
    items = sorted(items, key=lambda x: x[1])
    return [envelope_record(Envelope(t, int(s * 1e9), i, m)) for i, (t, s, m) in enumerate(items, 1)]


ANSWER = "Give cyclists at least 1.5 metres. Pass wide and slow."


def trip():
    """A question heard at 1.0 s, its two-sentence answer citing 163 and 212, and an alert at 2.0 s."""
    return records([
        ("transcripts", 1.0, Transcript(int(1.0e9), "How much room for a cyclist?", 0.9)),
        ("speech", 1.1, SpeechEvent(int(1.1e9), "start", "Give cyclists at least 1.5 metres.", Tier.ADVISORY, "advisory")),
        ("speech", 1.1, SpeechEvent(int(1.1e9), "end", "Give cyclists at least 1.5 metres.", Tier.ADVISORY, "advisory")),
        ("speech", 1.1, SpeechEvent(int(1.1e9), "start", "Pass wide and slow.", Tier.ADVISORY, "advisory")),
        ("speech", 1.1, SpeechEvent(int(1.1e9), "end", "Pass wide and slow.", Tier.ADVISORY, "advisory")),
        ("advisories", 1.1, Advisory(int(1.0e9), ANSWER, "extractive", ("163", "212"), question="How much room for a cyclist?")),
        ("alerts", 4.0, AlertEvent(int(4.0e9), "pedestrian-critical", 95, "Pedestrian! Brake!", True)),
        ("alerts", 4.2, AlertEvent(int(4.2e9), "camera-lost", 80, "Camera lost.", False)),
    ])


def spoken():
    """As :func:`soundtrack.place` gives them for ``trip()``: the two sentences back to back."""
    return [Spoken(1.1, 2.1, "Give cyclists at least 1.5 metres.", "advisory", "advisory", 0, SR),
            Spoken(2.1, 3.1, "Pass wide and slow.", "advisory", "advisory", SR, SR),
            Spoken(4.0, 4.5, "Pedestrian! Brake!", "alert", "alert", 2 * SR, SR // 2)]


# --- the speaker on the drive clock (pure) ------------------------------------------------------


def test_lockstep_requests_play_one_after_another_and_an_alert_cuts_the_answer():
    played = [Played(3.44, 0, 2 * SR, "First sentence.", "advisory"),
              Played(3.44, 2 * SR, 3 * SR, "Second sentence.", "advisory"),
              Played(3.44, 5 * SR, 2 * SR, "Third sentence.", "advisory"),
              Played(6.0, 7 * SR, SR, "Brake!", "alert"),
              Played(6.2, 8 * SR, SR, "Camera lost.", "alert"),
              Played(9.0, 9 * SR, SR, "Later advice.", "advisory")]
    got = soundtrack.place(played, SR)
    assert [(s.text, round(s.start_s, 3), round(s.end_s, 3), s.completed) for s in got] == [
        ("First sentence.", 3.44, 5.44, True),
        ("Second sentence.", 5.44, 6.0, False),  # playing when the alert came: cut at 6.0
        ("Brake!", 6.0, 7.0, True),              # "Third sentence." waited behind it: flushed
        ("Camera lost.", 7.0, 8.0, True),        # an alert does not cut an alert: it waits
        ("Later advice.", 9.0, 10.0, True)]
    assert got[1].samples == int(0.56 * SR)


def test_render_lays_each_request_at_its_drive_time():
    pcm = np.concatenate([np.full(SR, 0.5, np.float32), np.full(SR // 2, -0.25, np.float32)])
    placed = [Spoken(1.0, 2.0, "a", "advisory", offset=0, samples=SR), Spoken(3.0, 3.5, "b", "alert", offset=SR, samples=SR // 2)]
    track = soundtrack.render(placed, pcm, SR, t0_s=0.5, duration_s=4.0)
    assert len(track) == 4 * SR
    assert np.all(track[:SR // 2] == 0) and np.all(track[SR // 2:3 * SR // 2] == 0.5)
    assert np.all(track[3 * SR // 2:5 * SR // 2] == 0) and np.allclose(track[5 * SR // 2:3 * SR], -0.25)
    assert np.all(track[3 * SR:] == 0)


def test_wav_sink_stamps_each_request_with_the_clock_and_the_log_round_trips(tmp_path):
    now = {"t": 2_500_000_000}
    sink = WavSink(tmp_path / "speaker.wav", SR, realtime=False, now_ns=lambda: now["t"])
    with AudioArbiter(sink) as arb:
        arb.say(SpeechRequest(0, "One.", Tier.ADVISORY, pcm=np.full(SR // 2, 0.3, np.float32), sample_rate=SR))
        arb.wait_idle(5)
        now["t"] = 4_000_000_000
        arb.say(SpeechRequest(0, "Two!", Tier.ALERT, pcm=np.full(SR // 4, 0.3, np.float32), sample_rate=SR))
        arb.wait_idle(5)
    soundtrack.write_log(tmp_path / "speaker.json", sink.segments, SR)
    info = json.loads((tmp_path / "speaker.json").read_text())
    assert [(p["t_s"], p["offset"], p["samples"], p["tier"]) for p in info["played"]] == [
        (2.5, 0, SR // 2, "advisory"), (4.0, SR // 2, SR // 4, "alert")]
    track = soundtrack.load(tmp_path)
    assert [(s.text, s.start_s, round(s.end_s, 3)) for s in track.spoken] == [("One.", 2.5, 3.0), ("Two!", 4.0, 4.25)]
    assert len(track.pcm) == SR // 2 + SR // 4 and track.end_s() == pytest.approx(4.25, abs=1e-3)


def test_a_corrupt_speaker_log_gives_no_sound_not_a_crash(tmp_path):
    (tmp_path / "speaker.json").write_text("{not json")
    assert soundtrack.load(tmp_path) is None
    assert soundtrack.load(tmp_path / "nowhere") is None


# --- the caption schedule (pure) ---------------------------------------------------------------


def test_caption_schedule_shows_question_answer_with_its_rules_and_alerts():
    sched = annotate.caption_schedule(trip(), spoken())
    at = lambda t: [(c.kind, c.label, c.text) for c in annotate.captions_at(sched, t)]  # noqa: E731
    assert at(0.9) == []
    assert at(1.05) == [("driver", "Driver", "How much room for a cyclist?")]
    assert at(1.5) == [("driver", "Driver", "How much room for a cyclist?"),
                       ("answer", "Answer, rules 163, 212", "Give cyclists at least 1.5 metres.")]
    assert at(2.5) == [("driver", "Driver", "How much room for a cyclist?"),  # held while its answer is spoken
                       ("answer", "Answer, rules 163, 212", "Pass wide and slow.")]
    assert at(3.5) == [("driver", "Driver", "How much room for a cyclist?"),  # shown 3 s at least
                       ("answer", "Answer, rules 163, 212", "Pass wide and slow.")]  # lingers 0.6 s
    assert at(3.8) == [("driver", "Driver", "How much room for a cyclist?")]
    assert at(4.1) == [("alert", "ALERT", "Pedestrian! Brake!")]
    assert at(4.3) == [("alert", "ALERT", "Pedestrian! Brake!"), ("alert", "Alert (silent)", "Camera lost.")]
    assert max(c.end_s for c in sched) == pytest.approx(5.7)


def test_caption_schedule_from_the_log_alone_uses_its_speech_events():
    sched = annotate.caption_schedule(trip())  # no speaker.json: the speech events' times, at least 1.5 s each
    on = annotate.captions_at(sched, 2.0)
    assert ("answer", "Answer, rules 163, 212") in [(c.kind, c.label) for c in on]
    assert {c.text for c in on} >= {"How much room for a cyclist?", "Pass wide and slow."}


def test_answer_labels_say_refused_advice_and_no_rule():
    recs = records([("advisories", 1.0, Advisory(int(1e9), "Sorry, I can't answer that.", "refusal", refused=True, question="q")),
                    ("advisories", 5.0, Advisory(int(5e9), "Slow down near the school.", "extractive", ("205",))),
                    ("advisories", 9.0, Advisory(int(9e9), "Keep left.", "slm", question="q2"))])
    said = [Spoken(1.0, 2.0, "Sorry, I can't answer that.", "advisory"), Spoken(5.0, 6.0, "Slow down near the school.", "advisory"),
            Spoken(9.0, 9.5, "Keep left.", "advisory"), Spoken(12.0, 13.0, "Unmatched words.", "advisory")]
    labels = [c.label for c in annotate.caption_schedule(recs, said)]
    assert labels == ["Answer (refused)", "Advice, rule 205", "Answer, no rule cited", "Answer"]


# --- drawing -------------------------------------------------------------------------------------


def test_long_captions_wrap_within_the_frame():
    text = "Answer, rules 163, 212: " + " ".join(["overtaking cyclists needs at least one and a half metres"] * 6)
    lines = annotate.wrap(text, 1252, 0.85, 2)
    import cv2

    assert len(lines) == 3 and lines[-1].endswith("...")
    assert all(cv2.getTextSize(line, cv2.FONT_HERSHEY_DUPLEX, 0.85, 2)[0][0] <= 1252 for line in lines)
    assert annotate.wrap("short words – with a dash", 1252, 0.85, 2) == ("short words - with a dash",)


def caption_pixels(img: np.ndarray, kind: str) -> np.ndarray:
    """Pixels of a caption's colour (within a tolerance), as a mask."""
    b, g, r = annotate.CAPTION_BGR[kind]
    return np.all(np.abs(img.astype(int) - (b, g, r)) < 40, axis=2)


def test_a_caption_frame_shows_readable_text_at_720p(data):
    data("drives", f"{DRIVE}.mp4")
    frame = next(m.msg for m in open_drive(DRIVE).messages() if m.topic == "frames")
    index = annotate.OverlayIndex(trip(), spoken())
    bare = annotate.draw(frame.image, index.at(int(0.5e9), frame.t_ns))
    shown = annotate.draw(frame.image, index.at(int(1.5e9), frame.t_ns))
    assert frame.image.shape[:2] == (720, 1280)
    assert np.array_equal(bare[40:500], shown[40:500])  # the picture above the captions is untouched
    assert caption_pixels(bare[500:], "answer").sum() < 50 and caption_pixels(bare[500:], "driver").sum() < 50
    answer, driver = caption_pixels(shown, "answer"), caption_pixels(shown, "driver")
    assert answer.sum() > 2000 and driver.sum() > 1000
    rows = np.flatnonzero(answer.any(axis=1))
    assert rows.min() > 560 and rows.max() - rows.min() >= 18  # at the bottom, letters at least 18 px tall


# --- the MP4 ------------------------------------------------------------------------------------


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,sample_rate",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def audio_of(path: Path, sr: int = 16000) -> np.ndarray:
    """The MP4's audio track decoded by ffmpeg (the reader players use), mono float32."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)


def test_video_holds_the_last_frame_until_the_last_word_with_the_speaker_in_sync(data, tmp_path):
    data("drives", f"{DRIVE}.mp4")
    frames = [m.msg for m in open_drive(DRIVE).messages(0.0, 1.0) if m.topic == "frames"]  # 1 s of camera
    sr = 22050
    t = np.arange(sr) / sr
    pcm = np.concatenate([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t),
                          0.5 * np.sin(2 * np.pi * 880 * t[:sr // 2])]).astype(np.float32)
    track = Soundtrack(tuple(spoken()), pcm, sr)
    out = tmp_path / "v.mp4"
    w = annotate.write_video(iter(frames), trip(), out, 20.0, start_s=0.0, soundtrack=track)
    assert w.camera_frames == 20 and w.audio and w.duration_s == 5.7  # the silent alert's caption ends last
    assert out.stat().st_mode & 0o777 == 0o600  # what was said in the car: owner-only
    info = probe(out)
    kinds = {s["codec_type"]: s["codec_name"] for s in info["streams"]}
    assert kinds == {"video": "h264", "audio": "aac"}
    assert float(info["format"]["duration"]) >= 4.5  # the alert's last word is in it
    a = audio_of(out)
    rms = lambda t0, t1: float(np.sqrt(np.mean(a[int(t0 * 16000):int(t1 * 16000)] ** 2)))  # noqa: E731
    assert rms(0.0, 1.05) < 0.01 and rms(1.15, 3.05) > 0.2 and rms(3.2, 3.95) < 0.01 and rms(4.05, 4.45) > 0.2
    onset = np.flatnonzero(np.abs(a) > 0.1)[0] / 16000
    assert onset == pytest.approx(1.1, abs=0.03)  # the answer starts at its drive time: audio in sync with the frames
    import cv2

    cap = cv2.VideoCapture(str(out))
    cap.set(cv2.CAP_PROP_POS_MSEC, 1500)
    ok, img = cap.read()
    cap.release()
    assert ok and caption_pixels(img, "answer").sum() > 1000  # the answer's caption at 1.5 s, on the held frame


def test_a_camera_outage_holds_the_frame_before_it_as_the_runtime_saw_it(data, tmp_path):
    import cv2

    from vehicle_assist.replay.faults import FaultPlan
    from vehicle_assist.replay.job import Target, write_outputs

    data("drives", f"{DRIVE}.mp4")
    plan = FaultPlan.model_validate({"camera_outage": [{"start_s": 0.5, "end_s": 1.5}]})
    target = Target("outage", DRIVE, None, plan)
    files, info = write_outputs(tmp_path, target, {}, [], {}, open_drive(DRIVE), 0.0, 2.0, video=True, mcap=False)
    assert info["camera_frames"] == 20 and info["frames"] == 40 and info["sound"] is False  # 0.5-1.5 s never reached the runtime
    cap = cv2.VideoCapture(files["video"])
    shots = {}
    for k in range(40):
        ok, img = cap.read()
        if k in (9, 12, 28, 31):
            shots[k] = img[100:600].astype(int)
    cap.release()
    diff = lambda a, b: float(np.abs(shots[a] - shots[b]).mean())  # noqa: E731
    assert diff(9, 12) < 5 and diff(9, 28) < 5  # the frame of t=0.45 s held through the outage (up to coding noise)
    assert diff(28, 31) > 20  # moving pictures again after it


def test_video_without_frames_is_a_clear_error(tmp_path):
    from vehicle_assist.replay.errors import ReplayError

    with pytest.raises(ReplayError, match=r"no camera frames"):
        annotate.write_video(iter(()), trip(), tmp_path / "x.mp4", 20.0)


# --- a real scenario ------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_scenario_video_shows_the_question_and_plays_the_answer(tmp_path):
    import cv2

    from vehicle_assist import config, runtime, triplog
    from vehicle_assist.replay.job import replay_target, resolve_target
    from vehicle_assist.replay.run import ReplayOptions

    cfg = config.load_app()
    parts = runtime.load_parts(cfg, voice=True)
    out = tmp_path / "demo"
    result = replay_target(resolve_target("busy_street_following_quiet"), cfg, parts, out, ReplayOptions(), video=True)
    track = soundtrack.load(out)
    answers = [s for s in track.spoken if s.tier == "advisory"]
    assert answers and answers[0].start_s >= 3.0  # asked at 0.2 s, heard after the 3 s of camera
    video = Path(result["files"]["video"])
    info = probe(video)
    assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}
    assert float(info["format"]["duration"]) >= answers[-1].end_s  # the whole answer is in the video
    assert result["video"]["sound"] and result["video"]["camera_frames"] == 60
    a = audio_of(video)
    rms = lambda t0, t1: float(np.sqrt(np.mean(a[int(t0 * 16000):int(t1 * 16000)] ** 2)))  # noqa: E731
    assert rms(0.0, 3.0) < 0.005  # nothing said before the answer (the driver's voice is not in the track)
    assert rms(answers[0].start_s, answers[-1].end_s) > 0.02  # the answer is heard
    mid = (answers[0].start_s + answers[0].end_s) / 2
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_MSEC, mid * 1000)
    ok, img = cap.read()
    cap.release()
    assert ok and caption_pixels(img, "answer").sum() > 1000 and caption_pixels(img, "driver").sum() > 500
    _, recs = triplog.read(out / "trip.jsonl")
    sched = annotate.caption_schedule(list(recs), track.spoken)
    on = annotate.captions_at(sched, mid)
    assert [c.kind for c in on] == ["driver", "answer"] and any(r in on[1].label for r in ("163", "212", "213"))
