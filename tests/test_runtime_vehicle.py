"""Vehicle state sources: the real comma2k19 arrays, telemetry files, live sources that are absent
(unknown, never 0), a gpsd speaking its real JSON protocol on localhost, and merging."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from vehicle_assist import vehicle
from vehicle_assist.vehicle import VehicleError, interp_at, open_vehicle_source

S = 1_000_000_000
UNKNOWN = ("speed_mps", "heading_deg", "lat", "lon", "road_type", "weather")


@pytest.fixture(scope="module")
def seg(request):
    from tests.conftest import data_file

    return data_file("telemetry", "comma2k19_example1_seg40/processed_log/CAN/speed/value").parents[3]


def test_comma2k19_real_arrays(seg):
    src = open_vehicle_source(str(seg))
    st = src.status()
    assert st.available and "CAN" in st.detail and "live_gnss_ublox" in st.detail
    can_t = np.load(seg / "processed_log/CAN/speed/t")
    can_v = np.load(seg / "processed_log/CAN/speed/value")[:, 0]
    t0 = np.load(seg / "global_pose/frame_times")[0]
    for rel in (0.0, 10.0, 33.3, 59.0):
        s = src.state_at(int(rel * S))
        assert s.speed_mps == pytest.approx(np.interp(t0 + rel, can_t, can_v), abs=1e-6)
        assert 37.70 < s.lat < 37.74 and -122.48 < s.lon < -122.46  # Daly City / SF, CA
        assert 0.0 <= s.heading_deg < 360.0
        assert s.road_type is None and s.weather is None  # not in comma2k19: unknown, not ""
    # the car drives north (bearing ~2 deg) and latitude grows over the minute
    assert src.state_at(50 * S).lat > src.state_at(5 * S).lat
    assert all(getattr(src.state_at(-2 * S), f) is None for f in UNKNOWN)
    assert all(getattr(src.state_at(70 * S), f) is None for f in UNKNOWN)


def test_start_offset_maps_file_time_to_run_time(seg):
    a = open_vehicle_source(str(seg))
    b = open_vehicle_source(str(seg), start_ns=5 * S)
    assert b.state_at(15 * S).speed_mps == a.state_at(10 * S).speed_mps


def test_interp_is_pure_and_knows_when_it_does_not_know():
    ts = np.array([0, 1 * S, 2 * S, 10 * S], dtype=np.int64)
    vs = np.array([350.0, 10.0, 20.0, 40.0])
    assert interp_at(S // 2, ts, vs, 2 * S, S // 2, angle=True) == pytest.approx(0.0, abs=1e-9)
    assert interp_at(S // 2, ts, np.array([0.0, 10.0, 20.0, 40.0]), 2 * S, S // 2) == pytest.approx(5.0)
    assert interp_at(6 * S, ts, vs, 2 * S, S // 2) is None  # 8 s gap: unknown in the middle
    assert interp_at(int(2.3 * S), ts, vs, 2 * S, S // 2) == 20.0  # held near the gap's start
    assert interp_at(int(10.4 * S), ts, vs, 2 * S, S // 2) == 40.0
    assert interp_at(11 * S, ts, vs, 2 * S, S // 2) is None
    assert interp_at(0, np.array([], dtype=np.int64), np.array([]), S, S) is None


def test_csv_telemetry_with_gaps_units_and_categories(tmp_path):
    p = tmp_path / "drive.csv"
    p.write_text("t,speed_kmh,heading,lat,lon,road_type,weather\n"
                 "100.0,36,90,51.5,-0.12,urban,rain\n"
                 "101.0,,,51.5001,-0.12,,\n"
                 "102.0,72,100,51.5002,-0.12,motorway,\n")
    src = open_vehicle_source(str(p))
    s = src.state_at(int(0.5 * S))
    assert s.speed_mps == pytest.approx(12.5)  # 10 -> 20 m/s over 2 s (empty cell skipped), a quarter in
    assert s.heading_deg == pytest.approx(92.5)
    assert s.road_type == "urban" and s.weather == "rain"
    s2 = src.state_at(int(2.1 * S))
    assert s2.road_type == "motorway" and s2.weather is None  # empty cell: unknown
    assert src.state_at(5 * S).speed_mps is None


def test_jsonl_telemetry_and_bad_files(tmp_path):
    p = tmp_path / "drive.jsonl"
    p.write_text(json.dumps({"t": 0, "speed": 5.0}) + "\n" + json.dumps({"t": 1, "speed": 7.0, "lat": None}) + "\n")
    s = open_vehicle_source(str(p)).state_at(S // 2)
    assert s.speed_mps == pytest.approx(6.0) and s.lat is None
    bad = tmp_path / "bad.csv"
    bad.write_text("t,speed\n0,1\n1,fast\n")
    with pytest.raises(VehicleError, match=r"bad.csv:3: speed='fast' is not a number"):
        open_vehicle_source(str(bad))
    back = tmp_path / "back.csv"
    back.write_text("t,speed\n5,1\n4,1\n")
    with pytest.raises(VehicleError, match="goes backwards"):
        open_vehicle_source(str(back))
    with pytest.raises(VehicleError, match="telemetry-not-found"):
        open_vehicle_source(str(tmp_path / "absent.csv"))
    with pytest.raises(VehicleError, match="not a comma2k19 segment"):
        open_vehicle_source(str(tmp_path))


def test_no_source_is_unknown_not_zero():
    src = open_vehicle_source("none")
    s = src.state_at(123)
    assert all(getattr(s, f) is None for f in UNKNOWN) and not src.status().available


def _wait_status(src, timeout=10.0):
    deadline = time.monotonic() + timeout
    while src.status().detail == "starting" and time.monotonic() < deadline:
        time.sleep(0.02)
    return src.status()


def test_obd_absent_reports_unknown_cleanly():
    src = open_vehicle_source("obd", now_ns=time.monotonic_ns)
    try:
        st = _wait_status(src)
        assert not st.available and "speed unknown" in st.detail
        assert src.state_at(time.monotonic_ns()).speed_mps is None
    finally:
        src.close()


def test_gpsd_absent_reports_unknown_cleanly():
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = open_vehicle_source(f"gpsd:127.0.0.1:{port}", now_ns=time.monotonic_ns)
    try:
        st = _wait_status(src)
        assert not st.available and "no gpsd" in st.detail
        assert src.state_at(time.monotonic_ns()).lat is None
    finally:
        src.close()


# Reports as gpsd 3.x sends them (https://gpsd.io/gpsd_json.html): VERSION, DEVICES, a no-fix TPV, a 3D fix.
GPSD_LINES = [
    {"class": "VERSION", "release": "3.22", "rev": "3.22", "proto_major": 3, "proto_minor": 14},
    {"class": "DEVICES", "devices": [{"class": "DEVICE", "path": "/dev/ttyACM0", "driver": "u-blox"}]},
    {"class": "TPV", "device": "/dev/ttyACM0", "mode": 1},
    {"class": "TPV", "device": "/dev/ttyACM0", "mode": 3, "time": "2026-11-28T13:00:00.000Z",
     "lat": 51.501, "lon": -0.142, "alt": 20.1, "track": 271.5, "speed": 13.4},
]


def test_gpsd_protocol_on_localhost():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    got_watch = threading.Event()

    def serve():
        conn, _ = server.accept()
        with conn:
            if b"?WATCH" in conn.recv(1024):
                got_watch.set()
            for rec in GPSD_LINES:
                conn.sendall((json.dumps(rec) + "\r\n").encode())
            time.sleep(1.0)

    threading.Thread(target=serve, daemon=True).start()
    src = open_vehicle_source(f"gpsd:127.0.0.1:{port}", now_ns=time.monotonic_ns)
    try:
        deadline = time.monotonic() + 5
        while src.state_at(time.monotonic_ns()).lat is None and time.monotonic() < deadline:
            time.sleep(0.02)
        s = src.state_at(time.monotonic_ns())
        assert got_watch.is_set() and src.status().available
        assert (s.lat, s.lon, s.speed_mps, s.heading_deg) == (51.501, -0.142, 13.4, 271.5)
        assert src.state_at(time.monotonic_ns() + 10 * S).lat is None  # an old fix is no fix
    finally:
        src.close()
        server.close()


def test_parse_gpsd_ignores_no_fix_and_garbage():
    assert vehicle.parse_gpsd(json.dumps(GPSD_LINES[2])) is None
    assert vehicle.parse_gpsd(b"not json") is None
    assert vehicle.parse_gpsd(json.dumps(GPSD_LINES[3]))["heading_deg"] == 271.5


def test_merged_sources_fill_fields_from_each(seg, tmp_path):
    p = tmp_path / "road.csv"
    p.write_text("t,road_type,weather,speed\n0,residential,dry,99\n60,residential,dry,99\n")
    src = open_vehicle_source(f"{seg}+{p}")
    s = src.state_at(10 * S)
    assert s.speed_mps < 30 and s.road_type == "residential" and s.weather == "dry"  # comma2k19 speed wins
    assert src.status().available and src.name.startswith("comma2k19:")


# --- yaw rate ------------------------------------------------------------------------------------


def _compass_heading_deg(orientations, positions):
    """Compass heading (deg, unwrapped) of the car's forward axis per frame: comma2k19's
    ``frame_orientations`` are device->ECEF quaternions (w, x, y, z), the device's x axis forward."""
    w, x, y, z = np.asarray(orientations, dtype=np.float64).T
    fwd = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], axis=1)  # R[:, 0]
    px, py, pz = np.asarray(positions, dtype=np.float64).mean(axis=0)
    lon, lat = np.arctan2(py, px), np.arctan2(pz, np.hypot(px, py))  # local east/north (60 s: one place)
    east = np.array([-np.sin(lon), np.cos(lon), 0.0])
    north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
    return np.degrees(np.unwrap(np.arctan2(fwd @ east, fwd @ north)))


