"""Heading from the yaw rate (vehicle_assist/route/heading.py), its use by the matcher in a GNSS gap,
and the synthetic drives' gyro."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from vehicle_assist.route.heading import GyroHeading, GyroSettings
from vehicle_assist.route.map import bearing_diff_deg, load_map, wrap180
from vehicle_assist.route.match import Fix, Matcher, MatchSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_route import _t_junction  # noqa: E402


def _drive_straight(g: GyroHeading, t0: float, secs: float, yaw: float, speed: float, odo0: float) -> tuple[float, float]:
    t, odo = t0, odo0
    for _ in range(int(round(secs * 10))):
        t += 0.1
        odo += speed * 0.1
        g.update(t, yaw, speed, odo)
    return t, odo


def test_integrates_the_yaw_rate_and_has_no_heading_before_an_anchor():
    g = GyroHeading()
    g.update(0.0, 9.0, 5.0, 0.0)
    _drive_straight(g, 0.0, 10.0, 9.0, 5.0, 0.0)  # 9 deg/s for 10 s: a right turn through 90 deg
    assert g.rel == pytest.approx(90.0, abs=1e-6)
    assert g.course() is None  # only the change is known until an anchor


def _anchored(g: GyroHeading, t: float, odo: float, road: float, course: float, yaw: float = 0.0,
              speed: float = 10.0) -> tuple[float, float, list[bool]]:
    """Drive straight for 10 s offering a measurement (road bearing, fitted course) every 2 s."""
    got = []
    for _ in range(5):
        t, odo = _drive_straight(g, t, 2.0, yaw, speed, odo)
        got.append(g.anchor_to(road, course))
    return t, odo, got


def test_anchor_needs_straight_driving_an_agreeing_course_and_a_consensus():
    g = GyroHeading()
    g.update(0.0, 0.0, 10.0, 0.0)
    t, odo = _drive_straight(g, 0.0, 1.0, 0.0, 10.0, 0.0)  # 10 m: not yet straight for 30 m
    assert not g.anchor_to(90.0, 92.0)
    t, odo = _drive_straight(g, t, 3.0, 0.0, 10.0, odo)  # 40 m straight
    assert not g.anchor_to(90.0, 150.0)  # the fixes' course disagrees with the road: no measurement
    assert not g.anchor_to(90.0, None)
    assert not g.anchor_to(90.0, 95.0)  # one measurement is no consensus
    t, odo, got = _anchored(g, t, odo, 90.0, 95.0)
    assert got[-1] and g.course() == pytest.approx(90.0)
    t, odo = _drive_straight(g, t, 5.0, -18.0, 5.0, odo)  # a left turn of 90 deg
    assert bearing_diff_deg(g.course(), 0.0) < 1.0  # (trapezoid rule: half of the first step)
    assert not g.anchor_to(0.0, 0.0)  # just turned: not straight for 30 m
    # the heading 8 m (turn_look_m) after a node passed when the turn began, and before the trail
    assert g.course_after(odo - 25.0) == pytest.approx(90.0 - 18.0 * 8.0 / 5.0, abs=2.0)
    assert g.course_after(-100.0) is None


def test_a_wrong_measurement_does_not_move_the_anchor_but_a_consensus_does():
    """The match on the reverse edge and a flipped fitted course agree for a moment: ignored. When
    measurements keep agreeing on another anchor for seconds, it moves there."""
    g = GyroHeading()
    g.update(0.0, 0.0, 10.0, 0.0)
    t, odo, _ = _anchored(g, 0.0, 0.0, 0.0, 5.0)
    assert g.course() == pytest.approx(0.0)
    t, odo = _drive_straight(g, t, 2.0, 0.0, 10.0, odo)
    assert not g.anchor_to(180.0, 175.0)  # one reversed measurement
    assert g.course() == pytest.approx(0.0)
    t, odo, got = _anchored(g, t, odo, 180.0, 175.0)  # 10 s of them
    assert got[-1] and g.course() == pytest.approx(180.0)


def test_consensus_is_a_circular_mean_of_agreeing_votes():
    from vehicle_assist.route.heading import consensus

    assert consensus([(0.0, 170.0), (3.0, -170.0), (6.0, 180.0)], 3, 5.0, 30.0) == pytest.approx(-180.0)
    assert consensus([(0.0, 10.0), (1.0, 12.0), (2.0, 11.0)], 3, 5.0, 30.0) is None  # too short a span
    assert consensus([(0.0, 10.0), (3.0, 100.0), (6.0, 12.0)], 3, 5.0, 30.0) is None  # two agree


def test_standing_readings_estimate_the_bias_and_a_gap_drops_the_anchor():
    g = GyroHeading()
    g.update(0.0, 0.5, 10.0, 0.0)
    t, odo, got = _anchored(g, 0.0, 0.0, 180.0, 180.0, yaw=0.5)
    assert got[-1]
    t, _ = _drive_straight(g, t, 30.0, 0.5, 0.0, odo)  # standing 30 s: the gyro reads its bias of 0.5 deg/s
    assert g.bias == pytest.approx(0.5, abs=0.01)
    before = g.course()
    _drive_straight(g, t, 30.0, 0.5, 0.0, odo)
    assert bearing_diff_deg(g.course(), before) < 0.5  # the bias no longer turns the heading
    g.update(t + 40.0, 0.0, 10.0, odo)  # no reading for 10 s: the heading is lost
    assert g.course() is None and g.bias == pytest.approx(0.5, abs=0.01)


def test_wrap180():
    assert wrap180(190.0) == pytest.approx(-170.0)
    assert wrap180(-190.0) == pytest.approx(170.0)
    assert wrap180(0.0) == 0.0


def test_gyro_carries_the_match_round_a_turn_in_a_gnss_gap(tmp_path):
    """A made-up T junction: the car drives east along the street (fixes), the GNSS drops out 60 m
    before the side road and the car turns north into it. Without a yaw rate the match is carried
    straight on along the street (the likeliest continuation); with one, the gyro's heading past the
    node takes the side road."""
    rmap = load_map(_t_junction(tmp_path / "t.osm"), use_cache=False)
    origin = rmap.a["node_xy"].min(axis=0)

    def run(with_yaw: bool) -> list[int]:
        m = Matcher(rmap, MatchSettings(hold_speed_mps=0.3))
        ways, t, xy = [], 0.0, np.array([0.0, 0.0])
        for i in range(300):  # 10 m/s: east to x = 140 (fixes), on to x = 200 in a gap, then north
            t = i * 0.1
            if xy[0] < 200.0 and xy[1] == 0.0:
                xy = xy + [1.0, 0.0]
                yaw = 0.0
            else:
                xy = np.array([200.0, xy[1] + 1.0])
                yaw = -100.0 if xy[1] <= 9.0 else 0.0  # a left turn of 90 deg over 9 m (anticlockwise)
            gap = xy[0] > 140.0
            lat, lon = rmap.unproject(origin + xy)
            got = m.update(Fix(t, None if gap else float(lat), None if gap else float(lon), 10.0, None,
                               yaw if with_yaw else None))
            if gap and xy[1] >= 30.0 and got is not None:
                ways.append(int(rmap.a["way_id"][rmap.way_of_edge(got.edge)]))
        return ways

    with_gyro, without = run(True), run(False)
    assert with_gyro and set(with_gyro) == {2}, with_gyro
    assert without and set(without) == {1}, without


def test_synthetic_gyro_integrates_to_the_path_heading():
    """The synthetic drives' yaw rate, integrated, follows the drive's heading (GNSS course) within its
    bias drift, over a drive along real roads; standing reads bias + noise only."""
    from vehicle_assist import fetch
    from vehicle_assist.route.limits import way_limits
    from vehicle_assist.route.map import load_tables

    path = fetch.data_path("maps", "leeds_city_centre.osm")
    if not path.exists():
        pytest.skip("maps not fetched")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from route_drives import drive, random_path

    rmap = load_map(path)
    limits = way_limits(rmap, load_tables())
    rng = np.random.default_rng(5)
    d = drive(rmap, limits, random_path(rmap, rng, 1500.0), rng, "gyro-check", stops=True)
    ok = np.isfinite(d.heading)
    heading = np.degrees(np.unwrap(np.radians(d.heading[ok])))
    integ = np.cumsum(d.yaw_rate)[ok] * 0.1
    drift = heading - integ - (heading[0] - integ[0])
    span = float(d.t[ok][-1] - d.t[ok][0])
    assert np.abs(heading[-1] - heading[0]) > 90.0  # the drive turned
    assert np.percentile(np.abs(drift), 50) < 3.0 * 0.5 * span / 2 + 20.0  # within a 3-sigma bias drift
    standing = d.speed < 0.01
    assert standing.any() and abs(float(np.median(d.yaw_rate[standing]))) < 2.0
    assert math.isclose(float(np.std(d.yaw_rate[standing])), 0.3, rel_tol=0.3)


def test_a_bias_is_learnt_from_the_anchors_drift_and_tolerated_as_straight():
    """Moving all the time (no standstill to read the bias at), a gyro biased by 0.8 deg/s: the road
    still counts as straight (a steady drift), and the anchor's drift between measurements teaches
    the bias."""
    g = GyroHeading()
    g.update(0.0, 0.8, 10.0, 0.0)
    t, odo = 0.0, 0.0
    for _ in range(12):
        t, odo, got = _anchored(g, t, odo, 90.0, 92.0, yaw=0.8)
    assert got[-1]
    assert g.bias == pytest.approx(0.8, abs=0.2)
    assert bearing_diff_deg(g.course(), 90.0) < 3.0


def _zigzag(sign: float) -> GyroHeading:
    """North, a right turn east, a left turn north, ... (90 deg each over 5 s at 5 m/s); the course
    fitted to the fixes offered every 0.5 s (the direction driven); the gyro's sign times ``sign``."""
    g = GyroHeading()
    t, odo, course = 0.0, 0.0, 0.0
    g.update(t, 0.0, 10.0, odo)
    for k in range(8):
        turn = 90.0 if k % 2 == 0 else -90.0
        for phase, (secs, yaw) in enumerate(((6.0, 0.0), (5.0, turn / 5.0))):
            for _ in range(int(secs * 10)):
                t, odo = t + 0.1, odo + 0.5
                g.update(t, sign * yaw, 5.0, odo)
                course = (course + yaw * 0.1) % 360.0
                if round(t * 10) % 5 == 0:
                    g.check_sign(t, course)
    return g


