"""Activation: wake phrase matching, push-to-talk, and the self-hearing gate on the real arbiter."""

from __future__ import annotations


import pytest

from vehicle_assist.audio_out import AudioArbiter, NullSink
from vehicle_assist.messages import SpeechRequest, Tier
from vehicle_assist.speech import activation, intents
from vehicle_assist.speech.tts import TTSRenderer


@pytest.mark.parametrize("text,matched,remainder", [
    ("Hey car, what is the speed limit?", True, "what is the speed limit?"),
    ("Hey, car. Mute alerts.", True, "Mute alerts."),
    ("Heycar, stop.", True, "stop."),
    ("Hay car, louder", True, "louder"),
    ("Hey Kar, repeat that", True, "repeat that"),
    ("Hey car.", True, ""),
    # passengers, the radio, and questions that merely mention a car
    ("A car is behind me", False, None),
    ("The car in front is slow", False, None),
    ("Hey, can you help me?", False, None),
    ("Okay, carry on", False, None),
    ("Hey guys, look at that", False, None),
    ("", False, None),
])
def test_match_wake(text, matched, remainder):
    m = activation.match_wake(text, "hey car", 0.7)
    assert m.matched is matched
    if matched:
        assert m.remainder == remainder


@pytest.mark.parametrize("text,matched,remainder", [
    ("Hey Carter, louder.", True, "louder."),
    ("Okay car, what does this sign mean?", True, "what does this sign mean?"),
    ("OK car, stop.", True, "stop."),
    ("The car behind is flashing its lights, what does that mean?", False, None),
    ("Okay, carry on", False, None),
    ("A car, what is the speed limit here?", True, "what is the speed limit here?"),  # the Piper voice's "hey car"
    ("A-car. Repeat that.", True, "Repeat that."),
    ("A car is overtaking me, what should I do?", False, None),  # "a car," wakes only before a pause
])
def test_known_renderings_of_the_wake_phrase(text, matched, remainder):
    gate = activation.Gate(activation.WAKE_PHRASE, "hey car")  # the configured renderings of "hey car"
    assert gate.heard_as and "hey carter" in gate.heard_as
    d = gate.decide(text)
    assert d.accept is matched
    if matched:
        assert d.text == remainder
    assert not activation.Gate(activation.WAKE_PHRASE, "hey car", heard_as=()).decide("Hey Carter, louder.").accept
    assert activation.Gate(activation.WAKE_PHRASE, "computer").heard_as == ()


def test_gate_from_settings_takes_the_configured_renderings():
    from vehicle_assist import config

    settings = config.load_app().speech.activation.model_copy(update={"mode": activation.WAKE_PHRASE})
    gate = activation.Gate.from_settings(settings)
    assert gate.heard_as == tuple(settings.wake_heard_as["hey car"])
    assert gate.decide("Okay car, what does this sign mean?").accept


def test_a_rendering_with_a_comma_needs_punctuation_after_it():
    assert activation.match_wake("A car, louder", "hey car", 0.7, ("a car,",)).matched
    assert not activation.match_wake("A car overtook me", "hey car", 0.7, ("a car,",)).matched
    assert activation.match_wake("A car overtook me", "hey car", 0.7, ("a car",)).matched


@pytest.mark.parametrize("heard, accept, rest", [
    # dev transcripts of "Hey car, ..." in the Piper voice, heard without the pause
    ("A car speaks lower.", True, "speaks lower."),                     # a command by sound (slower)
    ("A car who has priority at this junction.", True, "who has priority at this junction."),  # a wh-question
    ("A car louder", True, "louder"),
    # statements about a car stay out
    ("A car is overtaking me.", False, None),
    ("A car is overtaking a lot on this road.", False, None),
    ("A car in front is braking.", False, None),
    ("A car which is parked on the pavement.", False, None),
    ("A car stopped ahead, what should I do?", False, None),
])
def test_without_the_pause_a_rendering_wakes_only_for_words_addressed_to_the_assistant(heard, accept, rest):
    m = activation.match_wake(heard, "hey car", 0.7, ("a car,",))
    assert m.matched == accept
    if accept:
        assert m.remainder == rest


