"""hazards.assess and estimate_ttc: TTC from box-scale growth, distance, corridor, levels, hysteresis."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle_assist.config import ConfigError
from vehicle_assist.messages import HazardLevel, Track, VehicleState
from vehicle_assist.perception import hazards
from vehicle_assist.perception.hazards import CameraCalibration, assess, estimate_ttc, levels_of

CAL = CameraCalibration()  # 1280x720, f=1150 px
TABLE = hazards.load_table()
FPS = 25


def approach_track(dist_at, t_end: float, label: str = "car", lateral_m: float = 0.0, tid: int = 1,
                   noise_px: float = 0.0, seed: int = 0, duration: float = 1.2) -> Track:
    """A track whose box follows h = f*H/d(t) for a given distance function, sampled at 25 fps."""
    H = TABLE.classes[label].height_m
    rng = np.random.default_rng(seed)
    times = np.arange(t_end - duration, t_end + 1e-9, 1 / FPS)
    hist, edges = [], []
    for t in times:
        h = CAL.focal_px * H / dist_at(t) + (rng.normal(0, noise_px) if noise_px else 0.0)
        hist.append((int(t * 1e9), float(h)))
        u = CAL.cx + lateral_m * h / H
        edges.append((int(t * 1e9), u - 0.6 * h, u + 0.6 * h))  # a rigid outline: width 1.2 x height
    h = hist[-1][1]
    w = h * 1.2
    u = CAL.cx + lateral_m * h / H
    box = (u - w / 2, 400 - h, u + w / 2, 400.0)
    return Track(track_id=tid, label=label, box=box, confidence=0.8, t_ns=hist[-1][0], first_t_ns=hist[0][0],
                 hits=len(hist), history=tuple(hist), edges=tuple(edges))


def test_ttc_constant_closing_speed():
    # lead stopped 40 m ahead, ego at 20 m/s: TTC = 2.0 s at t = 0
    tr = approach_track(lambda t: 40 - 20 * t, 0.0)
    est = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc)
    assert est.ttc_s == pytest.approx(2.0, rel=0.03)
    assert est.ttc_cv_s == pytest.approx(2.0, rel=0.03)


def test_ttc_with_pixel_noise_stays_close():
    tr = approach_track(lambda t: 50 - 20 * t, 0.0, noise_px=0.7, seed=3)
    est = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc)
    assert est.ttc_cv_s == pytest.approx(2.5, rel=0.2)


def test_ttc_braking_lead_is_earlier_than_constant_velocity():
    # both at 20 m/s, 30 m apart; lead brakes at 0.3 g from t=0: gap = 30 - 1.47 t^2
    a = 0.3 * 9.81 / 2
    t_now = 2.5
    tr = approach_track(lambda t: 30 - a * t * t, t_now)
    est = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc)
    true_ttc = np.sqrt(30 / a) - t_now
    assert est.ttc_cv_s > true_ttc * 1.2  # constant velocity overestimates
    assert est.ttc_s == pytest.approx(true_ttc, rel=0.1)


def test_no_ttc_when_not_closing_or_too_short():
    steady = approach_track(lambda t: 30.0, 0.0)
    assert estimate_ttc(steady.history, steady.t_ns, TABLE.ttc).ttc_s is None
    receding = approach_track(lambda t: 30 + 5 * t, 0.0)
    assert estimate_ttc(receding.history, receding.t_ns, TABLE.ttc).ttc_s is None
    short = approach_track(lambda t: 40 - 20 * t, 0.0, duration=0.1)
    assert estimate_ttc(short.history, short.t_ns, TABLE.ttc).ttc_s is None


def test_distance_from_box_height():
    assert hazards.distance_m(1150 * 1.5 / 30, 1.5, CAL) == pytest.approx(30)
    assert hazards.distance_m(0.5, 1.5, CAL) is None


def test_closing_car_in_corridor_is_a_warning_and_adjacent_lane_is_not():
    ahead = approach_track(lambda t: 50 - 20 * t, 0.0, tid=1)           # TTC 2.5 s, dead ahead
    beside = approach_track(lambda t: 50 - 20 * t, 0.0, lateral_m=3.6, tid=2)  # next lane
    out = {h.track_id: h for h in assess([ahead, beside], None, ahead.t_ns, CAL)}
    assert out[1].kind == "forward-collision" and out[1].level == HazardLevel.WARNING and out[1].in_corridor
    assert out[1].distance_m == pytest.approx(50, rel=0.02)
    assert out[1].closing_speed_mps == pytest.approx(20, rel=0.05)
    assert out[2].level == HazardLevel.INFO and not out[2].in_corridor


def test_levels_follow_ttc_thresholds():
    def level(ttc: float, v: float = 15.0) -> HazardLevel:
        tr = approach_track(lambda t: ttc * v - v * t, 0.0, duration=2.0)  # far (> far_m): a track old enough
        return assess([tr], None, tr.t_ns, CAL)[0].level
    assert level(1.2) == HazardLevel.CRITICAL
    assert level(2.5) == HazardLevel.WARNING
    assert level(4.0) == HazardLevel.CAUTION
    assert level(8.0, v=5.0) == HazardLevel.INFO  # 40 m away, closing slowly


def test_hysteresis_holds_a_level_near_its_threshold():
    tr = approach_track(lambda t: 3.6 * 15 - 15 * t, 0.0, duration=2.0)  # TTC 3.6: above warning (3.2), below 3.2*1.25
    fresh = assess([tr], None, tr.t_ns, CAL)[0]
    held = assess([tr], None, tr.t_ns, CAL, prev_levels={1: HazardLevel.WARNING})[0]
    assert fresh.level == HazardLevel.CAUTION
    assert held.level == HazardLevel.WARNING
    assert levels_of([held]) == {1: HazardLevel.WARNING}


def test_unknown_ego_speed_is_not_zero():
    tr = approach_track(lambda t: 50 - 20 * t, 0.0)
    unknown = assess([tr], VehicleState(t_ns=0, speed_mps=None), tr.t_ns, CAL)[0]
    stopped = assess([tr], VehicleState(t_ns=0, speed_mps=0.0), tr.t_ns, CAL)[0]
    assert unknown.level == HazardLevel.WARNING      # unknown speed never caps a level
    assert stopped.level == HazardLevel.INFO         # a known standstill does


def test_following_too_close_needs_known_speed():
    tr = approach_track(lambda t: 12.0, 0.0)  # steady 12 m gap
    moving = VehicleState(t_ns=0, speed_mps=25.0)   # 0.48 s headway
    out = assess([tr], moving, tr.t_ns, CAL)[0]
    assert out.kind == "following-too-close" and out.level == HazardLevel.CAUTION
    assert assess([tr], None, tr.t_ns, CAL)[0].level == HazardLevel.INFO


def test_pedestrian_close_in_corridor_and_rider_folded_into_cyclist():
    ped = approach_track(lambda t: 8.0 - 2.0 * t, 0.0, label="person", tid=5)  # 8 m ahead, we close at 2 m/s
    out = assess([ped], None, ped.t_ns, CAL)
    assert out[0].kind == "pedestrian-ahead" and out[0].level == HazardLevel.WARNING
    bike = approach_track(lambda t: 8.0 - 2.0 * t, 0.0, label="bicycle", tid=6)
    rider = Track(track_id=7, label="person", box=(bike.box[0], bike.box[1] - 10, bike.box[2], bike.box[3] - 20),
                  confidence=0.9, t_ns=bike.t_ns, first_t_ns=bike.first_t_ns, hits=30)
    kinds = {h.track_id: h.kind for h in assess([bike, rider], None, bike.t_ns, CAL)}
    assert kinds == {6: "cyclist-ahead"}


def test_stale_and_unknown_tracks_are_ignored():
    tr = approach_track(lambda t: 50 - 20 * t, 0.0)
    assert assess([tr], None, tr.t_ns + int(1e9), CAL) == []
    odd = Track(track_id=9, label="kite", box=(600, 300, 700, 400), confidence=0.9, t_ns=0, first_t_ns=0)
    assert assess([odd], None, 0, CAL) == []


def test_calibration_scales_with_resolution():
    small = CAL.scaled(320, 180)
    assert small.focal_px == pytest.approx(287.5) and small.cx == pytest.approx(160)


def test_table_rejects_inconsistent_thresholds(tmp_path):
    bad = (tmp_path / "h.yaml")
    text = (hazards.config.config_path("hazards.yaml")).read_text().replace("critical_ttc_s: 1.6", "critical_ttc_s: 9.0", 1)
    bad.write_text(text)
    with pytest.raises(ConfigError, match="critical_ttc_s < warning_ttc_s"):
        hazards.load_table(bad)
    (tmp_path / "k.yaml").write_text(text.replace("kind: forward-collision", "kind: nosuch", 1).replace("critical_ttc_s: 9.0", "critical_ttc_s: 1.6"))
    with pytest.raises(ConfigError, match="kind"):
        hazards.load_table(tmp_path / "k.yaml")


def with_lateral_motion(tr: Track, v_mps: float, start_m: float) -> Track:
    """Give a track edges that move sideways at v_mps (metres at each sample's own scale)."""
    H = TABLE.classes[tr.label].height_m
    edges, box = [], tr.box
    for t, h in tr.history:
        lat = start_m + v_mps * (t - tr.history[0][0]) / 1e9
        u = CAL.cx + lat * h / H
        w = h * 1.2
        edges.append((t, u - w / 2, u + w / 2))
        box = (u - w / 2, 400 - h, u + w / 2, 400.0)
    import dataclasses

    return dataclasses.replace(tr, edges=tuple(edges), box=box)


def test_an_oncoming_car_sliding_out_of_the_corridor_is_not_a_collision():
    base = approach_track(lambda t: 20 - 25 * t, 0.0, duration=0.6)   # closing fast, TTC 0.8 s
    passing = with_lateral_motion(base, -3.0, -0.6)                   # drifting left at 3 m/s
    staying = with_lateral_motion(base, 0.0, 0.0)
    young = _table(min_track_s=0.0)  # a 0.6 s track: the configured min_track_s (1.0 s) would withhold its TTC
    out_p = assess([passing], None, passing.t_ns, CAL, table=young)
    out_s = assess([staying], None, staying.t_ns, CAL, table=young)
    assert out_s[0].in_corridor and out_s[0].level == HazardLevel.CRITICAL
    assert not out_p[0].in_corridor and out_p[0].level == HazardLevel.INFO
    cut_in = with_lateral_motion(approach_track(lambda t: 30 - 12 * t, 0.0), 2.0, -4.2)  # from the next lane
    assert assess([cut_in], None, cut_in.t_ns, CAL)[0].in_corridor


def test_a_low_speed_approach_only_reaches_critical():
    slow = approach_track(lambda t: 10 - 3.5 * t, 0.0)   # 3.5 m/s closing at 10 m: TTC 2.9 s
    assert assess([slow], None, slow.t_ns, CAL)[0].level == HazardLevel.INFO
    slower_closer = approach_track(lambda t: 5 - 4 * t, 0.0)  # TTC 1.25 s: critical whatever the speed
    assert assess([slower_closer], None, slower_closer.t_ns, CAL)[0].level == HazardLevel.CRITICAL


def _pass_track(sources, grow=2.0, full_extra=20.0):
    from vehicle_assist.messages import Detection, Detections
    from vehicle_assist.perception.tracker import Tracker

    trk = Tracker()
    out = []
    for i, src in enumerate(sources):
        h = 100 + grow * i + (full_extra if src == "full" else 0)   # the full pass measures the same car taller
        d = Detection(box=(600.0, 500.0 - h, 720.0, 500.0), label="car", class_id=2, confidence=0.9, source=src)
        out = trk.update(Detections(t_ns=i * 40_000_000, frame_seq=i, width=1280, height=720, items=(d,)))
    return out


def test_tracker_restarts_growth_history_once_another_detector_pass_persists():
    out = _pass_track(["roi"] * 6 + ["full"] * 4)   # switch_frames 3: restarts at the 3rd full box
    assert len(out) == 1 and out[0].hits == 10
    assert [round(h) for _, h in out[0].history] == [132, 134, 136, 138]
    assert len(out[0].edges) == len(out[0].history)
    out = _pass_track(["roi"] * 6 + ["full"] * 2)    # two full boxes: not yet a switch
    assert [round(h) for _, h in out[0].history] == [100, 102, 104, 106, 108, 110]


def test_a_single_box_from_the_other_pass_keeps_the_growth_history():
    """dev-braking-45m-04g: one full-pass box among road-ahead boxes restarted the TTC fit from one sample
    (a late warning). It is left out of the history instead."""
    out = _pass_track(["roi"] * 5 + ["full"] + ["roi"] * 4)
    hist = [round(h) for _, h in out[0].history]
    assert hist == [100, 102, 104, 106, 108, 112, 114, 116, 118]
    assert len(out[0].edges) == 9 and out[0].hits == 10


def test_a_jump_in_box_height_is_not_growth():
    steady = approach_track(lambda t: 36.0, 0.0)   # a car holding 36 m...
    hist = list(steady.history)
    jumped = [(t, h * (1.33 if i >= 5 else 1.0)) for i, (t, h) in enumerate(hist)]  # ...whose box snaps 33% taller
    import dataclasses

    tr = dataclasses.replace(steady, history=tuple(jumped))
    est = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc)
    assert est.ttc_s is None  # after the jump the car is steady: no approach


