"""The annotated video draws every track on every frame (predicted between detector passes), with class,
distance and, for the hazard's track, TTC; labels readable at 720p (issue 16, deliverable 5)."""

from __future__ import annotations

import numpy as np

from vehicle_assist.messages import Envelope, Hazard, HazardLevel, Track, envelope_record
from vehicle_assist.replay import annotate


def rec(topic: str, t_s: float, msg) -> dict:
    return envelope_record(Envelope(topic, int(t_s * 1e9), 0, msg))


def records() -> list[dict]:
    """A car (#1) seen on every frame and a person (#2) seen on alternate frames only (a pass that runs every
    2nd frame); the car is the forward-collision hazard with a TTC."""
    out = []
    for i in range(6):
        t = i * 0.05
        car = Track(1, "car", (600.0 + 10 * i, 400.0, 700.0 + 10 * i, 480.0), 0.9, int(t * 1e9), 0, i + 1)
        person = Track(2, "person", (100.0 + 20 * i, 300.0, 140.0 + 20 * i, 420.0), 0.8, int(t * 1e9), 0, i + 1)
        out.append(rec("tracks", t, (car, person) if i % 2 == 0 else (car,)))
        out.append(rec("hazards", t, (Hazard(int(t * 1e9), "forward-collision", HazardLevel.WARNING, "car", 1, 18.4, 2.13, True),
                                      Hazard(int(t * 1e9), "pedestrian-ahead", HazardLevel.INFO, "person", 2, 14.2, 6.0, False))))
    return out


def test_predict_box_moves_on_at_the_last_velocity():
    samples = [(0, (0, 0, 10, 10)), (100, (10, 0, 20, 10))]
    assert annotate.predict_box(samples, 150) == (15.0, 0.0, 25.0, 10.0)
    assert annotate.predict_box(samples[:1], 150) == (0.0, 0.0, 10.0, 10.0)  # one sample: held where it was
    assert annotate.predict_box(samples, 100) == (10.0, 0.0, 20.0, 10.0)


def test_box_label_has_class_distance_and_the_hazards_ttc():
    hz = {"distance_m": 18.4, "ttc_s": 2.13}
    assert annotate.box_label("car", 1, hz, with_ttc=True) == "car #1 18 m TTC 2.1 s"
    assert annotate.box_label("car", 1, hz, with_ttc=False) == "car #1 18 m"
    assert annotate.box_label("person", 2, None, with_ttc=True) == "person #2"


def test_every_track_is_drawn_on_every_frame():
    index = annotate.OverlayIndex(records())
    on = index.at(int(0.10e9))   # both measured
    off = index.at(int(0.15e9))  # the person's pass did not run: predicted from its boxes at t=0.0 and 0.10
    assert len(on.boxes) == 2 and not on.predicted
    assert len(off.boxes) == 2 and off.predicted == frozenset({1})
    box, label, level = off.boxes[1]
    assert label == "person #2 14 m" and level == "info"
    assert np.allclose(box, (160.0, 300.0, 200.0, 420.0))  # x 100 -> 140 in 0.1 s, so 160 at 0.15 s
    car = off.boxes[0]
    assert car[1] == "car #1 18 m TTC 2.1 s" and car[2] == "warning"  # TTC on the hazard's track only
    assert "hazard: warning forward-collision #1 TTC 2.1s" in off.status
    assert len(index.at(int(0.80e9)).boxes) == 0  # nothing logged for 0.55 s (> max_age_s): nothing drawn


def test_labels_are_readable_at_720p():
    index = annotate.OverlayIndex(records())
    img = np.full((720, 1280, 3), 90, np.uint8)
    out = annotate.draw(img, index.at(int(0.10e9)))
    colour = np.array(annotate.LEVEL_BGR["warning"])
    # the car's label: warning-coloured text on a black plate above the box (box drawn 4 px wide below y=400)
    plate = out[340:398, 600:1000]
    text = np.all(np.abs(plate.astype(int) - colour) < 40, axis=2)
    rows = np.flatnonzero(text.any(axis=1))
    assert rows.size and rows.max() - rows.min() >= 12  # letters at least 12 px tall
    cols = np.flatnonzero(text.any(axis=0))
    assert cols.max() - cols.min() > 150  # "car #1 18 m TTC 2.1 s warning" is long


def test_the_hazards_label_is_drawn_on_top_of_overlapping_ones():
    img = np.full((720, 1280, 3), 90, np.uint8)
    hazard = ((600.0, 400.0, 700.0, 480.0), "car #1 18 m TTC 2.1 s", "warning")
    other = ((610.0, 402.0, 720.0, 470.0), "person #9 19 m", "none")  # its label lands on the car's
    for boxes in ((hazard, other), (other, hazard)):
        out = annotate.draw(img, annotate.Overlay(0.0, boxes))
        under = out[370:400, 615:700]  # where the two label plates overlap
        colour = np.array(annotate.LEVEL_BGR["warning"])
        assert np.all(np.abs(under.astype(int) - colour) < 40, axis=2).sum() > 150  # drawn first, it would be 0
