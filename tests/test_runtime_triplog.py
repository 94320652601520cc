"""Trip log: header first, strictly increasing seq, typed round trip, tolerant reader, and a real
process killed with SIGKILL that loses nothing it had already logged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vehicle_assist import config, messages as m, triplog
from vehicle_assist.bus import Bus
from vehicle_assist.clock import ReplayClock


def _log_some(path: Path, n: int = 5) -> list[m.Envelope]:
    clock = ReplayClock()
    bus = Bus(clock)
    log = triplog.TripLog(path, triplog.provenance(config.AppConfig()))
    bus.add_sink(log.append)
    envs = []
    for i in range(n):
        clock.advance_to(i * 50_000_000)
        envs.append(bus.publish("hazards", (m.Hazard(i, "collision", m.HazardLevel.WARNING, "car", i, 12.5, 1.8),)))
        bus.publish("frames", m.CameraFrame(i, i, __import__("numpy").zeros((2, 2, 3), "uint8")))  # not logged
        envs.append(bus.publish("timings", m.StageTiming(i, "safety", "detect", 40.0 + i, item=i)))
    log.close()
    return envs


def test_round_trip_header_first_typed_messages(tmp_path):
    path = tmp_path / "trip.jsonl"
    envs = _log_some(path)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header"
    header, records = triplog.read(path)
    assert header["format"] == triplog.FORMAT and header["config_hash"].startswith("sha256:")
    recs = list(records)
    assert [r["seq"] for r in recs] == [e.seq for e in envs]
    assert all(a < b for a, b in zip([r["seq"] for r in recs], [r["seq"] for r in recs][1:]))
    back = triplog.envelope_of(recs[0])
    assert tuple(back.msg) == envs[0].msg and isinstance(back.msg[0].level, m.HazardLevel)
    assert not records.truncated and records.count == len(envs)


def test_seq_must_increase_and_logs_are_never_overwritten(tmp_path):
    path = tmp_path / "t.jsonl"
    with triplog.TripLog(path, {}) as log:
        log.append(m.Envelope("errors", 0, 5, m.ErrorEvent(0, "a", "b")))
        with pytest.raises(triplog.TripLogError, match="seq-not-increasing"):
            log.append(m.Envelope("errors", 0, 5, m.ErrorEvent(0, "a", "b")))
    with pytest.raises(triplog.TripLogError, match="exists"):
        triplog.TripLog(path, {})


def test_truncated_last_line_is_reported_not_fatal(tmp_path):
    path = tmp_path / "trip.jsonl"
    envs = _log_some(path)
    with path.open("ab") as fh:
        fh.write(b'{"seq": 999, "topic": "hazards", "t_ns": 1, "msg": {"type": "Haz')
    _, records = triplog.read(path)
    assert len(list(records)) == len(envs)
    assert records.truncated and records.truncated_bytes > 10


def test_corrupt_middle_line_is_skipped_and_reported_and_missing_header_is_a_clear_error(tmp_path):
    path = tmp_path / "trip.jsonl"
    _log_some(path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b"garbage\n"
    path.write_bytes(b"".join(lines))
    _, records = triplog.read(path)
    recs = list(records)  # read on past it: nothing after a bad line is lost
    assert records.skipped == [(3, "not JSON")] and len(recs) == len(lines) - 2
    assert recs[-1] == json.loads(lines[-1]) and "line 3: not JSON" in records.problems()
    (tmp_path / "nohead.jsonl").write_text('{"seq": 1}\n')
    with pytest.raises(triplog.TripLogError, match="no-header"):
        triplog.read(tmp_path / "nohead.jsonl")
    with pytest.raises(triplog.TripLogError, match="not-found"):
        triplog.read(tmp_path / "absent.jsonl")


WRITER = textwrap.dedent("""
    import sys
    from vehicle_assist import messages as m, triplog
    from vehicle_assist.bus import Bus
    from vehicle_assist.clock import WallClock
    bus = Bus(WallClock())
    log = triplog.TripLog(sys.argv[1], triplog.provenance(), fsync=sys.argv[2] == "1")
    bus.add_sink(log.append)
    i = 0
    while True:
        i += 1
        env = bus.publish("transcripts", m.Transcript(i, "how far behind should I keep " * 8, 0.9))
        sys.stdout.write(f"{env.seq}\\n")
        sys.stdout.flush()
""")


@pytest.mark.parametrize("fsync", ["0", "1"])
def test_kill_9_loses_nothing_already_logged(tmp_path, fsync):
    path = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), fsync], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        for line in proc.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) >= 300:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    header, records = triplog.read(path)
    seqs = [r["seq"] for r in records]
    assert set(acknowledged) <= set(seqs), "a record acknowledged before the kill is missing"
    assert seqs == sorted(set(seqs)) and seqs[:len(acknowledged)] == acknowledged
    assert header["git"]["commit"]  # provenance: this checkout's revision


def test_fingerprint_is_quick_and_content_sensitive(data, tmp_path):
    int8 = data("models", "yolov8n_int8.onnx")
    fp32 = data("models", "yolov8n_fp32.onnx")
    a = triplog.fingerprint(int8)
    assert a == triplog.fingerprint(int8) and a.startswith("sha256-ht1m:")
    assert a != triplog.fingerprint(fp32)
    copy = tmp_path / "copy.onnx"
    blob = bytearray(int8.read_bytes())
    copy.write_bytes(bytes(blob))
    assert triplog.fingerprint(copy) == a  # content, not name or mtime
    blob[-1] ^= 0xFF
    copy.write_bytes(bytes(blob))
    assert triplog.fingerprint(copy) != a
    header = triplog.provenance(config.AppConfig(), {"detector": int8, "missing": tmp_path / "nope"})
    assert header["models"]["detector"]["fingerprint"] == a
    assert header["models"]["missing"]["fingerprint"] is None


def test_config_hash_tracks_config_content():
    a = config.AppConfig()
    b = config.AppConfig.model_validate({"runtime": {"fsync": True}})
    assert triplog.config_hash(a) == triplog.config_hash(config.AppConfig())
    assert triplog.config_hash(a) != triplog.config_hash(b)
