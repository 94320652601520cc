"""The VAD's noise-adaptive front end (speech.vad.subtract): spectral subtraction only when the tracked noise
floor is high; clean audio keeps the shipped energy rule exactly. Real speech, real road noise."""

from __future__ import annotations

import numpy as np

from vehicle_assist import config
from vehicle_assist.speech import audio, vad

from tests.test_speech_vad import SR, _pad, routine, rumble  # noqa: F401 (fixtures)


def _run(pcm: np.ndarray, options: vad.VadOptions):
    seg = vad.VadSegmenter(options)
    utts, engaged = [], []
    for i in range(0, len(pcm), SR // 10):
        utts += [e.utterance for e in seg.process(pcm[i:i + SR // 10], i / SR) if e.utterance is not None]
        engaged.append(seg.subtracting)
    utts += [e.utterance for e in seg.flush(len(pcm) / SR) if e.utterance is not None]
    return utts, seg, engaged


def _shipped() -> vad.VadOptions:
    return vad.VadOptions.from_settings(config.load_app().speech.vad)


def test_clean_speech_keeps_the_shipped_path(routine):
    pcm = _pad(routine, 1.0, 1.5)
    on = _shipped().__class__(**{**_shipped().__dict__, "subtract": True})
    off = _shipped().__class__(**{**_shipped().__dict__, "subtract": False})
    got, seg, _ = _run(pcm, on)
    want, _, _ = _run(pcm, off)
    assert seg.subtract_frames == 0
    assert [(u.t_start_ns, u.t_end_ns) for u in got] == [(u.t_start_ns, u.t_end_ns) for u in want]
    assert all(np.array_equal(a.pcm, b.pcm) for a, b in zip(got, want))


def test_speech_at_0_db_road_noise_engages_the_subtraction_and_is_found(routine, rumble):
    opts = _shipped().__class__(**{**_shipped().__dict__, "subtract": True})
    pcm = audio.mix_at_snr(_pad(routine, 1.5, 1.5), rumble, 0.0)
    utts, seg, engaged = _run(pcm, opts)
    assert seg.subtract_frames > 0.8 * len(pcm) / SR / seg.frame_s  # engaged on (nearly) every frame
    assert engaged[-1]
    assert len(utts) >= 1 and sum(len(u.pcm) for u in utts) / SR >= 2.0
    assert min(u.t_start_ns for u in utts) / 1e9 >= 0.8  # not triggered by the noise before the speech
    assert _run(rumble[: 6 * SR] * np.float32(audio_rms_scale(pcm, rumble)), opts)[0] == []


def audio_rms_scale(mixed: np.ndarray, noise: np.ndarray) -> float:
    """The gain that puts the noise alone at the level it has in ``mixed``'s lead (its first second)."""
    return float(np.sqrt(np.mean(mixed[:SR] ** 2) / np.mean(noise[:SR] ** 2)))


def test_the_switch_releases_when_the_noise_falls(rumble):
    opts = _shipped().__class__(**{**_shipped().__dict__, "subtract": True})
    frames = rumble[: 4 * SR].reshape(-1, SR // 50)
    band_db = float(np.median(vad.band_energy_db(frames, SR)))
    loud = rumble[: 4 * SR] * np.float32(10 ** ((opts.subtract_engage_dbfs + 10 - band_db) / 20))  # 10 dB over the switch
    quiet = loud * np.float32(10 ** (-30 / 20))  # 30 dB down: a quiet cabin, 20 dB under the switch
    _, seg, engaged = _run(np.concatenate([loud, quiet]), opts)
    assert engaged[len(engaged) // 4] and not engaged[-1]
