"""Audio sources: real files in every container we accept, clear errors for bad input and no mic."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from vehicle_assist.speech import audio


def test_wav_flac_are_16k_mono_float(data):
    pcm, sr = audio.load_audio(data("speech", "jfk_ask_not_what_your_country.flac"))  # 44.1 kHz stereo 24-bit
    assert sr == 16000 and pcm.dtype == np.float32 and pcm.ndim == 1
    assert abs(len(pcm) / sr - 11.0) < 0.05
    pcm, sr = audio.load_audio(data("speech", "noisy_vctk_p232_113.wav"))  # 48 kHz
    assert abs(len(pcm) / sr - 1.37) < 0.05


def test_mp3_and_a_drive_video_track(data, tmp_path):
    mp3 = tmp_path / "routine.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(data("speech", "librispeech_251-137823-0002_testing_routine.wav")),
                    str(mp3)], check=True)
    pcm, sr = audio.load_audio(mp3)
    assert sr == 16000 and abs(len(pcm) / sr - 3.13) < 0.1
    video = tmp_path / "drive.mp4"  # a recorded drive with the driver's voice on its audio track
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(data("drives", "highway_cars_1s.mp4")), "-i", str(mp3),
                    "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "copy", str(video)], check=True)
    pcm, sr = audio.load_audio(video)
    assert sr == 16000 and len(pcm) > 0.5 * sr and audio.rms_db(pcm) > -40


def test_errors_have_codes(tmp_path):
    with pytest.raises(audio.AudioError) as err:
        audio.load_audio(tmp_path / "nope.wav")
    assert err.value.code == "audio-missing"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00not really a wav" * 10)
    with pytest.raises(audio.AudioError) as err:
        audio.load_audio(junk)
    assert err.value.code == "audio-unreadable"
    empty = tmp_path / "empty.wav"
    import soundfile as sf

    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(audio.AudioError) as err:
        audio.load_audio(empty)
    assert err.value.code in ("audio-empty", "audio-unreadable")


def test_file_source_chunks_are_stamped_in_file_time(data):
    chunks = list(audio.FileSource(data("speech", "speechcmd_yes.wav"), block_ms=100, t0_ns=5_000_000_000))
    assert len(chunks) == 10
    assert chunks[0].t_ns == 5_000_000_000 and chunks[3].t_ns == 5_300_000_000
    assert all(c.sample_rate == 16000 for c in chunks)


def test_microphone_absent_gives_a_clear_message():
    mic = audio.MicSource(now_ns=lambda: 0)
    if audio.input_devices():
        assert mic.check()["max_input_channels"] > 0
        return
    with pytest.raises(audio.AudioError) as err:
        mic.check()
    assert err.value.code == "no-microphone" and "no microphone found" in str(err.value)


def test_mix_at_snr_hits_the_requested_level(data):
    speech, _ = audio.load_audio(data("speech", "librispeech_251-137823-0003_another_engineer.wav"))
    noise, _ = audio.load_audio(data("noise", "car_interior_rumble_2.wav"))
    mixed = audio.mix_at_snr(speech, noise, 10.0)
    assert mixed.shape == speech.shape
    residual = mixed.astype(np.float64) - speech
    active = np.abs(speech) > 0.02 * np.abs(speech).max()
    snr = 10 * np.log10(np.mean(speech[active].astype(np.float64) ** 2) / np.mean(residual ** 2))
    assert abs(snr - 10.0) < 0.5


def test_probe_rejects_missing_empty_and_unreadable_files_without_decoding_them(data, tmp_path):
    import soundfile as sf

    audio.probe(data("speech", "speechcmd_yes.wav"))  # a real recording passes
    audio.FileSource(data("speech", "speechcmd_yes.wav")).check()
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio\n" * 50)
    for path, code in ((tmp_path / "nope.wav", "audio-missing"), (empty, "audio-empty"), (junk, "audio-unreadable")):
        with pytest.raises(audio.AudioError) as err:
            audio.FileSource(path).check()
        assert err.value.code == code and str(path) in err.value.message


def test_a_mic_value_that_names_a_file_is_taken_as_one(tmp_path):
    assert audio.looks_like_file(str(tmp_path / "question.wav"))  # not there: still a file, not a device
    assert audio.looks_like_file("question.flac") and audio.looks_like_file("./q")
    assert not audio.looks_like_file("USB Audio Device") and not audio.looks_like_file("2")
