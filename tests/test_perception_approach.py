"""Approach sequences: NHTSA kinematics, compositing geometry h = f*H/d, deterministic generation."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from vehicle_assist.tools import approach
from vehicle_assist.tools.approach import MPH, SCENARIOS, collision_time, composite, gap_at


def test_kinematics_match_the_nhtsa_scenarios():
    stopped, slower, braking = SCENARIOS["lead-stopped"], SCENARIOS["lead-slower"], SCENARIOS["lead-braking"]
    assert stopped.gap0_m >= 80 and slower.gap0_m >= 80 and SCENARIOS["lead-braking-far"].gap0_m >= 80
    assert collision_time(stopped) == pytest.approx(100 / (45 * MPH), abs=1e-3)
    assert collision_time(slower) == pytest.approx(100 / (25 * MPH), abs=1e-3)
    # braking: gap stays 30 m until the lead brakes, then 30 - 0.5*a*t^2 (the ego never catches it before it stops)
    a = 0.3 * approach.G
    assert gap_at(braking, 1.0) == pytest.approx(30.0)
    assert gap_at(braking, braking.brake_at_s + 2.0) == pytest.approx(30 - 0.5 * a * 4, abs=1e-6)
    assert collision_time(braking) == pytest.approx(braking.brake_at_s + np.sqrt(30 / (0.5 * a)), abs=1e-3)
    assert [sc.required_ttc_s for sc in (stopped, slower, braking)] == [2.1, 2.0, 2.4]


def test_composite_places_the_car_by_the_pinhole_model():
    cal = approach.ROAD_CALIBRATION
    bg = np.full((720, 1280, 3), 90, np.uint8)
    car = np.full((80, 120, 3), 250, np.uint8)
    for d in (80.0, 40.0, 10.0):
        img, box = composite(bg, car, d, cal)
        h = box[3] - box[1]
        assert h == pytest.approx(cal.focal_px * approach.CAR_HEIGHT_M / d)
        assert box[3] == pytest.approx(cal.cy + cal.focal_px * cal.mount_height_m / d)
        cy, cx = int((box[1] + box[3]) / 2), int((box[0] + box[2]) / 2)
        assert img[cy, cx].mean() > 200  # the car is there
    assert img[50, 50].mean() == pytest.approx(90, abs=1)  # the road frame elsewhere is untouched


def test_splits_are_fixed_and_distinct():
    test, dev = approach.split("test"), approach.split("dev")
    assert [s.name for s, _ in test] == list(SCENARIOS)
    assert all(s.name.endswith("-dev") for s, _ in dev)
    assert {(s.crop, s.crop_index) for s, _ in dev}.isdisjoint({(s.crop, s.crop_index) for s, _ in test})
    with pytest.raises(ValueError):
        approach.split("train")


@pytest.mark.slow
def test_generation_is_deterministic_with_ground_truth(tmp_path):
    from dataclasses import replace

    from vehicle_assist import models

    model = models.load_detector()
    short = replace(SCENARIOS["lead-stopped"], name="short", stop_gap_m=90.0)  # 10 m of approach: 13 frames
    mp4a, jsa = approach.generate(short, tmp_path / "a", model=model, seed=3)
    mp4b, jsb = approach.generate(short, tmp_path / "b", model=model, seed=3)
    truth = approach.load_truth(jsa)
    assert len(truth["frames"]) == approach.frame_count(short) == 13
    assert truth["frames"][0]["gap_m"] == 100.0 and truth["collision_t_s"] == pytest.approx(4.971, abs=1e-3)
    assert truth["calibration"]["focal_px"] == approach.ROAD_CALIBRATION.focal_px
    assert hashlib.sha256(jsa.read_bytes()).digest() == hashlib.sha256(jsb.read_bytes()).digest()
    import cv2

    frames = []
    for p in (mp4a, mp4b):
        cap = cv2.VideoCapture(str(p))
        ok, img = cap.read()
        frames.append(img)
        cap.release()
    assert np.array_equal(frames[0], frames[1])
