"""The lane's system signals: camera lost and perception lagging raise their alerts; the lane is
the one object detect, the benchmarks, replay and the car run."""

from __future__ import annotations

import threading

import numpy as np

from vehicle_assist.config import PerceptionSettings
from vehicle_assist.messages import AlertState, CameraFrame, Detections, HazardLevel
from vehicle_assist.perception.hazards import default_table
from vehicle_assist.perception.pipeline import PerceptionPipeline
from vehicle_assist.safety import alerts
from vehicle_assist.safety.alert_manager import AlertManager
from vehicle_assist.safety.lane import RateMonitor, SafetyLane, system_hazards

S = 1_000_000_000


def test_rate_monitor_flags_perception_below_the_configured_rate():
    m = RateMonitor(rate_hz=25, factor=0.6, window_s=2.0)
    for i in range(180):  # a 30 fps camera for 6 s, perception keeping up with one frame in three
        m.offered(i * S // 30)
        if i % 3 == 0:
            m.processed(i * S // 30)
    offered, processed = m.rates(179 * S // 30)
    assert abs(offered - 30) <= 1 and abs(processed - 10) <= 1
    hz = m.hazards(179 * S // 30)
    assert hz and hz[0].kind == "perception-lagging" and hz[0].level == HazardLevel.WARNING
    assert RateMonitor(25).hazards(0) == []  # no verdict before a full window


def test_rate_monitor_judges_against_the_camera_when_the_camera_is_slower():
    m = RateMonitor(rate_hz=25, factor=0.6, window_s=2.0)
    for i in range(60):  # a 10 fps camera, every frame processed: perception keeps up
        m.offered(i * S // 10)
        m.processed(i * S // 10)
    assert m.hazards(59 * S // 10) == []
    for i in range(60, 120):  # the same camera, perception now at 3 fps
        m.offered(i * S // 10)
        if i % 3 == 0:
            m.processed(i * S // 10)
    assert [h.kind for h in m.hazards(119 * S // 10)] == ["perception-lagging"]


def test_system_hazards_are_pure():
    assert [h.kind for h in system_hazards({"frames", "detections"}, 5)] == ["camera-lost"]
    assert [h.kind for h in system_hazards({"detections"}, 5)] == ["perception-lagging"]
    assert system_hazards({"vehicle", "audio"}, 5) == []


class NoDetector:
    """Isolates the lane from the model: these tests are about missing frames, not detections."""

    def reset(self, calib=None):
        pass

    def detect(self, frame):
        return Detections(t_ns=frame.t_ns, frame_seq=frame.seq, width=frame.width, height=frame.height)


class NoTracker:
    def reset(self):
        pass

    def update(self, dets):
        return []


def _lane(**settings) -> SafetyLane:
    pipe = PerceptionPipeline(NoDetector(), NoTracker(), default_table().camera)
    return SafetyLane(pipe, AlertManager(alerts.load_table()), None, PerceptionSettings(**settings))


def test_no_frames_raises_camera_lost_once():
    lane = _lane(camera_lost_after_s=0.05)
    # run time 0.00, 0.02, ... 0.2 s with no frame: lost after 0.05 s, alerted once
    steps = [lane.step(None, i * S // 50) for i in range(11)]
    names = [(s.t_ns, e.name) for s in steps for e in s.events if e.state == AlertState.START]
    assert names == [(3 * S // 50, "camera-lost")]


def test_a_slow_first_frame_in_replay_is_not_a_lost_camera():
    lane = _lane(camera_lost_after_s=0.05)
    img = np.zeros((72, 128, 3), np.uint8)
    for i in range(5):
        threading.Event().wait(0.06)  # processing slower than camera_lost_after_s, media time 40 ms apart
        step = lane.step(CameraFrame(t_ns=i * 40_000_000, seq=i, image=img), i * 40_000_000)
        assert step.events == ()


def test_lockstep_at_a_slow_media_rate_is_not_lagging():
    lane = _lane(rate_hz=25)
    img = np.zeros((72, 128, 3), np.uint8)
    steps = [lane.step(CameraFrame(t_ns=i * S // 5, seq=i, image=img), i * S // 5) for i in range(30)]  # a 5 fps video
    assert not [e for s in steps for e in s.events]


def test_reset_starts_the_lane_afresh():
    lane = _lane(camera_lost_after_s=0.05)
    assert [e.name for i in range(5) for e in lane.step(None, i * S // 50).events] == ["camera-lost"]
    lane.reset()
    assert lane.manager.active is None and lane.hazards == () and lane.last_alert_text is None
    assert [e.name for i in range(5) for e in lane.step(None, i * S // 50).events] == ["camera-lost"]  # not in cooldown