def test_a_person_standing_near_our_path_is_no_alert_until_we_close_on_them():
    # a person 6 m ahead whose size does not change (we stand still; they wait at the kerb or cross
    # in front of us): distance alone is not a warning (configs/hazards.yaml distance_needs_motion)
    still = approach_track(lambda t: 6.0, 0.0, label="person", tid=8)
    out = assess([still], None, still.t_ns, CAL)
    assert out and out[0].level == HazardLevel.INFO and out[0].ttc_s is None
    closing = approach_track(lambda t: 6.0 - 2.5 * t, 0.0, label="person", tid=9)   # closing at >= 2 m/s
    assert assess([closing], None, closing.t_ns, CAL)[0].level >= HazardLevel.WARNING
    creeping = approach_track(lambda t: 6.0 - 1.5 * t, 0.0, label="person", tid=10)  # walking pace: caution (TTC 4 s)
    assert assess([creeping], None, creeping.t_ns, CAL)[0].level == HazardLevel.CAUTION


def test_a_new_track_outside_the_road_ahead_region_survives_a_region_only_frame():
    """A close object seen only by the full-frame pass (every 2nd frame) still becomes a track."""
    from vehicle_assist.messages import Detection, Detections
    from vehicle_assist.perception.tracker import Tracker

    def run(region_on_odd_frames: bool) -> list:
        trk = Tracker()
        seen = []
        for i in range(9):
            full = i % 2 == 1  # ByteTrack confirms anything on its very first frame: start with an empty one
            d = Detection(box=(1000.0 + 3 * i, 300.0, 1270.0, 700.0), label="person", class_id=0, confidence=0.7,
                          source="full")
            region = None if (full or not region_on_odd_frames) else (480, 300, 800, 620)
            seen += trk.update(Detections(t_ns=i * 50_000_000, frame_seq=i, width=1280, height=720,
                                          items=(d,) if full else (), region=region))
        return seen

    assert max(t.hits for t in run(region_on_odd_frames=True)) == 3  # confirmed at its 2nd sighting, then 2 more
    assert not run(region_on_odd_frames=False)  # each new track removed unconfirmed on the next frame


