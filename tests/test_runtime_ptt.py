"""Push-to-talk on a live (not held) microphone: the button opens the mic, its release ends the
utterance; a missing button degrades to the wake phrase. Real speech audio, real VAD and runtime;
ASR is a recorder of what reached it (the wiring is under test, not Whisper)."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import numpy as np

from vehicle_assist import config
from vehicle_assist.audio_out import NullSink
from vehicle_assist.clock import WallClock
from vehicle_assist.messages import AudioChunk
from vehicle_assist.runtime import Sinks, Sources, build
from vehicle_assist.speech.activation import ButtonEvent
from vehicle_assist.speech.audio import load_audio
from vehicle_assist.speech.buttons import KeyButton, open_button

import runtime_parts as rp  # noqa: E402

BLOCK = 1600  # 100 ms at 16 kHz


def live_mic(pcm, now_ns, at_chunk):
    """Chunks of real audio paced a little, firing ``at_chunk[i]`` events as chunk i goes out."""
    for i in range(0, len(pcm), BLOCK):
        ev = at_chunk.get(i // BLOCK)
        if ev is not None:
            ev.set()
            time.sleep(0.05)  # let the loop see the button before the next chunk
        yield AudioChunk(now_ns(), pcm[i:i + BLOCK])
        time.sleep(0.005)


class EventButton:
    def __init__(self, now_ns, press: threading.Event, release: threading.Event):
        self.now_ns, self.press, self.release = now_ns, press, release

    def events(self):
        self.press.wait(10)
        yield ButtonEvent(True, self.now_ns())
        self.release.wait(10)
        yield ButtonEvent(False, self.now_ns())


def run_with(tmp_path, button, at_chunk, pcm):
    clock = WallClock()
    asr = rp.RecordingASR()
    parts = rp.parts(advisor=False)
    parts.asr = asr
    src = Sources(audio=live_mic(pcm, clock.now_ns, at_chunk), button=button)
    rt = build(config.AppConfig(), src, clock, Sinks(NullSink(), tmp_path / "trip.jsonl"), parts)
    asyncio.run(rt.run(duration_s=15))
    return asr.heard


def test_press_opens_the_mic_and_release_ends_the_utterance(data, tmp_path):
    speech, _ = load_audio(data("speech", "librispeech_251-137823-0002_testing_routine.wav"))
    pcm = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000, np.float32)])
    press, release = threading.Event(), threading.Event()
    clock = WallClock()
    # pressed 0.5 s in (before the speech), released 1.5 s into the speech (mid-sentence)
    heard = run_with(tmp_path, EventButton(clock.now_ns, press, release), {5: press, 25: release}, pcm)
    assert len(heard) == 1
    dur = len(heard[0].pcm) / 16000
    assert 1.0 <= dur <= 2.0 < len(speech) / 16000  # cut at the release, not at the speech's own end


def test_without_a_press_nothing_is_heard(data, tmp_path):
    speech, _ = load_audio(data("speech", "librispeech_251-137823-0002_testing_routine.wav"))
    never = threading.Event()
    heard = run_with(tmp_path, EventButton(WallClock().now_ns, never, never), {}, np.concatenate([speech, speech]))
    assert heard == []


def test_key_button_toggles_and_open_button_explains_what_is_missing(tmp_path):
    key = KeyButton(lambda: 7, io.StringIO("\n\n\n"))
    assert [e.pressed for e in key.events()] == [True, False, True]
    assert open_button("none", lambda: 0)[0] is None
    button, why = open_button("key", lambda: 0, io.StringIO(""))  # not a terminal
    assert button is None and "terminal" in why
    button, why = open_button(f"gpio:{tmp_path}/absent", lambda: 0)
    assert button is None and "cannot be read" in why
    line = tmp_path / "value"
    line.write_text("0")
    button, why = open_button(f"gpio:{line}", lambda: 0)
    assert why is None
    events = button.events()
    line.write_text("1")
    assert next(events).pressed is True
    line.write_text("0")
    assert next(events).pressed is False
    button.close()
