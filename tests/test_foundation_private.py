"""Privacy: what is written about a trip (trip logs, replay outputs, spoken WAVs, detect outputs) is
owner-only (files 0600, the folders we create 0700) whatever the umask; the remote LLM URL must be
https unless it points at this machine."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from vehicle_assist import config, private, triplog
from vehicle_assist.advisory import remote
from vehicle_assist.audio_out import WavSink
from vehicle_assist.speech.tts import write_wav


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """The usual umask (022): without care, files come out 0644 and folders 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_helper_makes_owner_only_files_and_the_folders_it_creates(tmp_path, open_umask):
    (tmp_path / "mine").mkdir()  # an existing folder keeps its mode
    before = mode(tmp_path / "mine")
    f = private.write_text(tmp_path / "mine" / "new" / "deeper" / "a.json", "{}")
    assert mode(f) == 0o600 and mode(tmp_path / "mine" / "new") == 0o700 and mode(f.parent) == 0o700
    assert mode(tmp_path / "mine") == before == 0o755
    old = tmp_path / "old.txt"
    old.write_text("x")
    assert mode(old) == 0o644
    private.write_bytes(old, b"y")  # rewritten: made owner-only too
    assert mode(old) == 0o600 and old.read_bytes() == b"y"
    with private.open_file(tmp_path / "log.jsonl", "a") as fh:
        fh.write("1\n")
    with private.open_file(tmp_path / "log.jsonl", "a") as fh:
        fh.write("2\n")
    assert (tmp_path / "log.jsonl").read_text() == "1\n2\n" and mode(tmp_path / "log.jsonl") == 0o600
    other = tmp_path / "by_opencv.mp4"
    other.write_bytes(b"\0")
    assert mode(private.restrict(other)) == 0o600


def test_trip_log_is_owner_only(tmp_path, open_umask):
    path = tmp_path / "runs" / "trips" / "trip.jsonl"
    with triplog.TripLog(path, triplog.provenance(config.AppConfig())):
        pass
    assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(tmp_path / "runs") == 0o700
    with pytest.raises(triplog.TripLogError) as err:  # still never overwritten
        triplog.TripLog(path, {})
    assert err.value.code == "exists"


def test_spoken_wavs_are_owner_only(tmp_path, open_umask):
    sink = WavSink(tmp_path / "out" / "speaker.wav", 16000)  # run --speaker wav:, ask --audio-out wav:, replay
    sink.write(np.zeros(1600, np.float32))
    sink.close()
    assert mode(tmp_path / "out" / "speaker.wav") == 0o600 and mode(tmp_path / "out") == 0o700
    import wave

    with wave.open(str(tmp_path / "out" / "speaker.wav")) as w:
        assert w.getnframes() == 1600
    wav = write_wav(tmp_path / "speech" / "001_alert.wav", np.zeros(800, np.float32), 16000)
    assert mode(wav) == 0o600 and mode(wav.parent) == 0o700


@pytest.mark.slow
def test_replay_and_detect_outputs_are_owner_only(tmp_path, data):
    clip = data("drives", "highway_cars_1s.mp4")
    env = {**os.environ}
    umask = lambda: os.umask(0o022)  # noqa: E731
    out = tmp_path / "replay"
    res = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "replay", "highway_cars_1s", "--no-voice", "--end", "0.5",
                          "--mcap", "--out", str(out), "--json"], capture_output=True, text=True, timeout=300, env=env,
                         preexec_fn=umask)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    written = [doc["trip_log"], *doc["files"].values(), *doc["speech_wavs"], out / "replay.json", out / "speaker.wav",
               out / "speaker.json"]
    assert {"report", "video", "mcap"} <= set(doc["files"])
    assert {str(p): oct(mode(p)) for p in written} == {str(p): "0o600" for p in written}
    assert mode(out) == 0o700
    det = tmp_path / "detect"
    res = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "detect", str(clip), "--max-frames", "3", "--out", str(det),
                          "--json"], capture_output=True, text=True, timeout=300, env=env, preexec_fn=umask)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in det.iterdir()) == ["annotated.mp4", "hazards.jsonl", "summary.json"]
    assert all(mode(p) == 0o600 for p in det.iterdir()) and mode(det) == 0o700


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "http://127.0.0.1:8080/v1", "http://127.3.4.5/v1",
                                 "http://[::1]:8080/v1", "http://localhost:8080/v1", ""])
def test_remote_url_https_or_loopback_is_accepted(url):
    assert config.RemoteSettings(enabled=True, url=url).url == url


@pytest.mark.parametrize("url", ["http://example.com/v1", "http://10.0.0.7:8080/v1", "http://127.0.0.1.evil.com/v1",
                                 "ftp://example.com/v1", "https://", "example.com/v1"])
def test_remote_url_over_plain_http_elsewhere_is_a_config_error(url, va_home, monkeypatch):
    monkeypatch.setenv("VA_ADVISORY__REMOTE__URL", url)
    with pytest.raises(config.ConfigError) as err:
        config.load_app()
    assert err.value.key == "advisory.remote.url" and "https://" in err.value.expected
    assert "Value error" not in str(err.value)


def test_remote_ask_refuses_an_insecure_url_built_in_code():
    settings = config.RemoteSettings(enabled=True, url="https://api.example.com/v1").model_copy(
        update={"url": "http://example.com/v1"})  # model_copy skips validation: ask checks again, before any socket
    with pytest.raises(remote.RemoteError) as err:
        remote.ask("how close can I follow?", [], settings)
    assert err.value.code == "remote-insecure"
