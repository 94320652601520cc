"""perception.egomotion: stopped vs moving and a rough forward speed from the road's optical flow, on real
frames of the fetched drives (sim/drives), and how the pipeline uses it only without telemetry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import data_file
from vehicle_assist.messages import CameraFrame, Detection, Detections, VehicleState
from vehicle_assist.perception import egomotion, hazards

CAL = hazards.default_table().camera


def frames(name: str, start_s: float, end_s: float):
    cap = cv2.VideoCapture(str(data_file("drives", name)))
    fps = cap.get(cv2.CAP_PROP_FPS)
    out, i = [], 0
    while True:
        ok, img = cap.read()
        if not ok or i / fps > end_s:
            break
        if i / fps >= start_s:
            out.append((int(i / fps * 1e9), img))
        i += 1
    cap.release()
    assert len(out) >= 2
    return out


def speeds(name: str, start_s: float, end_s: float) -> list:
    em = egomotion.EgoMotion(CAL)
    return [m for m in (em.update(img, t) for t, img in frames(name, start_s, end_s)) if m is not None]


def test_a_stopped_car_reads_stopped_whatever_the_shake():
    # DAD 597: stopped behind a taxi, people walking past; DAD 617: waiting at a crossing
    for name, a, b in (("urban_narrow_street_taxi_pedestrians_dad000597.mp4", 0.0, 3.0),
                       ("urban_crosswalk_scooters_cyclist_fall_dad000617.mp4", 0.0, 1.8)):
        ms = speeds(name, a, b)
        assert all(m.moving is False and abs(m.speed_mps) < 1.5 for m in ms[3:]), (name, ms)


def test_a_moving_car_reads_moving_with_a_plausible_speed():
    # highway_cars_1s: motorway traffic; DAD 487: an urban street at ~30-40 km/h
    hw = speeds("highway_cars_1s.mp4", 0.0, 1.5)
    assert all(m.moving for m in hw[8:]) and 15 < float(np.median([m.speed_mps for m in hw[8:]])) < 45
    urban = speeds("urban_busy_street_pedestrians_scooters_dad000487.mp4", 1.5, 3.0)
    assert all(m.moving for m in urban[3:]) and 4 < float(np.median([m.speed_mps for m in urban[3:]])) < 20


def test_flow_speed_is_pure_and_degrades_on_a_blank_road():
    (t0, a), (t1, b) = frames("highway_cars_1s.mp4", 0.5, 0.6)[:2]
    one = egomotion.flow_speed(a, b, (t1 - t0) / 1e9, CAL)
    assert one == egomotion.flow_speed(a, b, (t1 - t0) / 1e9, CAL) and one[0] > 5 and one[1] >= 12
    blank = np.full_like(a, 90)
    assert egomotion.flow_speed(blank, blank, 0.04, CAL)[0] is None      # no texture: no estimate
    assert egomotion.flow_speed(a, b, 0.0, CAL) == (None, 0)             # no time between them
    # boxes over the whole lower image leave no background to sample
    assert egomotion.flow_speed(a, b, 0.04, CAL, boxes=((0.0, 300.0, 1280.0, 720.0),))[0] is None
    assert egomotion.classify(None) is None and egomotion.classify(0.2) is False
    assert egomotion.classify(9.0) is True and egomotion.classify(2.0) is None


def test_the_estimate_never_falls_faster_than_a_car_can_brake():
    em = egomotion.EgoMotion(CAL)
    seq = frames("highway_cars_1s.mp4", 0.0, 1.0)
    for t, img in seq:
        last = em.update(img, t)
    assert last.moving
    covered = np.full_like(seq[-1][1], 60)   # the road hidden (a vehicle cut in close ahead)
    t = seq[-1][0]
    for k in range(1, 4):
        m = em.update(covered, t + k * 40_000_000)
    assert m.speed_mps >= last.speed_mps - 9.8 * 0.12 - 0.01 and m.moving is not False


class _Det:
    def detect(self, frame):
        return Detections(t_ns=frame.t_ns, frame_seq=frame.seq, width=frame.width, height=frame.height,
                          items=(Detection(box=(500.0, 300.0, 700.0, 450.0), label="car", class_id=2, confidence=0.9),))

    def reset(self, calib=None):
        pass


def test_the_pipeline_reads_motion_only_without_a_telemetry_speed():
    from vehicle_assist.perception.pipeline import PerceptionPipeline
    from vehicle_assist.perception.tracker import Tracker

    pipe = PerceptionPipeline(_Det(), Tracker(), CAL)
    seq = frames("highway_cars_1s.mp4", 0.0, 0.5)
    results = [pipe.process(CameraFrame(t, i, img)) for i, (t, img) in enumerate(seq)]
    assert results[0].detections.motion is None and results[-1].detections.motion.moving
    assert "motion" in results[-1].timings
    with_speed = pipe.process(CameraFrame(seq[-1][0] + 40_000_000, 99, seq[-1][1]),
                              VehicleState(seq[-1][0], speed_mps=20.0))
    assert with_speed.detections.motion is None


def test_the_flow_runs_on_every_second_frame_and_reads_the_same_speed(monkeypatch):
    seq = frames("highway_cars_1s.mp4", 0.0, 1.5)
    every1 = egomotion.EgoMotion(CAL, egomotion.FlowSettings(every=1))
    every2 = egomotion.EgoMotion(CAL, egomotion.FlowSettings(every=2))  # half the CPU (not the default)
    assert egomotion.FlowSettings().every == 1
    calls = []
    real = egomotion.flow_speed
    monkeypatch.setattr(egomotion, "flow_speed", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    one = [every1.update(img, t) for t, img in seq]
    n1, calls[:] = len(calls), []
    two = [every2.update(img, t) for t, img in seq]
    assert n1 == len(seq) - 1 and len(calls) == len(seq) // 2
    dt = (seq[1][0] - seq[0][0]) / 1e9
    assert all(abs(c - dt) < 1e-6 for c in calls)  # each flow between two consecutive frames
    assert two[0] is None and two[1] is not None and two[1].speed_mps == one[1].speed_mps
    for k in range(2, len(seq), 2):  # a frame without the flow repeats the last estimate, re-stamped
        assert two[k].t_ns == seq[k][0] and two[k].speed_mps == two[k - 1].speed_mps
    s1 = float(np.median([m.speed_mps for m in one[8:]]))
    s2 = float(np.median([m.speed_mps for m in two[8:]]))
    assert all(m.moving for m in two[8:]) and abs(s2 - s1) < 0.15 * s1
    every2.reset()
    assert every2.update(seq[0][1], seq[0][0]) is None and every2.update(seq[1][1], seq[1][0]) is not None