# --- issue 16: TTC that does not trust noise -----------------------------------------------------------

def test_a_small_far_box_with_noisy_growth_is_not_a_forward_collision():
    """The unseen-highway false alert: a car ~82 m ahead whose small box (15 -> 21 px in a second: an
    outline firming up) read as closing at 35 m/s, TTC 2.3 s. Too small for TTC, and a far object needs
    an older track first; the table before issue 16 warned."""
    tr = approach_track(lambda t: 82.0 - 35.6 * t, 0.0, duration=1.0)
    assert 20 < tr.box[3] - tr.box[1] < 25
    old = TABLE.model_copy(update={"ttc": TABLE.ttc.model_copy(update=dict(
        min_t=0.0, max_closing_mps=1e9, far_m=1e9, far_min_track_s=0.0, min_box_frac=0.028))})
    assert assess([tr], None, tr.t_ns, CAL, table=old)[0].level >= HazardLevel.WARNING
    assert all(h.level <= HazardLevel.INFO for h in assess([tr], None, tr.t_ns, CAL))
    rng = np.random.default_rng(7)
    for seed in range(10):  # and a far box wobbling by a pixel never warns
        tr = approach_track(lambda t: 82.0 - 2.0 * t, 0.0, noise_px=rng.uniform(0.5, 1.5), seed=seed, duration=1.0)
        assert all(h.level <= HazardLevel.INFO for h in assess([tr], None, tr.t_ns, CAL))


