"""Transcribing ahead (sixth round): the VAD offers the utterance as it would end once the speech has stopped
0.2 s (``pause`` events), and the runtime's voice lane starts Whisper on it while the trailing silence runs."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from vehicle_assist import config, triplog
from vehicle_assist.speech import vad

SR = 16000


def _tone(s: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 1000 * np.arange(int(s * SR)) / SR)).astype(np.float32)


def _events(pcm: np.ndarray, candidates: bool) -> list[vad.VadEvent]:
    seg = vad.VadSegmenter(vad.VadOptions(), SR, candidates=candidates)
    out = []
    for i in range(0, len(pcm), 1600):
        out += seg.process(pcm[i:i + 1600], i / SR)
    return out + seg.flush(len(pcm) / SR)


def test_the_candidate_is_the_utterance_the_end_event_carries():
    pcm = np.concatenate([np.zeros(SR, np.float32), _tone(0.8), np.zeros(SR, np.float32)])
    events = _events(pcm, candidates=True)
    assert [e.kind for e in events] == ["start", "pause", "end"]
    pause, end = events[1], events[2]
    assert pause.t_s == pytest.approx(1.8 + 0.2, abs=0.03) and end.t_s == pytest.approx(1.8 + 0.5, abs=0.03)
    c, u = pause.candidate, end.utterance
    assert (c.t_start_ns, c.t_end_ns) == (u.t_start_ns, u.t_end_ns) and np.array_equal(c.pcm, u.pcm)
    assert [e.kind for e in _events(pcm, candidates=False)] == ["start", "end"]  # off: the events as before


def test_speech_after_the_pause_makes_a_new_candidate_and_too_short_speech_none():
    pcm = np.concatenate([np.zeros(SR, np.float32), _tone(0.6), np.zeros(int(0.3 * SR), np.float32), _tone(0.6),
                          np.zeros(SR, np.float32)])
    events = _events(pcm, candidates=True)
    assert [e.kind for e in events] == ["start", "pause", "pause", "end"]  # the first pause was not the end
    assert len(events[1].candidate.pcm) < len(events[3].utterance.pcm)
    assert np.array_equal(events[2].candidate.pcm, events[3].utterance.pcm)
    blip = np.concatenate([np.zeros(SR, np.float32), _tone(0.14), np.zeros(SR, np.float32)])
    assert [e.kind for e in _events(blip, candidates=True)] == ["start", "discard"]  # never worth transcribing


@pytest.mark.slow
@pytest.mark.parametrize("ahead", [True, False])
def test_the_runtime_transcribes_a_command_before_the_vad_ends_it(tmp_path, ahead):
    """Piper's "Turn it down." through the runtime with the real VAD and Whisper tiny.en: with
    ``transcribe_ahead`` Whisper starts before the utterance is published (the VAD's end event) and runs once."""
    from vehicle_assist.audio_out import NullSink
    from vehicle_assist.clock import WallClock
    from vehicle_assist.messages import AudioChunk
    from vehicle_assist.runtime import Sinks, Sources, build
    from vehicle_assist.speech import asr, audio
    from vehicle_assist.speech.tts import load_renderer

    import runtime_parts as rp

    r = load_renderer("piper").render("Turn it down.")
    pcm = audio.resample(r.pcm, r.sample_rate, SR)
    pcm = np.concatenate([np.zeros(8000, np.float32), pcm, np.zeros(32000, np.float32)])
    cfg = config.AppConfig()
    cfg = cfg.model_copy(update={"speech": cfg.speech.model_copy(update={
        "asr": cfg.speech.asr.model_copy(update={"transcribe_ahead": ahead})})})
    clock = WallClock()

    def mic():
        for i in range(0, len(pcm), 1600):
            yield AudioChunk(clock.now_ns(), pcm[i:i + 1600])
            time.sleep(0.1)  # a live microphone's pace

    class Timed(asr.FasterWhisperASR):  # the real recogniser; when each call began, on the run's clock
        calls: list[int] = []

        def transcribe(self, utt):
            self.calls.append(clock.now_ns())
            return super().transcribe(utt)

    real = asr.load_backend("faster-whisper", asr.AsrOptions.from_settings(cfg.speech.asr))
    parts = rp.parts(advisor=False)
    parts.asr = Timed(real.model, real.options)
    trip = tmp_path / "trip.jsonl"
    rt = build(cfg, Sources(audio=mic(), audio_is_held=True), clock, Sinks(NullSink(), trip), parts)
    asyncio.run(rt.run(duration_s=20))
    _, records = triplog.read(trip)
    published = [r["t_ns"] for r in records if r.get("topic") == "utterances"]
    intents = [r["msg"]["name"] for r in records if r.get("topic") == "intents"]
    assert intents == ["quieter"] and len(published) == 1 and len(Timed.calls) == 1, (intents, published, Timed.calls)
    assert (Timed.calls[0] < published[0]) is ahead  # ~0.3 s before the end event (transcribed ahead), else after