def test_a_mirrored_yaw_rate_is_found_and_its_heading_withheld():
    """An anticlockwise-positive yaw rate (ISO 8855) fed as clockwise-positive: after three turns the
    heading is withheld; the right sign is never flagged."""
    right, mirrored = _zigzag(1.0), _zigzag(-1.0)
    assert not right.mirrored and right.sign_votes[1] == 0 and right.sign_votes[0] >= 3
    assert mirrored.mirrored and mirrored.course() is None and mirrored.course_after(0.0) is None


def test_route_match_warns_about_a_mirrored_yaw_rate(tmp_path):
    """`route match` on a drive along real Leeds roads with the gyro's yaw rate: no warning with the
    right sign; negated (anticlockwise-positive), a warning that says so, on stderr."""
    from typer.testing import CliRunner

    from vehicle_assist import cli, fetch
    from vehicle_assist.route.limits import way_limits
    from vehicle_assist.route.map import load_tables

    path = fetch.data_path("maps", "leeds_city_centre.osm")
    if not path.exists():
        pytest.skip("maps not fetched")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from route_drives import drive, random_path

    rmap = load_map(path)
    rng = np.random.default_rng(0)
    d = drive(rmap, way_limits(rmap, load_tables()), random_path(rmap, rng, 2500.0), rng, "sign-check",
              sigma_m=float(rng.uniform(8.0, 15.0)), stops=True)
    right = tmp_path / "right.csv"
    d.write_csv(right, yaw=True)
    d.yaw_rate = -d.yaw_rate
    mirrored = tmp_path / "mirrored.csv"
    d.write_csv(mirrored, yaw=True)
    runner = CliRunner()
    ok = runner.invoke(cli.app, ["route", "match", "--map", str(path), "--track", str(right), "--json"])
    bad = runner.invoke(cli.app, ["route", "match", "--map", str(path), "--track", str(mirrored), "--json"])
    assert ok.exit_code == 0 and bad.exit_code == 0
    assert "yaw rate" not in ok.stderr
    assert "warning: the yaw rate turned the other way" in bad.stderr and "anticlockwise" in bad.stderr