def test_comma2k19_yaw_rate_is_the_heading_rate_of_the_recorded_pose(seg):
    """The gyro's yaw rate (about gravity, clockwise positive) is the rate of the compass heading of
    the recorded pose (the 20 fps global_pose fit, independent of the loader): same sign, same size."""
    src = open_vehicle_source(str(seg))
    assert "gyro 6256 samples" in src.status().detail
    frames = np.load(seg / "global_pose/frame_times")
    heading = _compass_heading_deg(np.load(seg / "global_pose/frame_orientations"),
                                   np.load(seg / "global_pose/frame_positions"))
    rate = np.gradient(heading, frames)
    yaw = np.array([src.state_at(int(round((t - frames[0]) * S))).yaw_rate_dps for t in frames], dtype=float)
    k = np.ones(11) / 11  # ~0.5 s moving average of both
    rate_s, yaw_s = np.convolve(rate, k, "same")[10:-10], np.convolve(yaw, k, "same")[10:-10]
    corr = np.corrcoef(rate_s, yaw_s)[0, 1]
    slope = np.polyfit(rate_s, yaw_s, 1)[0]
    assert corr > 0.9, corr  # measured 0.96; with the sign flipped it would be -0.96
    assert 0.8 < slope < 1.25, slope  # measured 0.98: deg/s, not rad/s
    assert np.ptp(rate_s) > 1.0  # the highway's gentle curves: about -0.5 .. +1.1 deg/s


