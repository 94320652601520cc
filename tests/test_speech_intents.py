"""Intents (pure, table-driven) and what commands change (controls)."""

from __future__ import annotations

import pytest

from vehicle_assist import config
from vehicle_assist.messages import Intent
from vehicle_assist.speech import controls, intents


@pytest.mark.parametrize("text,name,slots", [
    ("Mute the alerts for ten minutes.", "mute", {"minutes": "10"}),
    ("Mute alerts for 5 minutes", "mute", {"minutes": "5"}),
    ("Hey car, mute the warnings for half an hour please", "mute", {"minutes": "30"}),
    ("mute the alerts for twenty five minutes", "mute", {"minutes": "25"}),
    ("Mute.", "mute", {"minutes": "10"}),
    ("Stop the alerts.", "mute", {"minutes": "10"}),
    ("Turn the alerts back on.", "unmute", {}),
    ("Unmute", "unmute", {}),
    ("Can you repeat that, please?", "repeat", {}),
    ("Say that again.", "repeat", {}),
    ("Louder!", "louder", {}),
    ("I can't hear you", "louder", {}),
    ("Volume down.", "quieter", {}),
    ("Speak slower, please.", "slower", {}),
    ("What was that?", "what_was_that", {}),
    ("What did you just say?", "what_was_that", {}),
    ("Stop talking.", "stop", {}),
    ("Never mind.", "stop", {}),
    # questions that contain command words stay questions
    ("What was that sign?", "question", {}),
    ("Should I slow down here?", "question", {}),
    ("Do I have to stop at an amber light?", "question", {}),
    ("How do I turn the fog lights on?", "question", {}),
    ("What is the speed limit on a motorway?", "question", {}),
    # nothing to act on
    ("", "empty", {}),
    ("  ...  ", "empty", {}),
    ("Thank you.", "empty", {}),
])
def test_classify(text, name, slots):
    got = intents.classify(text, 42)
    assert (got.name, dict(got.slots)) == (name, slots)
    assert got.t_ns == 42 and got.text == text


def test_fuzzy_fallback_catches_slips_on_short_commands_only():
    assert intents.classify("So down your speech.", 0).name == "slower"
    assert intents.classify("Silence Nailers for 20 minutes.", 0).slots == (("minutes", "20"),)
    long_question = "Can you tell me what the rule about box junctions says here?"
    assert intents.classify(long_question, 0).name == "question"


def test_a_match_by_sound_never_reverses_what_was_said():
    table = intents.load_table().table
    assert intents.contradicts("turn on the lights", "turn off the alerts", table)
    assert not intents.contradicts("turn off the lights", "turn off the alerts", table)
    assert not intents.contradicts("so down your speech", "slow down your speech", table)
    assert intents.classify("Turn on the lights.", 0).name == "question"  # was mute, by sound of "turn off the alerts"
    assert intents.classify("So down your speech.", 0).name == "slower"


def test_a_match_by_sound_never_guesses_between_commands_that_undo_each_other():
    assert intents.classify("A mute the alerts.", 0).name == "question"  # mute 0.96 / unmute 0.89 by sound: neither
    assert intents.classify("So the alerts.", 0).name == "question"
    assert intents.classify("So the alerts for ten minutes.", 0).name == "mute"  # a duration: only mute takes one
    assert intents.classify("Unmute the alerts.", 0).name == "unmute"  # as written: no guessing involved
    assert intents.classify("Silence Nailers for 20 minutes.", 0).slots == (("minutes", "20"),)


@pytest.mark.parametrize("heard,name", [
    ("Up more slowly.", "slower"),            # "Speak more slowly": the first word misheard
    ("To beat more quietly.", "quieter"),     # "Speak more quietly"
    ("And the alerts back on.", "unmute"),    # "Turn the alerts back on"
    ("More quickly.", "question"),            # the end must sound nearly the same: not "more quietly"
    ("The lorry is going more slowly.", "question"),  # longer than the command: a statement
    ("Is it going more slowly?", "question"),  # a question form never takes the fuzzy route
])
def test_a_command_with_its_first_word_misheard_is_found_by_its_end(heard, name):
    assert intents.classify(heard, 0).name == name


def test_an_end_shared_by_two_commands_names_neither():
    table = intents.load_table().table
    assert intents._command_by_tail("so the alerts", table) is None  # "mute the alerts" / "unmute the alerts"
    assert intents._command_by_tail("up more slowly", table) == "slower"