def test_closing_speed_beyond_physics_is_noise():
    # 40 m ahead closing at 60 m/s (216 km/h): no road user closes on a lead in our lane like that
    tr = approach_track(lambda t: 40.0 - 60.0 * t, 0.0, duration=0.6)
    est = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc)
    assert est.ttc_cv_s is not None
    assert not hazards.plausible(est, 40.0, tr, tr.t_ns, None, TABLE.ttc)
    assert assess([tr], None, tr.t_ns, CAL)[0].level <= HazardLevel.INFO
    # with a known ego speed the bound is that speed (+ margin): 20 m/s closing at 10 m/s ego speed is noise,
    # at 25 m/s ego speed it is a stopped lead
    tr = approach_track(lambda t: 45.0 - 20.0 * t, 0.0, duration=2.0)
    slow = assess([tr], VehicleState(t_ns=tr.t_ns, speed_mps=10.0), tr.t_ns, CAL)[0]
    fast = assess([tr], VehicleState(t_ns=tr.t_ns, speed_mps=25.0), tr.t_ns, CAL)[0]
    assert slow.level <= HazardLevel.INFO and slow.ttc_s is None
    assert fast.level == HazardLevel.WARNING


def test_far_objects_need_a_consistent_track_before_a_warning():
    # 60 m ahead closing at 20 m/s (TTC 3 s): a fresh 1 s track is not enough, a 2 s one is
    fresh = approach_track(lambda t: 60.0 - 20.0 * t, 0.0, duration=1.0)
    old = approach_track(lambda t: 60.0 - 20.0 * t, 0.0, duration=2.0)
    assert assess([fresh], None, fresh.t_ns, CAL)[0].level <= HazardLevel.INFO
    assert assess([old], None, old.t_ns, CAL)[0].level == HazardLevel.WARNING


