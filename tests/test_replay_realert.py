"""Alert logic re-run on logged tracks (no detector), and a loosened hazards.yaml making a check fail."""

from __future__ import annotations


import yaml

from vehicle_assist.config import CameraCalibration
from vehicle_assist.messages import Envelope, Track, envelope_record
from vehicle_assist.perception import hazards as hz
from vehicle_assist.replay import expect, realert
from vehicle_assist.replay.expect import parse

CAL = CameraCalibration(width=1280, height=720, focal_px=1150.0, cx=640.0, cy=390.0, mount_height_m=1.25)


def approach_log(fps=20.0, gap0=60.0, closing=12.0, seconds=4.0):
    """Tracks of a car straight ahead closing at ``closing`` m/s (box height f*H/d), as the runtime logs them."""
    recs, history = [], []
    for i in range(int(seconds * fps)):
        t_ns = int(i / fps * 1e9)
        d = gap0 - closing * i / fps
        h = CAL.focal_px * 1.5 / d
        bottom = CAL.cy + CAL.focal_px * CAL.mount_height_m / d
        box = (640 - h * 0.6, bottom - h, 640 + h * 0.6, bottom)
        history = (history + [(t_ns, h)])[-30:]
        tr = Track(1, "car", box, 0.9, t_ns, 0, i + 1, tuple(history))
        recs.append(envelope_record(Envelope("tracks", t_ns, 2 * i + 1, (tr,))))
    return recs


def test_rerun_raises_the_expected_alert_from_logged_tracks():
    out = realert.rerun(approach_log(), CAL)
    assert [r["seq"] for r in out] == list(range(1, len(out) + 1))
    alerts = expect.alert_starts(out)
    # gap 60 m closing at 12 m/s: TTC 3.2 s (warning) at t=1.8 s, 1.6 s (critical) at t=3.4 s, once TTC is fitted
    assert alerts and alerts[0][1] == "forward-collision" and 1.7 <= alerts[0][0] <= 2.2
    assert any(n == "brake-now" and 3.3 <= t <= 3.7 for t, n in alerts)
    (ok,) = expect.check([parse("alert forward-collision within 0.5 s of t=1.8")], out)
    assert ok.passed, ok.reason


def test_loosening_a_threshold_in_hazards_yaml_makes_a_check_fail(va_home):
    check = [parse("alert forward-collision|brake-now within 0.5 s of t=1.8")]
    table = hz.load_table(va_home / "configs" / "hazards.yaml")
    assert expect.check(check, realert.rerun(approach_log(), CAL, table))[0].passed
    data = yaml.safe_load((va_home / "configs" / "hazards.yaml").read_text())
    data["levels"]["forward-collision"].update(critical_ttc_s=0.8, warning_ttc_s=1.0, caution_ttc_s=1.5)  # looser
    (va_home / "configs" / "hazards.yaml").write_text(yaml.safe_dump(data))
    loose = hz.load_table(va_home / "configs" / "hazards.yaml")
    (result,) = expect.check(check, realert.rerun(approach_log(), CAL, loose))
    assert not result.passed and "no forward-collision|brake-now alert between t=1.3 and t=2.3" in result.reason


def test_system_alerts_come_from_logged_health_and_other_lanes_alerts_are_kept():
    """camera-lost is decided again by the safety lane from the log's staleness records, in the one
    alert manager with the frames' hazards (it replaces the quieter vehicle-closing alert); the route
    lane's speeding alert, which the safety lane does not decide, is kept as logged."""
    from vehicle_assist.messages import AlertEvent, TopicStale

    recs = [r for r in approach_log() if r["t_ns"] < 1.2e9]  # vehicle-closing (caution) from 1.0 s (track age), then the camera goes
    t = int(1.2e9)
    recs.append(envelope_record(Envelope("health", t, 1000, TopicStale(t, "frames", True, 1.0, 1.0))))
    recs.append(envelope_record(Envelope("alerts", t, 1001, AlertEvent(t, "camera-lost", 70, "Camera lost.", True))))
    recs.append(envelope_record(Envelope("alerts", t + 1, 1002, AlertEvent(t + 1, "speeding", 10, "Speed limit.", True))))
    out = realert.rerun(recs, CAL)
    events = [(r["t_ns"], r["msg"]["name"], r["msg"]["state"]) for r in out if r["topic"] == "alerts"]
    assert events == [(int(1.0e9), "vehicle-closing", "start"), (t, "vehicle-closing", "end"), (t, "camera-lost", "start"),
                      (t + 1, "speeding", "start")]
    assert sum(r["topic"] == "hazards" for r in out) == 24  # one per logged frame, none from the health record
    without = [(r["msg"]["name"], r["msg"]["state"]) for r in realert.rerun(recs[:-3], CAL) if r["topic"] == "alerts"]
    assert without == [("vehicle-closing", "start")]  # no staleness logged: the camera was never lost