def test_classify_is_pure():
    a = intents.classify("Mute alerts for 5 minutes", 7)
    b = intents.classify("Mute alerts for 5 minutes", 7)
    assert a == b


def test_every_command_has_patterns_and_examples():
    table = intents.load_table().table
    assert set(table.intents) == set(intents.COMMANDS)
    assert set(table.examples) == set(intents.COMMANDS)
    for name, examples in table.examples.items():
        for ex in examples:  # each example is itself classified as its own intent
            assert intents.classify(ex, 0).name == name, ex


def test_bad_table_is_a_config_error(tmp_path):
    bad = tmp_path / "intents.yaml"
    bad.write_text("intents:\n  mute: ['(unclosed']\n")
    with pytest.raises(config.ConfigError, match="regular expression"):
        intents.load_table(bad)
    bad.write_text("intents:\n  dance: ['dance']\n")
    with pytest.raises(config.ConfigError, match="intents.dance"):
        intents.load_table(bad)


def test_controls_apply_commands_without_a_language_model():
    c = controls.VoiceControls()
    now = 1_000_000_000
    act = controls.apply(intents.classify("Mute the alerts for ten minutes", now), c, now)
    assert act.controls.muted(now + 9 * 60 * 10**9) and not act.controls.muted(now + 11 * 60 * 10**9)
    assert "10 minutes" in act.reply
    assert not controls.apply(Intent(now, "unmute", ""), act.controls, now).controls.muted(now)
    assert controls.apply(Intent(0, "louder", ""), c, 0).controls.gain > c.gain
    assert controls.apply(Intent(0, "quieter", ""), c, 0).controls.gain < c.gain
    assert controls.apply(Intent(0, "slower", ""), c, 0).controls.rate < c.rate
    assert controls.apply(Intent(0, "stop", ""), c, 0).effect == "stop_speaking"
    assert controls.apply(Intent(0, "question", "why"), c, 0).effect == "ask_advisory"


ESPEAK_MISHEARINGS = {"new to": "mute", "a new to": "unmute", "a new": "unmute", "and mute": "unmute",
                      "me alerts": "the alerts", "turn it out": "turn it down", "why are you doing": "quieter"}
"""Rows once learned from tiny.en on espeak-ng speech (dropped from configs/intents.yaml: they never
fired on natural speech); kept here to test the correction mechanism."""


def _with_mishearings():
    return intents.compile_table(intents.load_table().table.model_copy(update={"mishearings": ESPEAK_MISHEARINGS}))


@pytest.mark.parametrize("heard,name,slots", [
    # Whisper tiny.en's slips on espeak-ng speech (dev split)
    ("New to the alert for 10 minutes.", "mute", {"minutes": "10"}),
    ("A new...", "unmute", {}),
    ("And mute me alerts.", "unmute", {}),
    ("turn it out", "quieter", {}),
    ("Why are you doing?", "quieter", {}),
    # a question that contains a mishearing's words stays a question: the corrected text must match whole
    ("I'm new to driving, what should I know?", "question", {}),
    ("Is there a new speed limit here?", "question", {}),
    ("Why are you doing this?", "question", {}),
])
def test_known_mishearings_are_corrected_only_into_whole_commands(heard, name, slots):
    got = intents.classify(heard, 0, _with_mishearings())
    assert (got.name, dict(got.slots)) == (name, slots)
    assert got.text == heard  # the intent keeps what was heard


def test_correct_mishearings_rewrites_whole_words_longest_first():
    table = _with_mishearings().table
    assert intents.correct_mishearings("a new to the alerts", table) == "unmute the alerts"
    assert intents.correct_mishearings("new to the alerts", table) == "mute the alerts"
    assert intents.correct_mishearings("renew together", table) == "renew together"
    empty = intents.IntentTable(intents={"stop": ["stop"]})
    assert intents.correct_mishearings("new to", empty) == "new to"
    assert intents.load_table().table.mishearings == {"i mute": "unmute"}  # espeak rows dropped; one learned on natural speech (dev)


@pytest.mark.parametrize("heard, name", [
    ("I mute the alerts.", "unmute"),   # dev, Piper voice: "unmute" heard as "I mute"
    ("I mute.", "unmute"),
    ("Mute the alerts.", "mute"),
    ("I muted the radio, what now?", "question"),  # corrected text must be a whole command
])
def test_shipped_mishearing_rows(heard, name):
    assert intents.classify(heard, 0).name == name