def test_growth_must_be_significant():
    # a box that does not really grow (sd 1.5 px on 40 px) gives no TTC, however the line happens to tilt
    for seed in range(10):
        tr = approach_track(lambda t: 43.0, 0.0, noise_px=1.5, seed=seed)
        est = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc)
        assert est.ttc_s is None or est.ttc_s > 5.0


def test_riders_folded_by_the_detector_are_cyclists_and_motorcyclists():
    cyc = approach_track(lambda t: 9.0 - 4.0 * t, 0.0, label="cyclist", tid=5, duration=1.0)
    moto = approach_track(lambda t: 9.0 - 4.0 * t, 0.0, label="motorcyclist", tid=6, duration=1.0)
    kinds = {h.track_id: h.kind for h in assess([cyc, moto], None, cyc.t_ns, CAL)}
    assert kinds == {5: "cyclist-ahead", 6: "motorcyclist-ahead"}


# --- issue 16, second round: the no-blind-frame schedule's false alerts on quiet urban stretches ---------------

def _table(**levels_fc):
    """The configured table with forward-collision level overrides (and rigid vehicles, VRU rules) for these tests."""
    classes = {k: v.model_copy(update={"rigid": k in ("car", "truck", "bus")}) for k, v in TABLE.classes.items()}
    levels = {k: v.model_copy(update=levels_fc if k == "forward-collision" else {}) for k, v in TABLE.levels.items()}
    return TABLE.model_copy(update={"classes": classes, "levels": levels})


