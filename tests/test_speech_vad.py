"""VAD: a pure function of audio and elapsed time, on real speech and real road noise."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle_assist.speech import audio, vad

SR = 16000


def _pad(pcm: np.ndarray, lead_s: float, tail_s: float) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead_s * SR), np.float32), pcm, np.zeros(int(tail_s * SR), np.float32)])


@pytest.fixture(scope="module")
def routine() -> np.ndarray:
    from tests.conftest import data_file

    return audio.load_audio(data_file("speech", "librispeech_251-137823-0002_testing_routine.wav"))[0]


@pytest.fixture(scope="module")
def rumble() -> np.ndarray:
    from tests.conftest import data_file

    return audio.load_audio(data_file("noise", "car_interior_rumble_1.wav"))[0]


def test_silence_gives_no_utterance():
    assert vad.segment(np.zeros(3 * SR, np.float32)) == []


def test_real_speech_after_silence_is_one_utterance_with_the_right_span(routine):
    pcm = _pad(routine, 1.0, 1.5)
    utts = vad.segment(pcm)
    assert len(utts) == 1
    u = utts[0]
    assert 0.6 <= u.t_start_ns / 1e9 <= 1.1  # speech starts at 1.0 s (+ pre-roll)
    assert u.t_end_ns / 1e9 >= 1.0 + 2.6  # the speech itself lasts ~2.8 s
    assert u.sample_rate == SR and u.pcm.dtype == np.float32


@pytest.mark.parametrize("snr_db", [10.0, 0.0])
def test_speech_in_road_noise_is_found_and_noise_alone_is_not(routine, rumble, snr_db):
    pcm = audio.mix_at_snr(_pad(routine, 1.5, 1.5), rumble, snr_db)
    utts = vad.segment(pcm)
    assert len(utts) >= 1
    covered = sum(len(u.pcm) for u in utts) / SR
    assert covered >= 2.0
    assert min(u.t_start_ns for u in utts) / 1e9 >= 0.8  # not triggered by the noise before the speech
    assert vad.segment(rumble[: 6 * SR]) == []


def test_end_comes_after_the_trailing_silence(routine):
    opts = vad.VadOptions(trailing_silence_s=0.5)
    seg = vad.VadSegmenter(opts)
    pcm = _pad(routine, 0.5, 2.0)
    events = []
    for i in range(0, len(pcm), 1600):
        events += seg.process(pcm[i:i + 1600], i / SR)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "end"]
    speech_end = 0.5 + len(routine) / SR
    end = events[1]
    assert speech_end - 0.6 <= end.t_s <= speech_end + opts.trailing_silence_s + 0.3
    assert end.reason == "silence"


def test_max_length_cuts_long_speech(routine):
    long = np.concatenate([routine] * 3)  # ~9 s of speech with short gaps
    utts = vad.segment(_pad(long, 0.5, 1.0), options=vad.VadOptions(max_utterance_s=3.0, trailing_silence_s=1.0))
    assert len(utts) >= 3
    assert all(len(u.pcm) / SR <= 3.0 + 1e-6 for u in utts)


def test_too_short_is_discarded():
    click = np.zeros(2 * SR, np.float32)
    t = np.arange(int(0.08 * SR)) / SR
    click[SR:SR + len(t)] = 0.5 * np.sin(2 * np.pi * 800 * t)
    seg = vad.VadSegmenter(vad.VadOptions(start_s=0.04, min_utterance_s=0.3))
    events = seg.process(click, 0.0) + seg.flush(2.0)
    assert [e.kind for e in events] == ["start", "discard"]
    assert events[0].onset_s == pytest.approx(1.0, abs=0.03)  # the first speech frame, not the pre-roll
    short = events[1].short  # the span is kept for the end of speech to join to a neighbour, flagged short
    assert events[1].utterance is None and short is not None and short.short
    assert short.t_start_ns / 1e9 <= 1.0 and np.abs(short.pcm).max() > 0.4


def test_same_audio_same_utterances_whatever_the_block_size(routine, rumble):
    pcm = audio.mix_at_snr(_pad(routine, 1.0, 1.0), rumble, 10.0)
    a = vad.segment(pcm, block_ms=30)
    b = vad.segment(pcm, block_ms=250)
    assert [(u.t_start_ns, u.t_end_ns) for u in a] == [(u.t_start_ns, u.t_end_ns) for u in b]


def test_origin_shifts_timestamps(routine):
    u0 = vad.segment(_pad(routine, 1.0, 1.0))[0]
    u1 = vad.segment(_pad(routine, 1.0, 1.0), origin_ns=5_000_000_000)[0]
    assert u1.t_start_ns - u0.t_start_ns == 5_000_000_000


def _stream(seg: vad.VadSegmenter, pcm: np.ndarray, t0: float, block: int = 1600) -> tuple[list, float]:
    events, t = [], t0
    for i in range(0, len(pcm), block):
        events += seg.process(pcm[i:i + block], t)
        t += len(pcm[i:i + block]) / SR
    return events, t


def _across_playback(routine: np.ndarray, after: np.ndarray, hold: bool, muted_s: float = 2.0):
    """Real speech cut at 1.5 s by 2 s of muted playback (not fed), then ``after``."""
    seg = vad.VadSegmenter()
    first, t = _stream(seg, _pad(routine[:int(1.5 * SR)], 1.0, 0.0), 0.0)
    if hold:
        seg.gated(muted_s)
    rest, t = _stream(seg, after, t + muted_s)
    return [e for e in first + rest + seg.flush(t) if e.utterance is not None]


def test_an_utterance_open_when_the_car_speaks_is_held_across_the_playback(routine):
    after = _pad(routine[int(1.5 * SR):], 0.3, 1.5)  # the driver goes on 0.3 s after the mic opens again
    held = _across_playback(routine, after, hold=True)
    assert len(held) == 1 and held[0].reason == "silence"
    u = held[0].utterance
    assert u.held_s == pytest.approx(2.0)
    assert abs(len(u.pcm) / SR - 0.3 - len(routine) / SR) < 0.7  # all of the speech, none of the muted span
    assert (u.t_end_ns - u.t_start_ns) / 1e9 == pytest.approx(len(u.pcm) / SR + 2.0, abs=0.03)  # real times
    assert 0.6 <= u.t_start_ns / 1e9 <= 1.1
    # before: the muted span counted as silence, the question was cut in two at the playback
    cut = _across_playback(routine, after, hold=False)
    assert len(cut) == 2 and all(e.utterance.held_s == 0 for e in cut)
    assert len(cut[0].utterance.pcm) / SR < 2.0


def test_a_held_utterance_ends_with_what_was_heard_when_the_driver_does_not_go_on(routine):
    events = _across_playback(routine, np.zeros(int(1.5 * SR), np.float32), hold=True)
    assert len(events) == 1
    u, ev = events[0].utterance, events[0]
    assert ev.t_s <= 1.0 + 1.5 + 2.0 + vad.VadOptions().trailing_silence_s + 0.05  # the usual trailing silence after
    assert len(u.pcm) / SR < 2.2 and u.held_s == pytest.approx(2.0)


def test_playback_with_no_utterance_open_changes_nothing(routine):
    seg = vad.VadSegmenter()
    _stream(seg, np.zeros(SR, np.float32), 0.0)
    seg.gated(2.0)
    events, t = _stream(seg, _pad(routine, 0.0, 1.5), 3.0)
    utts = [e.utterance for e in events + seg.flush(t) if e.utterance is not None]
    assert len(utts) == 1 and utts[0].held_s == 0.0 and utts[0].t_start_ns / 1e9 >= 2.7


def test_settled_says_up_to_when_every_onset_has_been_announced():
    """Sixth round: after silence the VAD is settled up to its latest audio; a speech frame that may still open
    an utterance holds it just before that frame; an open utterance, None."""
    def tone(s: float) -> np.ndarray:
        return (0.3 * np.sin(2 * np.pi * 1000 * np.arange(int(s * SR)) / SR)).astype(np.float32)

    seg = vad.VadSegmenter(vad.VadOptions(), SR)
    assert seg.settled_s() is None  # no audio yet
    seg.process(np.zeros(SR, np.float32), 0.0)
    assert seg.settled_s() == pytest.approx(1.0)
    assert seg.process(tone(0.04), 1.0) == []  # 40 ms of speech: no start yet, but one may follow
    settled = seg.settled_s()
    assert settled is not None and 0.99 < settled < 1.0
    seg.process(np.zeros(int(0.3 * SR), np.float32), 1.04)  # the blip left the start window: nothing pending
    assert seg.settled_s() == pytest.approx(1.34)
    events = seg.process(tone(0.5), 1.34)
    assert [e.kind for e in events] == ["start"] and seg.settled_s() is None
