"""The lane's system signals: camera lost and perception lagging raise their alerts."""

from __future__ import annotations

import threading

from vehicle_assist.config import PerceptionSettings
from vehicle_assist.messages import Detections, HazardLevel
from vehicle_assist.perception.pipeline import PerceptionPipeline, RateMonitor
from vehicle_assist.perception.hazards import default_table
from vehicle_assist.safety import alerts
from vehicle_assist.safety.alert_manager import AlertManager
from vehicle_assist.safety.lane import SafetyLane

S = 1_000_000_000


def test_rate_monitor_flags_a_slow_lane():
    m = RateMonitor(rate_hz=25, factor=0.6, window_s=2.0)
    for i in range(60):  # 10 Hz for 6 s
        m.tick(i * S // 10)
    assert m.rate(59 * S // 10) < 15
    hz = m.hazards(59 * S // 10)
    assert hz and hz[0].kind == "perception-lagging" and hz[0].level == HazardLevel.WARNING
    fast = RateMonitor(rate_hz=25)
    for i in range(100):
        fast.tick(i * S // 30)
    assert fast.hazards(99 * S // 30) == []
    assert RateMonitor(25).hazards(0) == []  # no verdict before a full window


class NoDetector:
    """Isolates the lane from the model: these tests are about missing frames, not detections."""

    def detect(self, frame):
        return Detections(t_ns=frame.t_ns, frame_seq=frame.seq, width=frame.width, height=frame.height)


class NoTracker:
    def update(self, dets):
        return []


def test_no_frames_raises_camera_lost_once():
    table = alerts.load_table()
    settings = PerceptionSettings(camera_lost_after_s=0.05)
    pipe = PerceptionPipeline(NoDetector(), NoTracker(), default_table().camera)
    lane = SafetyLane(pipe, AlertManager(table), None, settings)
    # run time 0.00, 0.02, ... 0.2 s with no frame: lost after 0.05 s, alerted once
    steps = [lane.step(None, i * S // 50) for i in range(11)]
    names = [(s.t_ns, e.name) for s in steps for e in s.events if e.state == "start"]
    assert names == [(3 * S // 50, "camera-lost")]


def test_a_slow_first_frame_in_replay_is_not_a_lost_camera():
    import numpy as np

    from vehicle_assist.messages import CameraFrame

    settings = PerceptionSettings(camera_lost_after_s=0.05)
    pipe = PerceptionPipeline(NoDetector(), NoTracker(), default_table().camera)
    lane = SafetyLane(pipe, AlertManager(alerts.load_table()), None, settings, monitor_rate=False)
    img = np.zeros((72, 128, 3), np.uint8)
    for i in range(5):
        threading.Event().wait(0.06)  # processing slower than camera_lost_after_s, media time 40 ms apart
        step = lane.step(CameraFrame(t_ns=i * 40_000_000, seq=i, image=img), i * 40_000_000)
        assert step.events == ()