def test_a_new_track_needs_some_age_before_its_growth_counts():
    """DAD 487 under the no-blind schedule: a car ~15 m ahead coming out from behind an oncoming car, its
    box growing 33 -> 49 px in its first 0.5 s of track (the outline firming up), read as TTC 1.1 s."""
    young = approach_track(lambda t: 15.0 - 14.0 * t, 0.0, duration=0.6)
    old = approach_track(lambda t: 15.0 - 14.0 * t, 0.0, duration=1.2)
    table = _table(min_track_s=1.0)
    assert assess([young], None, young.t_ns, CAL, table=_table(min_track_s=0.0))[0].level == HazardLevel.CRITICAL  # without the rule
    out = assess([young], None, young.t_ns, CAL, table=table)[0]
    assert out.level <= HazardLevel.INFO and out.ttc_s is None
    assert assess([old], None, old.t_ns, CAL, table=table)[0].level == HazardLevel.CRITICAL
    est = estimate_ttc(young.history, young.t_ns, TABLE.ttc)
    assert not hazards.plausible(est, 10.0, young, young.t_ns, None, TABLE.ttc, min_track_s=1.0)
    assert hazards.plausible(est, 10.0, young, young.t_ns, None, TABLE.ttc, min_track_s=0.4)


def test_a_rigid_box_growing_only_in_height_is_not_an_approach():
    """DAD 597: stopped behind a taxi, the box's bottom edge wobbles with the bumper's shadow (height
    202-236 px) while its width stays 285-300 px; the braking fit read TTC 2.5 s."""
    import dataclasses

    tr = approach_track(lambda t: 12.0 - 6.0 * t, 0.0)            # height grows as if closing at 6 m/s
    flat = tuple((t, 500.0, 800.0) for t, _ in tr.history)          # ...but the width does not move
    still_width = dataclasses.replace(tr, edges=flat, box=(500.0, tr.box[1], 800.0, tr.box[3]))
    table = _table()
    assert assess([tr], None, tr.t_ns, CAL, table=table)[0].level >= HazardLevel.WARNING
    out = assess([still_width], None, still_width.t_ns, CAL, table=table)[0]
    assert out.ttc_s is None and out.level <= HazardLevel.INFO
    # pure: the height's estimate survives only with a width that grows significantly too
    h = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc)
    assert hazards.both_dimensions(h, estimate_ttc(hazards.widths(tr), tr.t_ns, TABLE.ttc)) == h
    assert hazards.both_dimensions(h, estimate_ttc(hazards.widths(still_width), tr.t_ns, TABLE.ttc)).ttc_s is None
    # people are not rigid: a stride changes the width, so a person's height alone counts
    person = approach_track(lambda t: 12.0 - 6.0 * t, 0.0, label="person")
    person = dataclasses.replace(person, edges=tuple((t, 600.0, 660.0) for t, _ in person.history))
    assert assess([person], None, person.t_ns, CAL, table=table)[0].ttc_s is not None