def test_a_glitched_reading_counts_as_none():
    """NaN, infinite or impossible (beyond a full turn a second) readings do not reach the heading."""
    g = GyroHeading()
    g.update(0.0, 0.0, 10.0, 0.0)
    t, odo, got = _anchored(g, 0.0, 0.0, 90.0, 90.0)
    assert got[-1]
    for bad in (float("nan"), float("inf"), 1e9):
        t, odo = t + 0.1, odo + 1.0
        g.update(t, bad, 10.0, odo)
        t, odo = _drive_straight(g, t, 0.5, 0.0, 10.0, odo)
    assert g.course() == pytest.approx(90.0)


def test_a_1hz_yaw_rate_a_little_late_keeps_its_anchor():
    """A 1 Hz source whose readings come 1.05 s apart (or one is lost) keeps the heading; a
    longer silence drops it."""
    g = GyroHeading()
    g.update(0.0, 0.0, 10.0, 0.0)
    t, odo, got = _anchored(g, 0.0, 0.0, 45.0, 45.0)
    assert got[-1]
    for k in range(1, 4):
        g.update(t + 1.05 * k, 0.0, 10.0, odo + 10.5 * k)
    g.update(t + 1.05 * 3 + 2.1, 0.0, 10.0, odo + 60.0)  # one reading lost
    assert g.course() == pytest.approx(45.0)
    g.update(t + 1.05 * 3 + 2.1 + 3.0, 0.0, 10.0, odo + 90.0)
    assert g.course() is None