def test_yaw_rate_vertical_comes_from_gravity():
    """Up is the mean specific force, whatever way the sensor is mounted; a right turn (clockwise
    seen from above) is positive in deg/s."""
    rng = np.random.default_rng(0)
    turn_dps = 6.0  # clockwise
    tilted = np.array([0.1, -0.2, 1.0]) / np.linalg.norm([0.1, -0.2, 1.0])
    # comma's device frame (x forward, y right, z down): up is -z, a right turn is +z (right-hand rule)
    # a frame with z up: a right turn is -z; and a tilted mounting
    for up in (np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, 1.0]), tilted):
        n = 200
        accel = 9.81 * up + rng.normal(0.0, 1.0, (n, 3))  # braking, bumps: zero on average
        accel -= accel.mean(axis=0) - 9.81 * up
        gyro = np.tile(-np.radians(turn_dps) * up, (n, 1))
        gyro[:, :] += np.cross(up, [1.0, 0.0, 0.0]) * 0.05  # pitch/roll about a horizontal axis: no yaw
        assert vehicle.yaw_rate_dps(gyro, accel) == pytest.approx(np.full(n, turn_dps), abs=1e-9)
        assert vehicle.yaw_rate_dps(-gyro, accel) == pytest.approx(np.full(n, -turn_dps), abs=1e-9)
    right_turn_comma = np.array([[0.0, 0.0, np.radians(10.0)]])
    assert vehicle.yaw_rate_dps(right_turn_comma, np.array([[0.0, 0.0, -9.8]]))[0] == pytest.approx(10.0)


def test_telemetry_yaw_rate_column(tmp_path):
    p = tmp_path / "drive.csv"
    p.write_text("t,speed,yaw_rate\n0,10,-3\n1,10,\n2,10,5\n")
    src = open_vehicle_source(str(p))
    assert src.state_at(0).yaw_rate_dps == -3.0  # a number, not an angle: no wrap to 357
    assert src.state_at(S).yaw_rate_dps == pytest.approx(1.0)  # linear across the empty cell
    assert src.state_at(10 * S).yaw_rate_dps is None
    j = tmp_path / "drive.jsonl"
    j.write_text(json.dumps({"t": 0, "yaw_rate_dps": 2.5}) + "\n" + json.dumps({"t": 1, "lat": 1.0}) + "\n")
    src = open_vehicle_source(str(j))
    assert src.state_at(S // 4).yaw_rate_dps == 2.5 and src.state_at(S).yaw_rate_dps is None  # held 0.5 s
    no_yaw = tmp_path / "old.csv"
    no_yaw.write_text("t,speed\n0,1\n1,2\n")
    assert open_vehicle_source(str(no_yaw)).state_at(0).yaw_rate_dps is None


def test_comma2k19_without_imu_has_no_yaw_rate(seg, tmp_path):
    import shutil

    copy = tmp_path / seg.name
    shutil.copytree(seg / "processed_log/CAN/speed", copy / "processed_log/CAN/speed")
    shutil.copytree(seg / "global_pose", copy / "global_pose")
    src = open_vehicle_source(str(copy))
    assert src.state_at(10 * S).speed_mps is not None and src.state_at(10 * S).yaw_rate_dps is None
    assert "gyro" not in src.status().detail