def test_a_health_record_that_is_not_one_is_named():
    import pytest

    from vehicle_assist.messages import MessageError

    bad = {"seq": 7, "topic": "health", "t_ns": 0, "msg": {"type": "TopicStale", "topic": "frames"}}
    with pytest.raises(MessageError, match=r"seq 7 \(health\)"):
        realert.rerun(approach_log(seconds=0.5) + [bad], CAL)


def detections_log(fps=20.0, gap0=60.0, closing=12.0, seconds=4.0):
    """The same approach as ``approach_log``, logged one step earlier: the detector's boxes (no tracks)."""
    from vehicle_assist.messages import Detection, Detections

    recs = []
    for i in range(int(seconds * fps)):
        t_ns = int(i / fps * 1e9)
        d = gap0 - closing * i / fps
        h = CAL.focal_px * 1.5 / d
        bottom = CAL.cy + CAL.focal_px * CAL.mount_height_m / d
        det = Detection(box=(640 - h * 0.6, bottom - h, 640 + h * 0.6, bottom), label="car", class_id=2,
                        confidence=0.9, source="roi")
        recs.append(envelope_record(Envelope("detections", t_ns, 2 * i + 1,
                                             Detections(t_ns=t_ns, frame_seq=i, width=1280, height=720, items=(det,)))))
    return recs


def test_rerun_rebuilds_tracks_from_logged_detections():
    out = realert.rerun(detections_log(), CAL)
    tracks = [r for r in out if r["topic"] == "tracks"]
    assert len(tracks) == 80 and all(len(r["msg"]) == 1 for r in tracks[1:])  # one car, one track id
    assert len({m["track_id"] for r in tracks for m in r["msg"]}) == 1
    alerts = expect.alert_starts(out)
    assert alerts and alerts[0][1] == "forward-collision" and 1.7 <= alerts[0][0] <= 2.3
    assert not [r for r in realert.rerun(detections_log(), CAL, retrack=False) if r["topic"] == "alerts"]  # no tracks logged


def test_rerun_uses_the_ego_motion_logged_with_the_detections():
    """A scooter ~4 m ahead riding with us: a warning only when the logged detections say (from the
    image) that we move; the same boxes logged as stopped stay silent."""
    from vehicle_assist.messages import Detection, Detections, ImageMotion

    def log(speed, moving):
        recs = []
        for i in range(40):
            t_ns = int(i / 20 * 1e9)
            h = CAL.focal_px * 1.55 / (4.0 - 0.01 * i)
            det = Detection(box=(640 - h * 0.3, 700 - h, 640 + h * 0.3, 700.0), label="motorcycle", class_id=3,
                            confidence=0.9, source="full")
            dets = Detections(t_ns=t_ns, frame_seq=i, width=1280, height=720, items=(det,),
                              motion=ImageMotion(t_ns, speed, moving, 50))
            recs.append(envelope_record(Envelope("detections", t_ns, i + 1, dets)))
        return recs

    assert [n for _, n in expect.alert_starts(realert.rerun(log(4.5, True), CAL))] == ["motorcyclist-ahead"]
    assert not expect.alert_starts(realert.rerun(log(0.1, False), CAL))