def test_addressed_is_a_command_or_a_wh_question():
    assert activation.addressed("quieter, please") and activation.addressed("how do I join the motorway?")
    assert not activation.addressed("is overtaking on this road") and not activation.addressed("")


def test_wake_phrase_is_configurable():
    assert activation.match_wake("Computer, louder", "computer").matched
    assert not activation.match_wake("Hey car, louder", "computer").matched


def test_push_to_talk_listens_only_while_pressed():
    gate = activation.Gate(activation.PUSH_TO_TALK)
    button = activation.ScriptedButton([activation.ButtonEvent(True, 100), activation.ButtonEvent(False, 900)])
    assert not gate.listening(50)
    released = [gate.button(ev) for ev in button.events()]
    assert released == [False, True]
    assert not gate.listening(1000)
    gate.button(activation.ButtonEvent(True, 1100))
    assert gate.listening(1200)
    assert gate.decide("anything at all").accept  # push-to-talk needs no wake phrase


def test_hands_free_acts_only_on_the_wake_phrase():
    gate = activation.Gate(activation.WAKE_PHRASE, "hey car")
    assert gate.listening(0)
    d = gate.decide("Hey car, mute the alerts")
    assert d.accept and d.text == "mute the alerts" and d.reason == "wake-phrase"
    assert not gate.decide("mute the alerts").accept


def test_near_wake_scores_the_start_whether_or_not_it_is_accepted():
    heard_as = ("okay car", "a car,")
    assert activation.near_wake("A cart, unmute the alerts.", "hey car", heard_as) >= 0.8  # "a car," vs "a cart"
    assert activation.near_wake("Hey car, louder", "hey car", heard_as) == 1.0
    assert activation.near_wake("Day car, stop.", "hey car", heard_as) >= 0.8  # another first letter: near all the same
    assert activation.near_wake("What is the speed limit on a motorway?", "hey car", heard_as) < 0.6
    assert activation.near_wake("", "hey car", heard_as) == 0.0


@pytest.mark.parametrize("margin,prefix_lp,accept", [
    (0.0, -0.5, True), (-3.0, -2.0, True), (-20.0, -0.5, False), (-1.0, -9.0, False)])
def test_accept_by_sound_needs_both_scores(margin, prefix_lp, accept):
    check = activation.WakeCheck(min_margin=-6.0, min_prefix_logprob=-4.0)
    assert activation.accept_by_sound(margin, prefix_lp, check) is accept
    assert not activation.accept_by_sound(margin, prefix_lp, activation.WakeCheck(enabled=False))


def test_the_check_by_sound_runs_only_for_near_misses_in_hands_free_mode():
    from vehicle_assist.speech.asr import PrefixScore

    gate = activation.Gate(activation.WAKE_PHRASE, "hey car", heard_as=("a car,",),
                           check=activation.WakeCheck(near_similarity=0.6, min_margin=-6.0))
    assert gate.prefix == "Hey car,"
    assert gate.wants_sound_check("A cart, unmute the alerts.")
    assert gate.wants_sound_check("A car is overtaking a lot on this road.")  # "a car," without its pause
    assert not gate.wants_sound_check("Hey car, louder")  # accepted as written: nothing to check
    assert not gate.wants_sound_check("What is the speed limit on a motorway?")  # nowhere near
    assert not gate.wants_sound_check("")
    assert not activation.Gate(activation.PUSH_TO_TALK).wants_sound_check("A cart, unmute the alerts.")
    off = activation.Gate(activation.WAKE_PHRASE, "hey car", check=activation.WakeCheck(enabled=False))
    assert not off.wants_sound_check("A cart, unmute the alerts.")
    near = PrefixScore("Hey car,", "unmute the alerts.", logprob=-4.0, free_logprob=-3.0, prefix_logprob=-1.0)
    d = gate.decide_by_sound("A cart, unmute the alerts.", near)
    assert d == activation.Decision(True, "unmute the alerts.", "wake-by-sound") and near.margin == -1.0
    far = PrefixScore("Hey car,", "is overtaking me.", logprob=-30.0, free_logprob=-8.0, prefix_logprob=-7.0)
    assert gate.decide_by_sound("A car is overtaking me.", far) == activation.Decision(
        False, "A car is overtaking me.", "no-wake-phrase")


