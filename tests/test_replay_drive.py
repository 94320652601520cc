"""Recorded-drive formats: manifests, bare video, MCAP round trip, telemetry, and clear errors."""

from __future__ import annotations

import collections
import json
import shutil

import numpy as np
import pytest

from vehicle_assist.messages import AudioChunk, CameraFrame, VehicleState
from vehicle_assist.replay import drive as drv
from vehicle_assist.replay.errors import DriveError
from vehicle_assist.replay.mcap_drive import write_drive_mcap
from vehicle_assist.replay.telemetry import read_comma2k19, read_telemetry

HIGHWAY = "highway_cars_1s"


def _items(d, **kw):
    return list(d.messages(**kw))


def test_committed_manifests_open_and_yield_in_time_order(data):
    for name in ("highway_cars_1s.mp4", "urban_boston_parked_cars_nuscenes_2s.mp4",
                 "urban_busy_street_pedestrians_scooters_dad000487.mp4"):
        data("drives", name)  # fails clearly if not fetched
    d = drv.open_drive(HIGHWAY)
    assert d.info.frame_count == 38 and d.info.frame_rate_hz == 25.0 and (d.info.width, d.info.height) == (1280, 720)
    assert d.info.calibration.focal_px == pytest.approx(1157.0)
    items = _items(d)
    keys = [(m.t_ns, drv.TOPIC_RANK[m.topic]) for m in items]
    assert keys == sorted(keys)
    frames = [m.msg for m in items if m.topic == "frames"]
    audio = [m.msg for m in items if m.topic == "audio"]
    assert len(frames) == 38 and isinstance(frames[0], CameraFrame) and frames[0].image.shape == (720, 1280, 3)
    assert [f.seq for f in frames] == list(range(38))
    assert frames[1].t_ns == 40_000_000  # 25 fps
    assert audio and isinstance(audio[0], AudioChunk) and len(audio[0].pcm) == 320  # 20 ms at 16 kHz
    assert np.abs(np.concatenate([a.pcm for a in audio])).max() < 1e-3  # the clip's track is silent (-91 dB)


def test_manifest_frame_rate_override_sets_drive_time(data):
    data("drives", "urban_boston_parked_cars_nuscenes_2s.mp4")
    d = drv.open_drive("urban_boston_parked_cars_nuscenes_2s")
    frames = [m for m in _items(d) if m.topic == "frames"]
    assert d.info.frame_rate_hz == 2.0 and d.info.duration_s == pytest.approx(20.0)
    assert frames[-1].t_ns == 19_500_000_000  # 40 keyframes at 2 Hz, not 2 s at 20 fps


def test_slice_keeps_drive_time(data):
    data("drives", "highway_cars_1s.mp4")
    frames = [m.msg for m in drv.open_drive(HIGHWAY).messages(start_s=0.5, end_s=1.0) if m.topic == "frames"]
    assert frames[0].seq == 13 and frames[0].t_ns == 520_000_000 and frames[-1].t_ns < 1_000_000_000


def test_voice_clips_extend_the_microphone_past_the_video(data):
    data("drives", "highway_cars_1s.mp4")
    speech = np.full(16000 * 2, 0.5, np.float32)  # 2 s of a loud "voice"
    d = drv.open_drive(HIGHWAY, voice=[drv.VoicePcm(1.0, speech)])
    audio = [m.msg for m in d.messages() if m.topic == "audio"]
    end_s = audio[-1].t_ns / 1e9
    assert end_s >= 3.0 + 0.9  # clip end (3.0 s) plus the silent tail for the VAD
    loud = [a.t_ns / 1e9 for a in audio if np.abs(a.pcm).max() > 0.4]
    assert loud[0] == pytest.approx(1.02, abs=0.021) and loud[-1] == pytest.approx(3.0, abs=0.021)


def test_mcap_round_trip_keeps_frames_audio_telemetry_and_calibration(data, tmp_path):
    data("drives", "highway_cars_1s.mp4")
    folder = tmp_path / "drive"
    folder.mkdir()
    shutil.copy(data("drives", "highway_cars_1s.mp4"), folder / "clip.mp4")
    (folder / "telemetry.csv").write_text("t,speed_kmh,heading_deg,road_type,yaw_rate\n0.0,100,90,motorway,-1.5\n"
                                          "0.5,,91,,\n1.0,102,,,\n")
    (folder / "manifest.yaml").write_text("name: hw\nvideo: clip.mp4\naudio: {track: clip.mp4}\n"
                                          "telemetry: {file: telemetry.csv}\ncalibration: {focal_px: 1157, mount_height_m: 1.2}\n")
    src = drv.open_drive(folder)
    out = write_drive_mcap(src, tmp_path / "hw.mcap")
    back = drv.open_drive(out)
    assert back.info.kind == "mcap" and back.info.frame_count == 38 and back.info.calibration.focal_px == 1157
    a, b = _items(src), _items(back)
    assert collections.Counter(m.topic for m in a) == collections.Counter(m.topic for m in b)
    assert [m.t_ns for m in a] == [m.t_ns for m in b]
    fa = [m.msg.image for m in a if m.topic == "frames"][10]
    fb = [m.msg.image for m in b if m.topic == "frames"][10]
    assert np.abs(fa.astype(int) - fb).mean() < 3.0  # JPEG at quality 90
    states = [m.msg for m in b if m.topic == "vehicle"]
    assert states[0].speed_mps == pytest.approx(100 / 3.6) and states[1].speed_mps is None  # unknown stays unknown
    assert [s.yaw_rate_dps for s in states] == [-1.5, None, None]


