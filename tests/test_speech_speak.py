"""The one speaker: sentence by sentence through the real renderer into the real audio arbiter, at the
driver's speech rate."""

from __future__ import annotations

import pytest

from vehicle_assist.audio_out import AudioArbiter, WavSink
from vehicle_assist.messages import SpeechRequest, Tier
from vehicle_assist.speech.speak import Speaker
from vehicle_assist.speech.tts import TTSRenderer

ANSWER = "Keep at least a two-second gap. Double it on wet roads. Leave more room in fog."


@pytest.fixture(scope="module")
def renderer() -> TTSRenderer:
    return TTSRenderer()


def test_each_sentence_reaches_the_arbiter_in_order(tmp_path, renderer):
    sink = WavSink(tmp_path / "out.wav", realtime=False)
    with AudioArbiter(sink) as arbiter:
        Speaker(arbiter, renderer).say(ANSWER, t_ns=7, source="advisory")
        assert arbiter.wait_idle(20.0)
    texts = [s.request.text for s in sink.segments]
    assert texts == ["Keep at least a two-second gap.", "Double it on wet roads.", "Leave more room in fog."]
    assert all(s.completed and len(s.pcm) > 0.3 * sink.sample_rate for s in sink.segments)
    assert all(s.request.tier == Tier.ADVISORY and s.request.t_ns == 7 for s in sink.segments)


class PreemptAfter:
    """The real renderer; an alert arrives (a real ALERT request) right after the n-th sentence is rendered."""

    def __init__(self, renderer: TTSRenderer, arbiter: AudioArbiter, n: int) -> None:
        self.renderer, self.arbiter, self.n, self.count = renderer, arbiter, n, 0

    def render(self, text, rate=None):
        r = self.renderer.render(text, rate)
        self.count += 1
        if self.count == self.n:
            alert = self.renderer.render("Brake!")
            self.arbiter.say(SpeechRequest(0, "Brake!", Tier.ALERT, pcm=alert.pcm, sample_rate=alert.sample_rate))
        return r


def test_an_alert_stops_the_rest_of_the_answer(tmp_path, renderer):
    sink = WavSink(tmp_path / "out.wav", realtime=True)
    with AudioArbiter(sink) as arbiter:
        hook = PreemptAfter(renderer, arbiter, n=2)
        Speaker(arbiter, hook).say(ANSWER)
        assert arbiter.wait_idle(20.0)
    assert hook.count == 2  # the third sentence was never rendered
    texts = [s.request.text for s in sink.segments]
    assert "Brake!" in texts and "Leave more room in fog." not in texts


def test_a_stale_cancel_flag_does_not_silence_a_new_answer(tmp_path, renderer):
    sink = WavSink(tmp_path / "out.wav", realtime=False)
    with AudioArbiter(sink) as arbiter:
        arbiter.preempt()  # an earlier alert left the flag set
        assert arbiter.cancel_event.is_set()
        Speaker(arbiter, renderer).say("First sentence. Second sentence.")
        assert arbiter.wait_idle(20.0)
    assert [s.request.text for s in sink.segments] == ["First sentence.", "Second sentence."]


def test_first_sentence_renders_fast(renderer):
    renderer.render("Warm up.")
    times = [renderer.render("Keep at least a two-second gap.").render_ms for _ in range(3)]
    assert min(times) < 100.0


def test_the_speech_rate_slows_every_sentence(tmp_path, renderer):
    sink = WavSink(tmp_path / "out.wav", realtime=False)
    with AudioArbiter(sink) as arbiter:
        speaker = Speaker(arbiter, renderer, rate=175)
        speaker.say(ANSWER)
        speaker.rate = 125  # "speak more slowly", twice
        speaker.say(ANSWER)
        speaker("Leave more room in fog.")  # the advisory lane's sentence speaker too
        assert arbiter.wait_idle(30.0)
    lengths = [len(s.pcm) for s in sink.segments]
    normal, slow = lengths[:3], lengths[3:6]
    assert all(b > 1.2 * a for a, b in zip(normal, slow))
    assert lengths[6] > 1.2 * normal[2]


class NiceProbe:
    """The real renderer; notes the niceness of the thread each sentence renders on."""

    def __init__(self, renderer: TTSRenderer) -> None:
        self.renderer, self.nice = renderer, []

    def render(self, text, rate=None):
        import os
        import threading

        self.nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return self.renderer.render(text, rate)


def test_rendering_at_lower_priority_keeps_the_callers_priority(tmp_path, renderer):
    import os

    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base + 5 > 19:
        pytest.skip("already at the lowest priority")
    probe = NiceProbe(renderer)
    sink = WavSink(tmp_path / "out.wav", realtime=False)
    with AudioArbiter(sink) as arbiter:
        Speaker(arbiter, probe, nice=5).say(ANSWER)
        assert arbiter.wait_idle(20.0)
    assert [s.request.text for s in sink.segments][0] == "Keep at least a two-second gap."
    assert probe.nice == [base + 5] * 3  # every sentence on the lowered thread
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the caller (perception's process) untouched
