"""Commands rescored by sound (speech.rescore): the pure choice of readings, and the lane with a scorer."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle_assist.messages import Transcript, Utterance
from vehicle_assist.speech import activation, intents, lane, rescore

ON = rescore.RescoreOptions(enabled=True, max_candidates=3, min_similarity=0.6, margin=3.0)


def test_every_example_is_its_command_as_written():
    """A chosen reading is acted on as written: each example must match its command's pattern whole."""
    table = intents.load_table()
    for name, examples in table.table.examples.items():
        for ex in examples:
            assert intents.command_as_written(ex, table) == name, ex


@pytest.mark.parametrize("text,route", [
    ("Louder.", "written"), ("Wider.", "sound"), ("What is the speed limit?", "question"), ("Thank you.", "empty")])
def test_route(text, route):
    assert rescore.route(text) == route


def test_candidates_keep_fillers_and_the_duration():
    c = rescore.candidates("Hey car, wider please.", n=3)
    assert [x.command for x in c][:1] and all(x.text.startswith("hey car ") and x.text.endswith(" please") for x in c)
    assert len({x.command for x in c}) == len(c) == 3  # one example per command
    m = rescore.candidates("New the alerts for ten minutes.", n=3)
    assert [x.command for x in m] == ["mute"] and m[0].text.endswith("for ten minutes")


def test_candidates_never_say_the_opposite():
    assert all(x.example != "turn it up" for x in rescore.candidates("Turn it down, then.", n=8))
    assert all("up" not in x.example.split() for x in rescore.candidates("Volume down now.", n=8))


def test_wants_rescore_only_uncertain_readings():
    assert rescore.wants_rescore("Wider.", ON)  # louder by sound only
    assert rescore.wants_rescore("To beat more quietly.", ON)  # a question near "speak more quietly"
    assert not rescore.wants_rescore("Louder.", ON)  # as written: acts at once
    assert not rescore.wants_rescore("What is the speed limit on a motorway?", ON)  # opens with a question word
    assert not rescore.wants_rescore("The car behind is flashing its lights at me.", ON)  # long: no command
    assert not rescore.wants_rescore("Wider.", rescore.RescoreOptions(enabled=False))


def test_choose_takes_the_best_reading_within_the_margin():
    q, l = rescore.Candidate("quieter", "quieter", "quieter", 0.6), rescore.Candidate("louder", "louder", "louder", 0.8)
    assert rescore.choose(-2.0, [(l, -9.0), (q, -4.0)], 3.0) == q
    assert rescore.choose(-2.0, [(l, -9.0), (q, -5.5)], 3.0) is None
    assert rescore.choose(-2.0, [], 3.0) is None


class Scorer:
    """An ASR stand-in that scores readings from a table (the free transcript's reading first)."""

    name = "scorer"

    def __init__(self, text: str, scores: dict[str, float]) -> None:
        self.text, self.scores, self.calls = text, scores, []

    def transcribe(self, utt):
        return Transcript(utt.t_end_ns, self.text, 0.9, self.name, 1.0, 100.0)

    def score_texts(self, utt, texts):
        self.calls.append(texts)
        return [self.scores.get(t, -50.0) for t in texts]


def _utt():
    return Utterance(0, 10**9, np.zeros(16000, np.float32), 16000)


def test_lane_takes_the_command_the_audio_supports():
    asr = Scorer("Wider.", {"Wider.": -2.0, "Quieter.": -3.5, "Louder.": -12.0})
    heard = lane.hear(_utt(), asr, activation.Gate(), rescore_opts=ON)
    assert heard.intent.name == "quieter" and heard.ask_back is None
    assert asr.calls and asr.calls[0][0] == "Wider."
    plain = lane.hear(_utt(), asr, activation.Gate())  # switched off: the fuzzy fallback as before
    assert plain.intent.name == "louder"


def test_lane_asks_back_on_an_unconfirmed_command_by_sound():
    asr = Scorer("Wider.", {"Wider.": -2.0})
    heard = lane.hear(_utt(), asr, activation.Gate(), rescore_opts=ON)
    assert heard.intent is None and heard.ask_back
    keep = lane.hear(_utt(), asr, activation.Gate(), rescore_opts=rescore.RescoreOptions(enabled=True, sound_only="keep"))
    assert keep.intent.name == "louder"


def test_lane_keeps_the_wake_phrase_in_every_reading():
    asr = Scorer("Hey car, wider.", {"Hey car, wider.": -3.0, "Hey car, quieter.": -4.0})
    gate = activation.Gate(activation.WAKE_PHRASE)
    heard = lane.hear(_utt(), asr, gate, rescore_opts=ON)
    assert heard.intent.name == "quieter"
    assert all(t.startswith("Hey car,") for t in asr.calls[0])


def test_a_command_as_written_is_not_rescored():
    asr = Scorer("Louder.", {})
    assert lane.hear(_utt(), asr, activation.Gate(), rescore_opts=ON).intent.name == "louder"
    assert asr.calls == []


def test_keeps_a_command_by_sound_the_audio_prefers():
    louder, quieter = rescore.Candidate("louder", "louder", "louder", 0.8), rescore.Candidate("quieter", "quieter", "quieter", 0.6)
    assert rescore.keeps("louder", [(louder, -9.0), (quieter, -15.0)], 2.0)
    assert not rescore.keeps("louder", [(louder, -10.1), (quieter, -10.1)], 2.0)  # "Wider.": either, so ask
    assert rescore.keeps("louder", [(louder, -20.0)], 2.0)  # no rival reading (mute with a duration)
    assert not rescore.keeps("louder", [(quieter, -3.0)], 2.0)


def test_lane_keeps_a_command_by_sound_with_a_clear_lead():
    asr = Scorer("Wider.", {"Wider.": -2.0, "Louder.": -9.0, "Quieter.": -15.0})
    heard = lane.hear(_utt(), asr, activation.Gate(), rescore_opts=ON)
    assert heard.intent.name == "louder" and heard.ask_back is None


def test_an_unsure_transcript_acts_only_on_a_confirmed_command_reading():
    unsure = type("Unsure", (Scorer,), {"transcribe": lambda self, utt: Transcript(utt.t_end_ns, self.text, 0.3, "s", 1.0, 1.0)})
    asr = unsure("Equite.", {"Equite.": -2.2, "Be quiet.": -3.7, "Quieter.": -17.2})
    heard = lane.hear(_utt(), asr, activation.Gate(), min_confidence=0.45, rescore_opts=ON)
    assert heard.intent.name == "stop" and heard.ask_back is None  # the audio says "Be quiet."
    asked = lane.hear(_utt(), unsure("Equite.", {"Equite.": -2.2}), activation.Gate(), min_confidence=0.45, rescore_opts=ON)
    assert asked.intent is None and asked.ask_back
    plain = lane.hear(_utt(), asr, activation.Gate(), min_confidence=0.45)  # switched off: asked back as before
    assert plain.intent is None and plain.ask_back


def test_the_free_reading_keeps_its_apostrophes():
    assert rescore.styled(rescore.as_heard("It's lower.")) == "It's lower."
    asr = Scorer("It's lower.", {"It's lower.": -2.5, "Speak slower.": -8.4, "Louder.": -13.2})
    lane.hear(_utt(), asr, activation.Gate(), rescore_opts=ON)
    assert asr.calls[0][0] == "It's lower."