def test_wake_by_sound_acts_on_the_transcripts_own_command_not_the_forced_reading():
    """Forcing "Hey car," onto "A cart, unmute ..." can take the "un" with it (test split, fourth round): the
    free transcript's words after the phrase are acted on when they are a command as written."""
    from vehicle_assist.speech.asr import PrefixScore

    gate = activation.Gate(activation.WAKE_PHRASE, "hey car", heard_as=("a car,",))
    swallowed = PrefixScore("Hey car,", "mute the alerts.", logprob=-4.0, free_logprob=-3.0, prefix_logprob=-1.0)
    d = gate.decide_by_sound("A cart, unmute the alerts.", swallowed)
    assert d == activation.Decision(True, "unmute the alerts.", "wake-by-sound")
    assert intents.classify(d.text, 0).name == "unmute"
    # the transcript's rest is no command as written: the words decoded after the forced phrase are acted on
    q = PrefixScore("Hey car,", "is overtaking allowed on this road?", logprob=-4.0, free_logprob=-3.0,
                    prefix_logprob=-1.0)
    assert gate.decide_by_sound("A car is overtaking a lot on this road.", q).text == "is overtaking allowed on this road?"
    fixed = PrefixScore("Hey car,", "mute for five minutes.", logprob=-4.0, free_logprob=-3.0, prefix_logprob=-1.0)
    assert gate.decide_by_sound("A car use for five minutes.", fixed).text == "mute for five minutes."


@pytest.mark.parametrize("heard,rest", [
    ("A cart, unmute the alerts.", "unmute the alerts."),
    ("Day car, stop.", "stop."),
    ("Heycar mute", "mute"),
    ("A car is overtaking a lot on this road.", "is overtaking a lot on this road."),
])
def test_after_near_wake_drops_the_words_that_stood_for_the_phrase(heard, rest):
    assert activation.after_near_wake(heard, "hey car", ("a car,",)) == rest


def test_file_button_reads_a_gpio_style_line(tmp_path):
    line = tmp_path / "value"
    line.write_text("0\n")
    btn = activation.FileButton(line, now_ns=lambda: 5)
    assert btn.poll() == activation.ButtonEvent(False, 5)
    assert btn.poll() is None  # no change, no event
    line.write_text("1\n")
    assert btn.poll() == activation.ButtonEvent(True, 5)


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="activation mode"):
        activation.Gate("always")


def test_self_hearing_gate_follows_the_real_arbiter():
    rendered = TTSRenderer().render("Keep a two second gap.")
    with AudioArbiter(NullSink(rendered.sample_rate, realtime=True)) as arbiter:
        gate = activation.Gate(activation.WAKE_PHRASE, is_speaking=arbiter.is_speaking, hangover_s=0.3)
        assert gate.listening(0)
        arbiter.say(SpeechRequest(0, rendered.text, Tier.ADVISORY, pcm=rendered.pcm, sample_rate=rendered.sample_rate))
        assert not gate.listening(1_000_000)  # the assistant is speaking: its own voice is not transcribed
        assert arbiter.wait_idle(10.0)
        # speech has ended; the mic stays gated for the hang-over after the last time it was seen speaking
        assert not gate.listening(1_000_000 + 100_000_000)
        assert gate.listening(1_000_000 + 400_000_000)
