"""One bad input per command whose error had no code of its own: each is one line ``error: [code]
message`` naming the input (the code not repeated in the message), and one JSON object on stdout
under ``--json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vehicle_assist.vehicle import VehicleError


def _run(*args):
    return subprocess.run([sys.executable, "-m", "vehicle_assist.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "80"})


CASES = [
    (("run", "--no-voice", "--speaker", "null", "--telemetry", "{tmp}/none.csv"), "telemetry-not-found", "{tmp}/none.csv"),
    (("fetch", "nosuchgroup"), "unknown-group", "nosuchgroup"),
]


@pytest.mark.parametrize("args,code,named", CASES, ids=[c[1] for c in CASES])
def test_bad_input_is_one_coded_line_or_json(tmp_path, args, code, named):
    args = tuple(a.format(tmp=tmp_path) for a in args)
    named = named.format(tmp=tmp_path)
    out = _run(*args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"error: [{code}] ") and named in line
    assert f"{code}:" not in line  # the code once, in its brackets
    out = _run(*args, "--json")
    assert out.returncode == 2 and out.stderr == ""
    (doc,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert doc["error"]["code"] == code and named in doc["error"]["message"]


def test_vehicle_errors_keep_their_code_message_and_position():
    err = VehicleError("telemetry-invalid", "t.csv: line 3: speed_mps: expected a number", position="line 3")
    assert (err.code, err.message, err.position) == ("telemetry-invalid", "t.csv: line 3: speed_mps: expected a number",
                                                     "line 3")
    assert str(err) == "telemetry-invalid: t.csv: line 3: speed_mps: expected a number"  # as before (route's TrackError)


def test_replay_of_an_unknown_name_says_where_it_looked_once_each():
    out = _run("replay", "no_such_target", "--no-video")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith("error: [drive-missing] no_such_target: ")
    assert "expected a scenario or a drive; no scenario at " in line and "sim/scenarios/no_such_target.yaml" in line
    looked = line.split("looked at ")[1].split(", ")
    assert len(looked) == len(set(looked)) and any(p.endswith("sim/manifests/no_such_target.yaml") for p in looked)
    out = _run("replay", "sim/manifests/no_such_target.yaml", "--json")  # a path: looked for there only
    (doc,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert doc["error"]["code"] == "drive-missing" and "scenario" not in doc["error"]["message"]
    assert doc["error"]["message"].count("no_such_target") == 2  # the spec, and the one place looked


def test_run_with_nothing_to_run_says_why_in_the_json_error_too(tmp_path):
    video = tmp_path / "text.mp4"
    video.write_text("not a video")
    out = _run("run", "--camera", str(video), "--no-voice", "--speaker", "null", "--json")
    assert out.returncode == 3
    (doc,) = [json.loads(x) for x in out.stdout.splitlines()]
    msg = doc["error"]["message"]
    assert doc["error"]["code"] == "no-input" and "nothing to run" in msg
    assert f"camera: [source-unavailable] cannot open {video}" in msg and "voice lane off (--no-voice)" in msg


def test_a_wrapped_coded_error_says_its_code_once(tmp_path):
    """index with an embedder path that does not exist: the knowledge lane wraps the model error."""
    out = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "index", "--json"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "VA_MODEL_EMBEDDER": str(tmp_path / "none")})
    assert out.returncode == 2
    (doc,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert doc["error"]["code"] == "model-missing"
    assert doc["error"]["message"].startswith("model for role 'embedder' not found; looked in: VA_MODEL_EMBEDDER=")