def test_a_person_crossing_in_front_of_a_stopped_car_is_not_closed_on():
    """DAD 617: we wait at a crossing; a cyclist ~3-8 m ahead crosses, its box creeping bigger at about
    1 m/s of 'closing'. Walking-pace growth is their own motion, not us closing on them: distance levels
    need closing at >= 2 m/s (configs/hazards.yaml)."""
    creeping = approach_track(lambda t: 7.6 - 1.2 * t, 0.0, label="person", tid=3)
    closing = approach_track(lambda t: 7.6 - 5.0 * t, 0.0, label="person", tid=4)
    vru = {k: v.model_copy(update={"distance_min_closing_mps": 0.0}) for k, v in TABLE.levels.items()}
    no_rule = TABLE.model_copy(update={"levels": vru})
    assert assess([creeping], None, creeping.t_ns, CAL, table=no_rule)[0].level == HazardLevel.WARNING
    assert assess([creeping], None, creeping.t_ns, CAL)[0].level < HazardLevel.WARNING
    assert assess([closing], None, closing.t_ns, CAL)[0].level >= HazardLevel.WARNING
    est = estimate_ttc(creeping.history, creeping.t_ns, TABLE.ttc)
    assert hazards.approaching(est, 30, 4, 7.6) and not hazards.approaching(est, 30, 4, 7.6, min_closing_mps=2.0)
    assert not hazards.approaching(est, 2, 4, 7.6)  # an unconfirmed track never counts


def test_a_rider_in_our_path_that_we_would_reach_within_a_second_is_a_warning():
    """DAD 487: a two-up scooter cuts in ~2 m ahead and rides with us (its box barely grows: TTC 7-11 s).
    In our path now and reached within 1 s at our speed: a warning. Our speed from telemetry; without
    it, the image's ego motion. Stopped, the same scooter is no warning (DAD 617's crossing cyclist)."""
    from vehicle_assist.messages import ImageMotion

    scooter = approach_track(lambda t: 2.4 - 0.25 * t, 0.0, label="motorcyclist", tid=5)
    t = scooter.t_ns
    moving, stopped = ImageMotion(t, 4.5, True, 60), ImageMotion(t, 0.2, False, 60)
    assert assess([scooter], None, t, CAL)[0].level < HazardLevel.WARNING            # speed unknown
    assert assess([scooter], None, t, CAL, motion=stopped)[0].level < HazardLevel.WARNING
    hz = assess([scooter], None, t, CAL, motion=moving)[0]
    assert hz.level == HazardLevel.WARNING and hz.kind == "motorcyclist-ahead" and hz.in_corridor
    assert assess([scooter], VehicleState(t, speed_mps=4.5), t, CAL)[0].level == HazardLevel.WARNING
    # telemetry wins over the image: stopped by telemetry, moving by the image -> no warning
    assert assess([scooter], VehicleState(t, speed_mps=0.0), t, CAL, motion=moving)[0].level < HazardLevel.WARNING
    # beside our path now (it may drift in later): not by headway
    beside = approach_track(lambda t: 2.4 - 0.25 * t, 0.0, label="motorcyclist", tid=6, lateral_m=2.6)
    assert assess([beside], None, t, CAL, motion=moving)[0].level < HazardLevel.WARNING
    # far enough at our speed (8 m at 4.5 m/s: 1.8 s): not by headway
    ahead = approach_track(lambda t: 8.0 - 0.25 * t, 0.0, label="cyclist", tid=7)
    assert assess([ahead], None, t, CAL, motion=moving)[0].level < HazardLevel.WARNING
    assert hazards.ego_speed_of(None, moving) == 4.5 and hazards.ego_speed_of(3.0, moving) == 3.0
    assert hazards.ego_speed_of(None, None) is None and hazards.ego_speed_of(None, ImageMotion(t)) is None


def test_the_braking_fit_can_be_kept_to_rigid_outlines():
    # a person's gait makes 1/h curve; with accel_rigid_only their TTC is the constant-speed one
    tr = approach_track(lambda t: 20.0 - 4.0 * t - 2.0 * t * t, 0.0, label="person", duration=1.5)
    with_accel = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc, 20.0)
    without = estimate_ttc(tr.history, tr.t_ns, TABLE.ttc, 20.0, accel=False)
    assert with_accel.ttc_s < without.ttc_s == pytest.approx(without.ttc_cv_s)
    table = TABLE.model_copy(update={"ttc": TABLE.ttc.model_copy(update={"accel_rigid_only": True})})
    assert assess([tr], None, tr.t_ns, CAL, table=table)[0].ttc_s == pytest.approx(without.ttc_s, abs=1e-3)
