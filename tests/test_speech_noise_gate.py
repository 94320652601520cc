"""No words from noise: the gate over Whisper's segment scores (pure), and real road noise through
the real VAD + Whisper tiny.en + lane giving no transcript, intent or ask-back."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle_assist import config
from vehicle_assist.messages import Utterance
from vehicle_assist.speech import activation, asr, audio, lane, vad
from vehicle_assist.speech.asr import NoiseGate, SegmentScore, gate_segments, noise_reason

GATE = NoiseGate()


def seg(text="Slow down.", logprob=-0.2, no_speech=0.05, ratio=1.1):
    return SegmentScore(text, logprob, no_speech, len(text), ratio)


def test_clear_speech_passes():
    assert noise_reason(seg(), GATE) is None


@pytest.mark.parametrize("s, reason", [
    (seg("Thank you.", logprob=-0.9, no_speech=0.55), "no-speech"),
    (seg("You", logprob=-1.5, no_speech=0.2), "unsure"),
    (seg("you you you you you you you you you you you you", ratio=4.0), "repetitive"),
])
def test_hallucination_shapes_are_noise(s, reason):
    assert noise_reason(s, GATE) == reason


def test_no_speech_prob_alone_is_not_enough_when_whisper_is_sure_of_the_words():
    assert noise_reason(seg("Mute the alerts.", logprob=-0.3, no_speech=0.7), GATE) is None


def test_disabled_gate_passes_everything():
    assert noise_reason(seg("You", logprob=-3.0, no_speech=0.9, ratio=5.0), NoiseGate(enabled=False)) is None


def test_gate_keeps_words_and_reports_why_nothing_was_left():
    kept, reason = gate_segments([seg("Thank you.", logprob=-0.9, no_speech=0.55), seg("Mute alerts.")], GATE)
    assert [s.text for s in kept] == ["Mute alerts."] and reason == ""
    kept, reason = gate_segments([seg("Thank you.", logprob=-0.9, no_speech=0.55)], GATE)
    assert kept == [] and reason == "no-speech"


def test_gated_transcript_has_no_text_and_the_reason():
    utt = Utterance(0, 10, np.zeros(1600, np.float32), 16000)
    t = asr._transcript(utt, [seg("Thank you.", logprob=-1.5, no_speech=0.3)], "x", 0, GATE)
    assert (t.text, t.rejected, t.confidence) == ("", "unsure", 0.0)


def test_shipped_config_turns_the_gate_on():
    opts = asr.AsrOptions.from_settings(config.load_app().speech.asr)
    assert opts.noise_gate.enabled and opts.noise_gate == NoiseGate()


def test_lane_stays_silent_on_a_gated_transcript():
    class Hallucinating:
        name = "fake"
        options = asr.AsrOptions(noise_gate=GATE)

        def transcribe(self, utt):
            return asr._transcript(utt, [seg("Thank you.", logprob=-1.4, no_speech=0.4)], self.name, 0, GATE)

    gate = activation.Gate(activation.PUSH_TO_TALK)
    gate.pressed = True
    heard = lane.hear(Utterance(0, 10, np.zeros(1600, np.float32), 16000), Hallucinating(), gate)
    assert heard.intent is None and heard.ask_back is None and heard.transcript.rejected == "unsure"


@pytest.mark.slow
def test_real_road_noise_gives_no_transcript_intent_or_answer(data):
    """Real recorded car noise, with 20 dB level jumps (which open VAD utterances) and as whole
    3 s windows (a held push-to-talk button): Whisper tiny.en with the shipped settings and gate."""
    settings = config.load_app().speech
    recogniser = asr.load_backend("faster-whisper", asr.AsrOptions.from_settings(settings.asr))
    gate = activation.Gate(activation.PUSH_TO_TALK)
    gate.pressed = True
    pcm, _ = audio.load_audio(data("noise", "car_interior_rumble_2.wav"))
    stepped = np.concatenate([pcm * 0.1, pcm, pcm * 0.1, pcm])
    utts = vad.segment(stepped, options=vad.VadOptions.from_settings(settings.vad))
    utts += [Utterance(0, 0, pcm[i:i + 48000], 16000) for i in range(0, len(pcm) - 48000 + 1, 48000)]
    assert len(utts) >= 3
    for u in utts:
        heard = lane.hear(u, recogniser, gate, settings.asr.min_confidence)
        assert heard.transcript.text == "" and heard.intent is None and heard.ask_back is None, heard.transcript


@pytest.mark.slow
def test_the_gate_keeps_short_spoken_commands_in_road_noise(data):
    """The other side: short real words (Piper voice) in real car noise at 5 dB are not taken for noise."""
    from vehicle_assist.speech.tts import load_renderer

    settings = config.load_app().speech
    recogniser = asr.load_backend("faster-whisper", asr.AsrOptions.from_settings(settings.asr))
    piper = load_renderer("piper")
    noise, _ = audio.load_audio(data("noise", "car_interior_rumble_1.wav"))
    for text in ("Louder.", "Stop talking.", "Mute the alerts.", "Say that again."):
        r = piper.render(text)
        pcm = np.concatenate([np.zeros(8000, np.float32), audio.resample(r.pcm, r.sample_rate), np.zeros(8000, np.float32)])
        t = recogniser.transcribe(Utterance(0, 0, audio.mix_at_snr(pcm, noise, 5.0), 16000))
        assert t.rejected == "" and t.text, (text, t)