def test_standing_keeps_the_straight_history_bounded():
    """At 100 Hz a long stop adds nothing to the straight-driving history but its latest reading."""
    g = GyroHeading()
    g.update(0.0, 0.0, 10.0, 0.0)
    t, odo = _drive_straight(g, 0.0, 3.0, 0.0, 10.0, 0.0)
    n = len(g._hist)
    for i in range(1, 6001):  # 60 s standing
        g.update(t + i / 100, 0.0, 0.0, odo)
    assert len(g._hist) <= n + 2


def test_an_anchored_gyro_carries_the_match_through_a_long_gap(tmp_path):
    """Map-aided dead reckoning: past ``max_gap_s`` (30 s) without a position the match is dropped,
    unless the gyro's heading is anchored; then it is carried until ``gyro_max_gap_s``."""
    rmap = load_map(_t_junction(tmp_path / "t.osm"), use_cache=False)
    origin = rmap.a["node_xy"].min(axis=0)

    def run(with_yaw: bool) -> tuple[bool, list[tuple[float, int | None]]]:
        m = Matcher(rmap, MatchSettings(hold_speed_mps=0.3, gyro_max_gap_s=120.0))
        out, x, anchored = [], 0.0, False
        for i in range(800):  # 12 s east at 10 m/s with fixes, then 68 s at 2 m/s with none
            t = i * 0.1
            fixes = t < 12.0
            x += 1.0 if fixes else 0.2
            lat, lon = rmap.unproject(origin + np.array([x, 0.0]))
            got = m.update(Fix(t, float(lat) if fixes else None, float(lon) if fixes else None,
                               10.0 if fixes else 2.0, None, 0.0 if with_yaw else None))
            anchored = anchored or (fixes and m._gyro.course() is not None)
            if not fixes and i % 50 == 0:
                out.append((t - 12.0, None if got is None else int(rmap.a["way_id"][rmap.way_of_edge(got.edge)])))
        return anchored, out

    anchored, with_gyro = run(True)
    assert anchored
    assert all(way == 1 for _, way in with_gyro), with_gyro  # 68 s into the gap: still on the street
    _, without = run(False)
    assert all(way == 1 for gap, way in without if gap < 29.0)
    assert all(way is None for gap, way in without if gap > 31.0), without


def test_a_few_degrees_of_anchor_noise_teach_no_large_bias():
    """Anchor measurements a few degrees off for a while (the matched edge's bearing on a gentle curve,
    a 1 Hz fitted course) are not a drift: the bias is learnt over at least ``bias_min_s``, so 6 deg
    between measurements 2.4 s apart does not read as a bias of degrees per second (which then turns
    the heading too fast to ever count as straight again)."""
    g = GyroHeading()
    g.update(0.0, 0.0, 10.0, 0.0)
    t, odo, got = _anchored(g, 0.0, 0.0, 90.0, 90.0)
    assert got[-1]
    worst = 0.0
    for k in range(20):  # 48 s straight on, the gyro without bias; three measurements 6 deg off
        t, odo = _drive_straight(g, t, 2.4, 0.0, 10.0, odo)
        g.anchor_to(96.0 if 5 <= k <= 7 else 90.0, 90.0)
        worst = max(worst, abs(g.bias))
    assert worst < 0.5, worst
    assert bearing_diff_deg(g.course(), 90.0) < 6.0


def test_a_1hz_receiver_still_gets_a_fitted_course(tmp_path):
    """The course fitted to the fixes needs five of them: a 1 Hz receiver has three in the 3 s window,
    so the window keeps the last five (here 4 s); without a course the gyro is never anchored."""
    rmap = load_map(_t_junction(tmp_path / "t.osm"), use_cache=False)
    origin = rmap.a["node_xy"].min(axis=0)
    m = Matcher(rmap, MatchSettings())
    for i in range(8):  # 1 Hz fixes, 10 m/s east along the street
        lat, lon = rmap.unproject(origin + np.array([10.0 * i, 0.0]))
        m.update(Fix(float(i), float(lat), float(lon), 10.0))
    assert m.course_deg() == pytest.approx(90.0, abs=1.0)
    lat, lon = rmap.unproject(origin + np.array([200.0, 0.0]))
    m.update(Fix(20.0, float(lat), float(lon), 10.0))  # 13 s later (a gap): the old fixes are dropped
    assert m.course_deg() is None
