"""The audio arbiter: block-wise writing, (tier, seq) order, alert pre-emption within one block."""

from __future__ import annotations

import threading
import wave

import numpy as np
import pytest

from vehicle_assist import clock
from vehicle_assist.audio_out import AudioArbiter, AudioOutError, NullSink, WavSink, open_sink, resample
from vehicle_assist.messages import SpeechRequest, Tier

SR = 16000


def tone(seconds: float, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def req(text: str, seconds: float, tier: Tier = Tier.ADVISORY, freq: float = 440.0) -> SpeechRequest:
    return SpeechRequest(t_ns=0, text=text, tier=tier, pcm=tone(seconds, freq), sample_rate=SR)


class CountingSink(NullSink):
    """A paced null sink that numbers every block and remembers which request it belonged to."""

    def __init__(self) -> None:
        super().__init__(SR, realtime=True)
        self.blocks: list[str] = []
        self.current = ""
        self.lock = threading.Lock()

    def begin(self, r: SpeechRequest) -> None:
        self.current = r.text

    def write(self, block: np.ndarray) -> None:
        with self.lock:
            self.blocks.append(self.current)


class Events:
    def __init__(self, arb: AudioArbiter) -> None:
        self.log: list[tuple[str, str, int]] = []
        self.started = threading.Event()
        arb.add_listener(self.on)

    def on(self, kind: str, r: SpeechRequest, t: int) -> None:
        self.log.append((kind, r.text, t))
        if kind == "start":
            self.started.set()

    def kinds(self, text: str) -> list[str]:
        return [k for k, t, _ in self.log if t == text]


def test_wav_sink_gets_everything_in_order(tmp_path):
    sink = WavSink(tmp_path / "out.wav", sample_rate=SR, realtime=False)
    arb = AudioArbiter(sink, block_ms=20).start()
    a, b = req("first", 0.3, freq=300), req("second", 0.2, freq=600)
    arb.say(a)
    arb.say(b)
    assert arb.wait_idle(5.0)
    arb.close()
    assert [s.request.text for s in sink.segments] == ["first", "second"]
    assert all(s.completed for s in sink.segments)
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert w.getframerate() == SR
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    expected = np.concatenate([a.pcm, b.pcm])
    assert len(pcm) == len(expected)
    assert np.max(np.abs(pcm - expected)) < 1e-3


def test_alert_preempts_advisory_within_one_block():
    sink = CountingSink()
    arb = AudioArbiter(sink, block_ms=20).start()
    ev = Events(arb)
    arb.say(req("advisory", 3.0))
    assert ev.started.wait(2.0)
    assert arb.is_speaking()
    threading.Event().wait(0.2)  # let a few advisory blocks play
    with sink.lock:
        blocks_before = len(sink.blocks)
    t_say = clock.perf_ns()
    arb.say(req("alert", 0.3, Tier.ALERT, freq=880))
    assert arb.wait_idle(5.0)
    arb.close()
    first_alert = sink.blocks.index("alert")
    # at most the block already in flight when say() returned is advisory audio; the next is the alert
    assert first_alert - blocks_before <= 1
    assert "advisory" not in sink.blocks[first_alert:]
    assert ev.kinds("advisory") == ["start", "preempted"]
    assert ev.kinds("alert") == ["start", "end"]
    t_alert = next(t for k, x, t in ev.log if k == "start" and x == "alert")
    assert (t_alert - t_say) / 1e6 < 20 + 80  # one block, plus scheduling slack on a loaded CPU
    assert arb.cancel_event.is_set()


def test_a_higher_priority_alert_stops_a_lower_one():
    """'Brake!' never waits behind a system alert's phrase: a lower-priority alert playing is stopped
    within a block and one queued is dropped; one of equal priority waits its turn."""
    sink = CountingSink()
    arb = AudioArbiter(sink, block_ms=20).start()
    ev = Events(arb)
    slow = SpeechRequest(0, "lagging", Tier.ALERT, priority=60, pcm=tone(2.0), sample_rate=SR)
    arb.say(slow)
    assert ev.started.wait(2.0)
    arb.say(SpeechRequest(0, "minor", Tier.ALERT, priority=40, pcm=tone(0.5), sample_rate=SR))
    t_say = clock.perf_ns()
    arb.say(SpeechRequest(0, "same", Tier.ALERT, priority=100, pcm=tone(0.1), sample_rate=SR))
    arb.say(SpeechRequest(0, "brake", Tier.ALERT, priority=100, pcm=tone(0.3, 880), sample_rate=SR))
    assert arb.wait_idle(5.0)
    arb.close()
    assert ev.kinds("lagging") == ["start", "preempted"] and ev.kinds("minor") == ["dropped"]
    assert [t for k, t, _ in ev.log if k == "start"] == ["lagging", "same", "brake"]  # equal priority: in turn
    t_same = next(t for k, x, t in ev.log if k == "start" and x == "same")
    assert (t_same - t_say) / 1e6 < 20 + 80  # within a block of the higher alert's arrival, plus slack


def test_alert_flushes_queued_advisories_and_cancel_clears_on_new_advisory():
    """After a pre-emption, late sentences of the pre-empted answer are dropped; a new answer plays."""
    arb = AudioArbiter(NullSink(SR, realtime=True), block_ms=20).start()
    ev = Events(arb)
    arb.say(req("adv1", 1.0))
    arb.say(req("adv2", 1.0))
    assert ev.started.wait(2.0)
    arb.say(req("alert", 0.1, Tier.ALERT))
    assert arb.wait_idle(5.0)
    assert ev.kinds("adv2") == ["dropped"]
    assert ev.kinds("adv1")[-1] == "preempted"
    assert arb.cancel_event.is_set()
    arb.say(req("adv1-late", 0.05))  # rendered while the alert came: part of the pre-empted answer
    assert arb.cancel_event.is_set()
    arb.begin_advisory()
    assert not arb.cancel_event.is_set()
    arb.say(req("adv3", 0.05))
    assert arb.wait_idle(5.0)
    arb.close()
    assert ev.kinds("adv1-late") == ["dropped"]
    assert ev.kinds("adv3") == ["start", "end"]


def test_queue_order_is_tier_then_arrival():
    arb = AudioArbiter(NullSink(SR, realtime=False), block_ms=20)
    ev = Events(arb)
    # queue before the writer starts, so order is decided by the queue alone
    arb.say(req("adv-a", 0.05))
    arb.say(req("adv-b", 0.05))
    arb.say(req("alert-1", 0.05, Tier.ALERT))  # flushes adv-a, adv-b
    arb.say(req("alert-2", 0.05, Tier.ALERT))
    arb.begin_advisory()  # a new answer, after the alerts
    arb.say(req("adv-c", 0.05))
    arb.start()
    assert arb.wait_idle(5.0)
    arb.close()
    starts = [t for k, t, _ in ev.log if k == "start"]
    assert starts == ["alert-1", "alert-2", "adv-c"]
    assert ev.kinds("adv-a") == ["dropped"] and ev.kinds("adv-b") == ["dropped"]


def test_preempt_stops_advisory_without_an_alert():
    arb = AudioArbiter(NullSink(SR), block_ms=20).start()
    ev = Events(arb)
    arb.say(req("long", 5.0))
    assert ev.started.wait(2.0)
    arb.preempt()
    assert arb.wait_idle(1.0)
    arb.close()
    assert ev.kinds("long") == ["start", "preempted"]
    assert not arb.is_speaking()


def test_empty_request_is_dropped_not_played():
    arb = AudioArbiter(NullSink(SR, realtime=False)).start()
    ev = Events(arb)
    arb.say(SpeechRequest(t_ns=0, text="nothing", pcm=None))
    arb.say(SpeechRequest(t_ns=0, text="empty", pcm=np.zeros(0, np.float32)))
    assert arb.wait_idle(1.0)
    arb.close()
    assert ev.kinds("nothing") == ["dropped"] and ev.kinds("empty") == ["dropped"]


def test_resample_and_gain(tmp_path):
    out = resample(tone(1.0, sr=22050), 22050, SR)
    assert abs(len(out) - SR) <= 1
    sink = WavSink(tmp_path / "g.wav", sample_rate=SR, realtime=False)
    arb = AudioArbiter(sink).start()
    arb.set_gain(0.5)
    arb.say(SpeechRequest(t_ns=0, text="x", pcm=tone(0.1, sr=22050), sample_rate=22050))
    assert arb.wait_idle(2.0)
    arb.close()
    seg = sink.segments[0].pcm
    assert abs(len(seg) - 1600) <= 1
    assert 0.13 < np.max(np.abs(seg)) < 0.17  # 0.3 amplitude at gain 0.5


def test_open_sink_specs(tmp_path):
    assert isinstance(open_sink("null"), NullSink)
    w = open_sink(f"wav:{tmp_path / 'a.wav'}")
    assert isinstance(w, WavSink)
    w.close()
    with pytest.raises(AudioOutError) as err:
        open_sink("speaker")
    assert err.value.code == "bad-sink"
    with pytest.raises(AudioOutError):
        AudioArbiter(NullSink(), block_ms=0)


@pytest.mark.slow
def test_real_tts_phrase_through_wav(tmp_path):
    from vehicle_assist.speech.tts import load_tts

    renderer = load_tts()
    r = renderer.render("Brake! Vehicle ahead.")
    assert r.duration_s > 0.5
    sink = WavSink(tmp_path / "alert.wav", sample_rate=22050, realtime=False)
    arb = AudioArbiter(sink).start()
    arb.say(SpeechRequest(t_ns=0, text=r.text, tier=Tier.ALERT, pcm=r.pcm, sample_rate=r.sample_rate))
    assert arb.wait_idle(5.0)
    arb.close()
    seg = sink.segments[0]
    assert seg.completed and len(seg.pcm) == len(resample(r.pcm, r.sample_rate, 22050))
    assert np.sqrt(np.mean(seg.pcm ** 2)) > 0.01  # real speech, not silence


def test_wav_sink_that_cannot_be_written_is_a_coded_error(tmp_path):
    with pytest.raises(AudioOutError) as err:
        open_sink("wav:/proc/no/such.wav")
    assert err.value.code == "wav-open-failed" and "/proc/no/such.wav" in err.value.message
    with pytest.raises(AudioOutError):
        WavSink(tmp_path)  # a folder, not a file


def test_device_error_names_no_command_line_option():
    from vehicle_assist import audio_out

    with pytest.raises(AudioOutError) as err:
        audio_out.SoundDeviceSink(device="no such output device 12345")
    assert err.value.code == "no-audio-device" and "--" not in err.value.message  # each command adds its own option
