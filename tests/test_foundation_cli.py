"""The command line: every command explains itself in sentences; every error is one unwrapped line
``error: [code] message`` (or one JSON object on stdout under ``--json``) with a non-zero exit code;
bad input of every kind gives such an error or a clear degradation, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from vehicle_assist import cli, config, messages as m, triplog
from vehicle_assist.clock import ReplayClock
from vehicle_assist.bus import Bus

ERROR_LINE = re.compile(r"^error: \[[a-z0-9-]+\] \S.*$")


def _run(*args, env=None, timeout=120):
    env = {**os.environ, "COLUMNS": "80", **(env or {})}  # what a pipe or a narrow terminal gets
    return subprocess.run([sys.executable, "-m", "vehicle_assist.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _one_error(out, code: str) -> str:
    """The single error line of a finished command (no traceback, nothing else on stderr)."""
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]), out.stderr
    assert lines[0].startswith(f"error: [{code}] "), lines[0]
    assert "\\[" not in lines[0]  # no rich markup escapes shown to people
    return lines[0]


def _json_error(out, code: str) -> dict:
    """The JSON error object of a finished ``--json`` command: the last stdout line, nothing on stderr."""
    assert out.returncode != 0
    assert out.stderr == "", out.stderr[-3000:]
    doc = json.loads(out.stdout.splitlines()[-1])
    assert set(doc) == {"error"} and doc["error"]["code"] == code and doc["error"]["message"]
    return doc["error"]


# --- help -------------------------------------------------------------------------------------


def test_top_level_help_lists_commands():
    out = _run("--help")
    assert out.returncode == 0
    for name in ("doctor", "models", "fetch"):
        assert name in out.stdout


def _tree(command, path=()):
    """Every command and group of the CLI as its word path, e.g. ("log", "show")."""
    for name, sub in getattr(command, "commands", {}).items():
        yield (*path, name)
        yield from _tree(sub, (*path, name))


COMMANDS = [list(p) for p in _tree(__import__("typer").main.get_command(cli.app))]
GROUPS = [[]] + [p for p in COMMANDS if getattr(__import__("typer").main.get_command(cli.app).commands[p[0]], "commands", None)
                 and len(p) == 1]


@pytest.mark.parametrize("name", COMMANDS, ids=" ".join)
def test_every_command_has_help_that_reads_as_sentences(name):
    out = _run(*name, "--help")
    is_group = "Commands:" in out.stdout
    assert out.returncode == 0 and ("--json" in out.stdout or is_group)
    text = out.stdout
    assert not re.search(r"<(bool|str|int|float|path|list\[\w+\]|(int|float) range)>", text), text  # type labels
    assert not re.search(r"\{[A-Za-z_]+\}", text), text  # {target}-style argument names
    assert "…" not in text  # nothing cut to fit
    assert text.startswith(f"Usage: vehicle-assist {' '.join(name)} [OPTIONS]")


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: " ".join(g) or "top")
def test_command_lists_give_whole_sentences(group):
    out = _run(*group, "--help")
    rows = out.stdout.split("Commands:\n", 1)[1].splitlines()
    assert rows
    for row in rows:
        assert row.rstrip().endswith(".") and not row.rstrip().endswith("..."), row  # a summary, not a cut


# --- one error form ---------------------------------------------------------------------------


def test_missing_video_error_is_one_line_under_a_long_path(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8) / "none.mp4"  # > 200 characters
    out = _run("detect", str(deep))
    line = _one_error(out, "video-missing")
    assert line == f"error: [video-missing] {deep}: no such video file, folder or drive"
    assert out.returncode == 2
    err = _json_error(_run("detect", str(deep), "--json"), "video-missing")
    assert err["message"] == f"{deep}: no such video file, folder or drive"


def test_detect_missing_video_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    res = CliRunner().invoke(cli.app, ["detect", str(tmp_path / "none.mp4"), "--json"])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["error"] == {"code": "video-missing",
                                               "message": f"{tmp_path / 'none.mp4'}: no such video file, folder or drive"}


def test_usage_errors_are_one_line_or_json():
    line = _one_error(_run("replay", "--no-such-option", "x"), "usage")
    assert "--no-such-option" in line and "vehicle-assist replay --help" in line
    err = _json_error(_run("replay", "--speed", "fast", "x", "--json"), "usage")
    assert "--speed" in err["message"]
    _one_error(_run("no-such-command"), "usage")


def test_malformed_config_is_one_clear_line(va_home):
    (va_home / "configs" / "models.yaml").write_text("roles:\n  slm: {kind: x, colour: red}\n")
    out = _run("models", env={"VA_HOME": str(va_home)})
    line = _one_error(out, "config")
    assert out.returncode == 2 and "models.yaml" in line and "colour" in line
    err = _json_error(_run("models", "--json", env={"VA_HOME": str(va_home)}), "config")
    assert "colour" in err["message"]


def test_config_error_from_an_environment_variable_names_it():
    out = _run("log", "stats", "latest", env={"VA_RUNTIME__FSYNC": "sometimes"})
    line = _one_error(out, "config")
    assert "VA_RUNTIME__FSYNC='sometimes'" in line and "runtime.fsync" in line and out.returncode == 2
    line = _one_error(_run("log", "stats", "latest", env={"VA_RUNTIME__NO_SUCH_KEY": "1"}), "config")
    assert "VA_RUNTIME__NO_SUCH_KEY" in line and "unknown key" in line


def test_arguments_that_are_not_utf8_are_a_clear_error():
    args = [sys.executable, "-m", "vehicle_assist.cli", "ask", b"what \xff\xfe speed"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    line = _one_error(out, "bad-argument")
    assert "argument 2" in line and "\\xff\\xfe" in line and out.returncode == 2
    out = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=60)
    assert "not valid UTF-8" in _json_error(out, "bad-argument")["message"]


def test_models_never_shortens_paths():
    from vehicle_assist import models

    out = _run("models", env={"COLUMNS": "40"})
    assert out.returncode == 0, out.stderr
    for role in models.ROLES:
        path = str(models.resolve(role).path)
        assert any(line.endswith("  " + path) for line in out.stdout.splitlines()), (path, out.stdout)
    assert "…" not in out.stdout


# --- bad input: run ---------------------------------------------------------------------------


def test_run_refuses_an_existing_trip_log_before_opening_anything(data, tmp_path):
    trip = tmp_path / "trip.jsonl"
    trip.write_text("keep me\n")
    out = _run("run", "--camera", str(data("drives", "highway_cars_1s.mp4")), "--mic",
               str(data("speech", "speechcmd_yes.wav")), "--speaker", "null", "--trip-log", str(trip))
    line = _one_error(out, "exists")  # before: a traceback, then SIGABRT (rc 134) as native threads died
    assert out.returncode == 2 and str(trip) in line
    assert trip.read_text() == "keep me\n"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["missing", "empty", "unreadable"])
def test_run_with_a_bad_mic_file_says_why_and_never_crashes(tmp_path, kind):
    mic = tmp_path / f"{kind}.wav"
    if kind == "empty":
        with wave.open(str(mic), "wb") as w:  # a valid WAV with 0 samples
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    elif kind == "unreadable":
        mic.write_bytes(b"not audio at all\n" * 10)
    out = _run("run", "--camera", str(tmp_path / "no-camera.mp4"), "--mic", str(mic), "--speaker", "null",
               "--trip-log", str(tmp_path / "t.jsonl"), "--duration", "5")
    assert out.returncode == 3 and "Traceback" not in out.stderr, out.stderr[-3000:]
    code = {"missing": "audio-missing", "empty": "audio-empty", "unreadable": "audio-unreadable"}[kind]
    assert f"mic: [{code}] {mic}" in out.stderr
    assert "no microphone" not in out.stderr and "input device" not in out.stderr
    last = out.stderr.splitlines()[-1]  # the error names why each input is missing
    assert last.startswith("error: [no-input] nothing to run: neither a camera nor a microphone could be opened (")
    assert f"mic: [{code}] {mic}" in last and "camera: " in last


@pytest.mark.slow
def test_run_with_an_empty_mic_file_runs_the_camera(data, tmp_path):
    mic = tmp_path / "empty.wav"
    with wave.open(str(mic), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    out = _run("run", "--camera", str(data("drives", "highway_cars_1s.mp4")), "--mic", str(mic), "--speaker", "null",
               "--trip-log", str(tmp_path / "t.jsonl"), "--duration", "3", "--json", timeout=240)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["missing"]["mic"].startswith("[audio-empty]") and summary["published"]["frames"] > 0
    assert summary["restarts"] == {}  # no stage crashed over the file


def test_run_speaker_errors_name_the_speaker_option(tmp_path):
    out = _run("run", "--no-voice", "--speaker", "wav:/proc/no/such.wav", "--camera", str(tmp_path / "none.mp4"))
    line = _one_error(out, "wav-open-failed")
    assert "--speaker wav:/proc/no/such.wav" in line and "--audio " not in line and out.returncode == 2


# --- bad input: ask ---------------------------------------------------------------------------


@pytest.mark.slow
def test_ask_speak_to_an_unwritable_wav_is_a_clear_error():
    out = _run("ask", "what is the speed limit on a motorway", "--speak", "--audio-out", "wav:/proc/x.wav")
    line = _one_error(out, "wav-open-failed")
    assert "/proc/x.wav" in line and out.returncode == 2


@pytest.mark.slow
def test_ask_with_a_non_gguf_slm_falls_back_to_the_extractive_route(tmp_path):
    fake = tmp_path / "not-a-model.gguf"
    fake.write_text("this is a README, not a GGUF model\n" * 50)
    out = _run("ask", "how much room should I give a cyclist when I overtake", "--route", "slm", "--json",
               env={"VA_MODEL_SLM": str(fake)})
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    rec = json.loads(out.stdout.splitlines()[-1])
    assert rec["route"] == "extractive" and rec["fallback"] == "slm-unavailable" and rec["cited"]
    assert out.stderr.startswith("warning: [slm-load-failed]") and "extractive route" in out.stderr


@pytest.mark.slow
def test_a_slm_path_that_does_not_exist_fails_naming_the_role():
    out = _run("ask", "what is the speed limit on a motorway", "--route", "slm",
               env={"VA_MODEL_SLM": "/nonexistent.gguf"})
    line = _one_error(out, "model-missing")
    assert "role 'slm'" in line and "VA_MODEL_SLM=/nonexistent.gguf" in line and out.returncode == 2


# --- bad input: replay ------------------------------------------------------------------------


@pytest.mark.parametrize("window,said", [(["--start", "50"], "starts at 50 s, at or past the end"),
                                         (["--start", "3", "--end", "1"], "ends at 1 s, not after its start at 3 s")])
def test_replay_window_outside_the_drive_is_an_error(data, tmp_path, window, said):
    out = _run("replay", str(data("drives", "highway_cars_1s.mp4")), "--no-voice", "--no-video",
               "--out", str(tmp_path / "out"), *window)
    line = _one_error(out, "bad-window")  # before: rc 0 and an empty report
    assert said in line and out.returncode == 2
    assert not (tmp_path / "out" / "trip.jsonl").exists()


def _detections_log(path: Path, bad_items: bool = False) -> Path:
    """A trip log with two frames of logged detections (as the perception lane logs them)."""
    clock = ReplayClock()
    bus = Bus(clock)
    log = triplog.TripLog(path, triplog.provenance(config.AppConfig()))
    bus.add_sink(log.append)
    for i in range(2):
        clock.advance_to(i * 50_000_000)
        car = m.Detection((600.0, 380.0, 700.0, 460.0), "car", 2, 0.9)
        bus.publish("detections", m.Detections(clock.now_ns(), i, 1280, 720, (car,)))
    log.close()
    if bad_items:
        lines = path.read_text().splitlines(True)
        rec = json.loads(lines[2])
        rec["msg"]["items"] = "oops"
        lines[2] = json.dumps(rec) + "\n"
        path.write_text("".join(lines))
    return path


def test_replay_from_a_log_with_a_bad_record_names_it(data, tmp_path):
    trip = _detections_log(tmp_path / "trip.jsonl", bad_items=True)
    out = _run("replay", str(data("drives", "highway_cars_1s.mp4")), "--from-log", str(trip), "--out", str(tmp_path / "o"))
    line = _one_error(out, "bad-record")
    assert f"{trip}: seq 2 (detections)" in line and "items" in line and out.returncode == 2


def test_replay_from_a_log_with_a_garbage_line_reads_on_and_warns(data, tmp_path):
    trip = _detections_log(tmp_path / "trip.jsonl")
    lines = trip.read_text().splitlines(True)
    trip.write_text("".join(lines[:2] + ["\x00\x00 garbage \x00\n"] + lines[2:]))
    out = _run("replay", str(data("drives", "highway_cars_1s.mp4")), "--from-log", str(trip), "--out",
               str(tmp_path / "o"), "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    doc = json.loads(out.stdout)
    assert doc["warnings"] and "line 3: not JSON" in doc["warnings"][0]
    assert out.stderr.startswith("warning: 1 line(s) of") and "line 3: not JSON" in out.stderr
    realerted = [json.loads(x) for x in (tmp_path / "o" / "realert.jsonl").read_text().splitlines()[1:]]
    assert sum(r["topic"] == "detections" for r in realerted) == 2  # both frames, the one after the garbage too
    (tmp_path / "replay.json").write_text('{"drive": {"calibration": "not a calibration"}}')
    out = _run("replay", str(data("drives", "highway_cars_1s.mp4")), "--from-log", str(trip), "--out", str(tmp_path / "o2"))
    assert "replay.json" in _one_error(out, "bad-replay-info")


@pytest.mark.slow
def test_replay_of_a_truncated_mp4_says_what_was_read(data, tmp_path):
    clip = data("drives", "urban_narrow_street_taxi_pedestrians_dad000597.mp4")  # 100 frames at 20 Hz, moov first
    cut = tmp_path / "cut.mp4"
    with cut.open("wb") as fh:
        subprocess.run(["head", "-c", "300000", str(clip)], stdout=fh, check=True)
    out = _run("replay", str(cut), "--no-voice", "--no-video", "--out", str(tmp_path / "o"), "--json", timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    doc = json.loads(out.stdout.splitlines()[-1])
    read = json.loads((tmp_path / "o" / "replay.json").read_text())["drive"]["read"]
    assert read["ended_early"] and read["claimed_frames"] == 100 and 0 < read["frames"] < 50
    assert doc["replay"]["frames_in"] == read["frames"]
    assert read["until_s"] == pytest.approx(read["frames"] / 20, abs=1e-3)
    warning = doc["warnings"][0]
    assert f"{read['frames']} frame(s) decoded up to {read['until_s']:.2f} s, of the 100 frames (5.00 s)" in warning
    assert "warning: " + warning in out.stderr
    html = (tmp_path / "o" / "report.html").read_text()
    assert f"{read['until_s']:.2f} s read: the video ends early, {read['frames']} of the 100 frames" in html
    assert "(5.00 s, mode" not in html
    out = _run("replay", str(cut), "--no-voice", "--no-video", "--out", str(tmp_path / "o3"), "--start", "3", timeout=300)
    assert "no frame could be decoded" in _one_error(out, "no-frames")
