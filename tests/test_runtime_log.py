"""`vehicle-assist log show|stats`: counts per topic, latency percentiles per stage, errors,
a truncated last line reported; on a trip log written through the real bus and trip log."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vehicle_assist import config, messages as m, triplog, tripstats
from vehicle_assist.bus import Bus
from vehicle_assist.cli import app
from vehicle_assist.clock import ReplayClock

DETECT_MS = [float(x) for x in np.random.default_rng(0).gamma(4.0, 12.0, 200)]


@pytest.fixture
def trip(tmp_path):
    path = tmp_path / "trip.jsonl"
    clock = ReplayClock()
    bus = Bus(clock)
    log = triplog.TripLog(path, triplog.provenance(config.AppConfig()))
    bus.add_sink(log.append)
    for i, ms in enumerate(DETECT_MS):
        clock.advance_to(i * 100_000_000)
        bus.publish("timings", m.StageTiming(clock.now_ns(), "safety", "detect", ms, item=i))
        bus.publish("timings", m.StageTiming(clock.now_ns(), "safety", "track", 1.0, item=i))
        bus.publish("hazards", ())
    bus.publish("transcripts", m.Transcript(clock.now_ns(), "how close can I follow a lorry", 0.8))
    bus.publish("errors", m.ErrorEvent(clock.now_ns(), "stage-crashed", "RuntimeError: boom", stage="asr", restarts=1))
    log.close()
    return path


def test_summarize_percentiles_match_numpy(trip):
    header, records = triplog.read(trip)
    doc = tripstats.summarize(header, records)
    assert doc["topics"] == {"errors": 1, "hazards": 200, "timings": 400, "transcripts": 1}
    p = doc["latency_ms"]["safety.detect"]
    assert p["n"] == 200
    assert p["p95"] == pytest.approx(np.percentile(DETECT_MS, 95), abs=0.01)
    assert p["p50"] == pytest.approx(np.percentile(DETECT_MS, 50), abs=0.01)
    assert doc["latency_ms"]["safety.track"]["max"] == 1.0
    assert doc["errors"]["by_code"] == {"stage-crashed": 1} and doc["errors"]["first"][0]["stage"] == "asr"
    assert doc["seq_strictly_increasing"] and doc["duration_s"] == pytest.approx(19.9)


def test_advisory_stage_latency_from_start_end_events():
    recs = [{"topic": "advisory_events", "msg": {"type": "start", "stage": "retrieve", "t_perf_ns": 1_000_000}},
            {"topic": "advisory_events", "msg": {"type": "end", "stage": "retrieve", "t_perf_ns": 31_000_000}}]
    assert tripstats.stage_latencies(recs) == {"advisory.retrieve": [30.0]}


def test_cli_stats_json_and_human(trip):
    runner = CliRunner()
    res = runner.invoke(app, ["log", "stats", str(trip), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["records"] == 602 and not doc["truncated_last_line"]
    res = runner.invoke(app, ["log", "stats", str(trip)])
    assert res.exit_code == 0 and "safety.detect" in res.stdout and "stage-crashed" in res.stdout


def test_cli_show_filters_by_topic(trip):
    runner = CliRunner()
    res = runner.invoke(app, ["log", "show", str(trip), "--topic", "errors", "--topic", "transcripts", "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert lines[0]["type"] == "header"
    assert [r["topic"] for r in lines[1:]] == ["transcripts", "errors"]
    res = runner.invoke(app, ["log", "show", str(trip), "-t", "transcripts"])
    assert "how close can I follow a lorry" in res.stdout


def test_cli_reports_truncated_log_and_missing_file(trip, tmp_path):
    with trip.open("ab") as fh:
        fh.write(b'{"seq":99999,"topic":"haz')
    res = CliRunner().invoke(app, ["log", "stats", str(trip), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["truncated_last_line"] is True
    res = CliRunner().invoke(app, ["log", "show", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "not-found" in res.output


def _corrupt(trip, tmp_path):
    """The trip log with a garbage line in the middle and records of the wrong types."""
    lines = trip.read_text().splitlines(True)
    bad = [b"\x00\xff not json at all\n", json.dumps({"seq": "7", "topic": "hazards", "t_ns": 1, "msg": []}).encode() + b"\n",
           json.dumps({"seq": 8, "topic": "hazards", "t_ns": None, "msg": []}).encode() + b"\n",
           json.dumps(["a", "list"]).encode() + b"\n", json.dumps({"seq": 9, "topic": 5, "t_ns": 1}).encode() + b"\n"]
    out = tmp_path / "corrupt.jsonl"
    out.write_bytes("".join(lines[:300]).encode() + b"".join(bad) + "".join(lines[300:]).encode())
    return out


def test_reader_skips_bad_lines_in_the_middle_and_reads_on(trip, tmp_path):
    corrupt = _corrupt(trip, tmp_path)
    header, records = triplog.read(corrupt)
    recs = list(records)
    assert len(recs) == 602 and records.count == 602  # nothing after the garbage is lost
    assert [n for n, _ in records.skipped] == [301, 302, 303, 304, 305]
    whys = dict(records.skipped)
    assert whys[301] == "not JSON" and whys[302].startswith("seq is str") and whys[303].startswith("t_ns is NoneType")
    assert whys[304].startswith("not a record") and whys[305].startswith("topic is int")
    assert "5 line(s) of" in records.problems() and "line 301: not JSON" in records.problems()


def test_cli_show_and_stats_read_past_bad_lines(trip, tmp_path):
    corrupt = _corrupt(trip, tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["log", "show", str(corrupt), "-t", "transcripts", "-t", "errors"])
    assert res.exit_code == 0, res.output
    assert "how close can I follow a lorry" in res.stdout and "stage-crashed" in res.stdout  # after the garbage
    assert res.stderr.startswith("warning: 5 line(s) of") and len(res.stderr.splitlines()) == 1
    res = runner.invoke(app, ["log", "stats", str(corrupt), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["records"] == 602 and doc["topics"]["timings"] == 400
    assert [s["line"] for s in doc["skipped_lines"]] == [301, 302, 303, 304, 305]
    res = runner.invoke(app, ["log", "stats", str(corrupt)])
    assert res.exit_code == 0 and "5 bad line(s) skipped" in res.stdout


def test_cli_header_of_wrong_types_does_not_crash(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"type": "header", "format": triplog.FORMAT, "git": "abc", "models": 3}) + "\n"
                    + json.dumps({"seq": 1, "topic": "hazards", "t_ns": 0, "msg": []}) + "\n")
    res = CliRunner().invoke(app, ["log", "show", str(path)])
    assert res.exit_code == 0, res.output
    assert "models ?" in res.stdout and "hazards" in res.stdout
