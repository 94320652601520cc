"""Replay outputs: HTML report, annotated MP4 and MCAP for Foxglove, on real frames of a real drive."""

from __future__ import annotations

import json
import re

import numpy as np

from vehicle_assist.messages import (Advisory, AlertEvent, Envelope, ErrorEvent, Hazard, HazardLevel, SpeechEvent,
                                     StageTiming, Tier, TopicStale, Track, Transcript, envelope_record)
from vehicle_assist.replay import annotate, mcap_out, report
from vehicle_assist.replay.drive import open_drive

DRIVE = "urban_busy_street_pedestrians_scooters_dad000487"


def trip():
    """A trip log of the shape the runtime writes (hand-made: these tests isolate the writers)."""
    items = []
    for i in range(100):
        t = i / 20
        box = (1000.0 - 4 * i, 500.0 - i, 1250.0, 720.0 - 2)
        items.append(("tracks", t, (Track(7, "motorcycle", box, 0.8, int(t * 1e9), 0, i + 1),)))
        level = HazardLevel.CRITICAL if t >= 4.2 else HazardLevel.CAUTION if t >= 3.6 else HazardLevel.INFO
        items.append(("hazards", t, (Hazard(int(t * 1e9), "cyclist-ahead", level, "motorcycle", 7, 3.0, 1.2, True),)))
        items.append(("timings", t, StageTiming(int(t * 1e9), "safety", "detect", 40.0 + i % 9, i)))
    items += [("alerts", 4.2, AlertEvent(int(4.2e9), "cyclist-critical", 94, "Cyclist! Brake!", True)),
              ("speech", 4.22, SpeechEvent(int(4.22e9), "start", "Cyclist! Brake!", Tier.ALERT)),
              ("speech", 4.9, SpeechEvent(int(4.9e9), "end", "Cyclist! Brake!", Tier.ALERT)),
              ("transcripts", 1.8, Transcript(int(1.8e9), "how much room for a cyclist <b>", 0.9)),
              ("advisories", 2.6, Advisory(int(2.6e9), "Give cyclists at least 1.5 metres.", "extractive", ("163",), question="how much room")),
              ("health", 2.0, TopicStale(int(2e9), "frames", True, 0.6, 0.5)),
              ("health", 2.5, TopicStale(int(2.5e9), "frames", False, 0.0, 0.5)),
              ("errors", 2.2, ErrorEvent(int(2.2e9), "asr-failed", "decoder crashed", "asr", 1))]
    items.sort(key=lambda x: x[1])
    return [envelope_record(Envelope(t, int(s * 1e9), i, m, proc_ns=i)) for i, (t, s, m) in enumerate(items, 1)]


def test_report_is_self_contained_and_says_what_happened():
    header = {"drive": {"name": DRIVE, "duration_s": 5.0}, "mode": "lockstep",
              "faults": {"camera_outage": [{"start_s": 2.0, "end_s": 2.5}]}, "fault_lines": ["camera outage t=2-2.5 s"]}
    checks = [{"expectation": "alert any between t=3.6 and t=5.0", "passed": True, "reason": "cyclist-critical at t=4.20"}]
    html = report.render(header, trip(), title="busy street", checks=checks, ref_diffs=[])
    assert "<script" not in html and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert html.count("<svg") == 1 and "cyclist-critical" in html and "Cyclist! Brake!" in html
    assert "Give cyclists at least 1.5 metres." in html and "<td>163</td>" in html
    assert "how much room for a cyclist &lt;b&gt;" in html  # escaped
    assert "safety.detect" in html and "asr-failed" in html and "frames stale t=2.00-2.50 s" in html
    assert "camera outage t=2-2.5 s" in html and "1/1 passed" in html
    m = re.search(r"<tr><td>safety.detect</td><td>100</td><td>([\d.]+)</td><td>([\d.]+)</td>", html)
    assert m and 40 <= float(m.group(1)) <= 48 and float(m.group(2)) <= 48


def test_annotated_video_draws_on_real_frames(data, tmp_path):
    data("drives", f"{DRIVE}.mp4")
    frames = [m.msg for m in open_drive(DRIVE).messages() if m.topic == "frames"]
    records = trip()
    overlay = annotate.OverlayIndex(records).at(frames[90].t_ns)
    assert overlay.boxes[0][2] == "critical" and [(c.kind, c.text) for c in overlay.captions] == [
        ("driver", "how much room for a cyclist <b>"), ("alert", "Cyclist! Brake!")]  # heard at 1.8 s, shown 3 s
    img = annotate.draw(frames[90].image, overlay)
    assert img.shape == frames[90].image.shape and not np.array_equal(img, frames[90].image)
    out = tmp_path / "a.mp4"
    written = annotate.write_video(frames, records, out, fps=20.0)
    # the alert spoken at 4.22 s is captioned for at least 1.5 s: the last frame is held until 5.72 s
    assert written.camera_frames == 100 and written.frames == 115 and written.duration_s == 5.75
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1280 and int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == 720
    cap.release()


def test_mcap_output_has_json_channels_foxglove_can_read(data, tmp_path):
    from mcap.reader import make_reader

    data("drives", f"{DRIVE}.mp4")
    frames = [m.msg for m in open_drive(DRIVE).messages(end_s=1.0) if m.topic == "frames"]
    path = tmp_path / "out.mcap"
    counts = mcap_out.write(path, {"drive": {"name": DRIVE}}, trip(), frames)
    assert counts["/va/alerts"] == 1 and counts["/camera/image"] == 20 and counts["/camera/annotations"] == 20
    with path.open("rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        schemas = {s.name for s in summary.schemas.values()}
        assert {"foxglove.CompressedImage", "foxglove.ImageAnnotations", "vehicle_assist.TripLogRecord"} <= schemas
        assert all(ch.message_encoding == "json" for ch in summary.channels.values())
        alerts = [json.loads(m.data) for _, _, m in reader.iter_messages(topics=["/va/alerts"])]
    assert alerts[0]["msg"]["name"] == "cyclist-critical" and alerts[0]["timestamp"] == {"sec": 4, "nsec": 200_000_000}


def test_timeline_svg_is_well_formed_and_places_events_in_time():
    import xml.etree.ElementTree as ET

    ev = report.events(trip())
    svg = report.timeline_svg(ev, 5.0, [(2.0, 2.5, "camera outage")])
    root = ET.fromstring(svg)  # well-formed XML
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("cyclist-critical t=4.20") for t in titles)
    assert any(t.startswith("fault: camera outage") for t in titles)
    alert = next(r for r in root.iter("{http://www.w3.org/2000/svg}rect")
                 if (r.findtext("{http://www.w3.org/2000/svg}title") or "").startswith("cyclist-critical"))
    x = float(alert.get("x"))
    assert abs(x - (report.LEFT + (report.W - report.LEFT - 10) * 4.2 / 5.0)) < 1.0  # at t=4.2 of a 5 s axis
