"""The tools around trip logs: `log show` times from the trip start, `log show latest` across run and
replay logs, the batch replay summary kept as a file, `detect` with the drive's calibration as
replay uses it, and `run --no-voice` logged as a mode rather than an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vehicle_assist import config, messages as m, triplog
from vehicle_assist.bus import Bus
from vehicle_assist.cli import app
from vehicle_assist.clock import ReplayClock

DRIVE = "highway_cars_1s"


def _trip(path, header_t0: bool = True):
    """A trip that starts at 10 s of clock time: an error at 10.5 s, hazards from 11 s, a transcript at 13 s."""
    clock = ReplayClock(10_000_000_000)
    bus = Bus(clock)
    extra = {"t0_ns": clock.now_ns()} if header_t0 else {}
    log = triplog.TripLog(path, triplog.provenance(config.AppConfig(), **extra))
    bus.add_sink(log.append)
    clock.advance_to(10_500_000_000)
    bus.publish("errors", m.ErrorEvent(clock.now_ns(), "camera-missing", "no camera", stage="camera"))
    for i in range(3):
        clock.advance_to(11_000_000_000 + i * 1_000_000_000)
        bus.publish("hazards", ())
    bus.publish("transcripts", m.Transcript(clock.now_ns(), "how close can I follow a lorry", 0.8))
    log.close()
    return path


def _times(output: str, topic: str) -> list[float]:
    return [float(line.split()[1].rstrip("s")) for line in output.splitlines() if f" {topic} " in line]


@pytest.mark.parametrize("header_t0", [True, False])
def test_log_show_times_count_from_the_trip_start_with_or_without_filters(tmp_path, header_t0):
    path = _trip(tmp_path / "trip.jsonl", header_t0)
    runner = CliRunner()
    full = runner.invoke(app, ["log", "show", str(path)])
    assert full.exit_code == 0, full.output
    start = 0.0 if header_t0 else 0.5  # the header's start, else the first record (whatever is shown)
    assert _times(full.output, "errors") == [pytest.approx(0.5 - start)]
    assert _times(full.output, "transcripts") == [pytest.approx(3.0 - start)]
    only = runner.invoke(app, ["log", "show", str(path), "--topic", "transcripts", "--topic", "hazards"])
    assert only.exit_code == 0, only.output
    assert _times(only.output, "transcripts") == _times(full.output, "transcripts")
    assert _times(only.output, "hazards") == _times(full.output, "hazards") == [pytest.approx(x - start) for x in (1, 2, 3)]
    assert _times(only.output, "errors") == []


def test_log_latest_finds_run_and_replay_logs(va_home):
    runs = _trip(va_home / "runs" / "trips" / "trip-20250101-000000.jsonl")
    replay = _trip(va_home / "runs" / "replay" / "batch-20250101-000001" / DRIVE / "trip.jsonl")
    runner = CliRunner()

    def latest() -> str:
        res = runner.invoke(app, ["log", "stats", "latest", "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)["path"]

    os.utime(runs, (1_000_000, 1_000_000))
    assert latest() == str(replay)
    os.utime(replay, (900_000, 900_000))
    assert latest() == str(runs)
    res = runner.invoke(app, ["log", "show", "latest", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[0])["type"] == "header"


@pytest.mark.slow
def test_batch_replay_keeps_its_summary_in_a_file(tmp_path, data):
    folder = tmp_path / "drives"
    folder.mkdir()
    (folder / f"{DRIVE}.mp4").symlink_to(data("drives", f"{DRIVE}.mp4"))
    out = tmp_path / "batch"
    res = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "replay", str(folder), "--no-voice", "--no-video",
                          "--out", str(out), "--json"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    printed = json.loads(res.stdout.strip().splitlines()[-1])
    path = out / "summary.json"
    assert printed["summary_file"] == str(path)
    assert json.loads(path.read_text()) == printed
    assert printed["targets"][0]["name"] == DRIVE and printed["targets"][0]["error"] is None
    assert printed["drive_s"] > 1.0 and oct(os.stat(path).st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_detect_uses_the_drive_calibration_as_replay_does(tmp_path, data):
    from vehicle_assist.replay.drive import open_drive
    from vehicle_assist.replay.run import replay_config

    clip = data("drives", f"{DRIVE}.mp4")
    as_replay = replay_config(config.load_app(), open_drive(DRIVE)).perception.calibration.model_dump()
    runner = CliRunner()
    for target in (str(clip), DRIVE):  # the drive's video, or the drive by name
        res = runner.invoke(app, ["detect", target, "--max-frames", "2", "--no-video", "--out", str(tmp_path / "d"), "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout.strip().splitlines()[-1])
        assert doc["calibration"] == as_replay and doc["calibration_source"].endswith(f"manifests/{DRIVE}.yaml")
        assert doc["video"] == str(clip)
    loose = tmp_path / "loose.mp4"  # the same pixels outside any drive: the configured camera
    loose.write_bytes(clip.read_bytes())
    res = runner.invoke(app, ["detect", str(loose), "--max-frames", "2", "--no-video", "--out", str(tmp_path / "e"), "--json"])
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["calibration"] is None and doc["calibration_source"].startswith("config")


@pytest.mark.slow
def test_no_voice_is_a_mode_in_the_trip_log_not_an_error(tmp_path, data):
    trip = tmp_path / "trip.jsonl"
    res = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "run", "--camera", str(data("drives", f"{DRIVE}.mp4")),
                          "--no-voice", "--speaker", "null", "--trip-log", str(trip), "--duration", "20", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["modes"] == {"voice": "off (--no-voice)"} and "mic" not in summary["missing"]
    header, records = triplog.read(trip)
    assert header["inputs"]["modes"] == {"voice": "off (--no-voice)"} and "mic" not in header["inputs"]["missing"]
    errors = [r["msg"]["code"] for r in records if r["topic"] == "errors"]
    assert not any(code.startswith("mic") for code in errors), errors
    assert isinstance(header["t0_ns"], int)