def test_comma2k19_telemetry_reads_speed_and_position(data):
    seg = data("telemetry", "comma2k19_example1_seg40/processed_log/CAN/speed/value").parents[3]
    states = read_comma2k19(seg, rate_hz=10)
    assert 590 <= len(states) <= 610  # a 60 s segment at 10 Hz
    assert states[0].t_ns == 0 and states[0].speed_mps is None  # first CAN sample comes 42 ms after frame 0: unknown
    assert states[1].speed_mps == pytest.approx(7.97, abs=0.1)
    assert 37.7 < states[100].lat < 37.8 and -122.5 < states[100].lon < -122.4
    assert all(s.yaw_rate_dps is not None and abs(s.yaw_rate_dps) < 10 for s in states[1:])  # gyro, deg/s
    assert all(isinstance(s, VehicleState) for s in states)


def test_telemetry_errors_name_file_line_and_expectation(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("t,speed_mps\n0.0,12\n0.1,fast\n")
    with pytest.raises(DriveError) as err:
        read_telemetry(bad)
    assert "t.csv: line 3: speed_mps: expected a number (got 'fast')" in str(err.value)
    bad_json = tmp_path / "t.jsonl"
    bad_json.write_text(json.dumps({"t": 0, "speed_mps": 3}) + "\n{oops\n")
    with pytest.raises(DriveError, match=r"t.jsonl: line 2, column 2: expected one JSON object per line"):
        read_telemetry(bad_json)
    unknown = tmp_path / "u.csv"
    unknown.write_text("t,sped\n0,1\n")
    with pytest.raises(DriveError, match="line 2: sped: expected one of the columns"):
        read_telemetry(unknown)


def test_malformed_manifest_names_key_and_expectation(tmp_path):
    (tmp_path / "manifest.yaml").write_text("name: x\nvideo: clip.mp4\ncalibration: {focal_px: -3, mount_height_m: 1.2}\n")
    with pytest.raises(DriveError) as err:
        drv.open_drive(tmp_path)
    assert err.value.code == "manifest-invalid" and "calibration.focal_px" in str(err.value) and "greater than 0" in str(err.value)
    (tmp_path / "manifest.yaml").write_text("name: x\nvideo: clip.mp4\ncalibration: {focal_px: 3, mount_height_m: 1.2}\nfps: 3\n")
    with pytest.raises(DriveError, match="fps: expected unknown key; expected one of: audio, calibration"):
        drv.open_drive(tmp_path)
    (tmp_path / "manifest.yaml").write_text("name: x\nvideo: [unclosed\n")
    with pytest.raises(DriveError, match=r"line 3, column 1: expected valid YAML"):
        drv.open_drive(tmp_path)
    (tmp_path / "manifest.yaml").write_text("name: x\nvideo: clip.mp4\ncalibration: {focal_px: 3, mount_height_m: 1.2}\n")
    with pytest.raises(DriveError, match=r"video: expected an existing file"):
        drv.open_drive(tmp_path)


def test_corrupt_video_and_mcap_fail_clearly(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(DriveError) as err:
        drv.open_drive(junk)
    assert err.value.code == "video-unreadable" and "junk.mp4" in str(err.value)
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + b"garbage" * 50)
    with pytest.raises(DriveError) as err:
        drv.open_drive(bad)
    assert err.value.code == "mcap-invalid" and "bad.mcap" in str(err.value)
    with pytest.raises(DriveError, match="drive-missing"):
        drv.open_drive("no_such_drive")


def test_truncated_mcap_fails_with_position(data, tmp_path):
    data("drives", "highway_cars_1s.mp4")
    good = write_drive_mcap(drv.open_drive(HIGHWAY), tmp_path / "hw.mcap")
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DriveError) as err:
        drv.open_drive(cut)
    assert err.value.code == "mcap-invalid" and "cut.mcap" in str(err.value)


def test_a_relative_drive_path_is_taken_from_the_cwd_first(tmp_path, monkeypatch):
    from vehicle_assist.replay.drive import resolve_drive

    (tmp_path / "my_clip.mp4").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert resolve_drive("my_clip.mp4") == tmp_path / "my_clip.mp4"
