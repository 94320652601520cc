"""The TTS text normaliser (vehicle_assist/speech/spoken.py, configs/spoken.yaml): what the voice says
for what is written, applied to what is rendered only. Pure tests plus espeak-ng (fast, no Piper)."""

from __future__ import annotations

import pytest

from vehicle_assist.speech import tts
from vehicle_assist.speech.spoken import SpokenTable, load_table, speakable


@pytest.mark.parametrize("written, said", [
    ("Pass at up to 30 mph.", "Pass at up to 30 mph."),  # spelled out: "seventy" stays "seventy" (configs/spoken.yaml)
    ("The limit is 70 mph (112 km/h) for cars.", "The limit is 70 mph for cars."),
    ("20mph (32km/h) zones", "20mph zones"),
    ("Drive at 48 km/h.", "Drive at 48 kilometres per hour."),
    ("Leave 1.5 m, or 2m at speed.", "Leave 1.5 metres, or 2 metres at speed."),
    ("Keep 1 m away.", "Keep 1 metre away."),
    ("Loads over 3,500 kg and 11 kW motors", "Loads over 3,500 kilograms and 11 kilowatts motors"),
    ("Between 11.30 pm and 7.00 am.", "Between 11:30 pm and 7 am."),
    ("From 7.00 a.m. to 11.30 p.m. Then stop.", "From 7 am to 11:30 pm. Then stop."),
    ("Large vehicles, e.g. buses, i.e. the big ones.", "Large vehicles, for example buses, that is the big ones."),
    ("Cones, signs etc. Then slow down.", "Cones, signs et cetera. Then slow down."),
    ("Cones, signs etc.", "Cones, signs et cetera."),
    ("Check the ABS light before the MOT.", "Check the A.B.S light before the M.O.T."),
    ("Green/yellow studs", "Green or yellow studs"),
    ("35 microgrammes/100 millilitres", "35 microgrammes per 100 millilitres"),
    ("Stop and/or wait", "Stop and or wait"),
])
def test_written_to_spoken(written, said):
    assert speakable(written) == said


@pytest.mark.parametrize("text", [
    "Keep at least a two-second gap to the vehicle in front.",
    "Give the cyclist at least 1.5 metres.",  # decimals: espeak-ng says "one point five" already
    "See Rule 126.", "Rule 126: 96 metres.", "Mum and me", "a 3.0 licence", "the M25 at junction 4",
    "Slow down. A pedestrian is crossing ahead.",
])
def test_text_without_anything_to_say_differently_is_unchanged(text):
    assert speakable(text) == text


def test_alert_phrases_are_unchanged_so_their_prerendering_is_too():
    from vehicle_assist.safety.alerts import load_table as alerts

    assert all(speakable(spec.text) == spec.text for spec in alerts().values())


def test_is_pure_and_idempotent():
    text = "Keep to 30 mph (48 km/h), e.g. near 10 m of a school at 8.30 am."
    once = speakable(text)
    assert speakable(text) == once and speakable(once) == once


def test_the_table_is_data(tmp_path):
    p = tmp_path / "spoken.yaml"
    p.write_text("units:\n  mph: [mee-les, mee-le]\nwords:\n  HGV: lorry\ndrop_conversion: false\n")
    t = load_table(p)
    assert speakable("An HGV at 1 mph (2 km/h)", t) == "An lorry at 1 mee-le (2 km/h)"
    assert speakable("30 mph", SpokenTable({}, {}, False)) == "30 mph"


def test_missing_table_says_the_text_as_written(va_home):
    (va_home / "configs" / "spoken.yaml").unlink()
    assert speakable("30 mph", load_table()) == "30 mph"


def test_sentences_are_not_split_after_an_abbreviation_inside_one():
    assert tts.split_sentences("Lanes change, e.g. where road works are. Slow down; then stop.") == [
        "Lanes change, e.g. where road works are.", "Slow down;", "then stop."]


def test_espeak_renders_the_spoken_words_and_keeps_the_written_text():
    r = tts.TTSRenderer()
    said = r.render("Pass at 30 km/h.")
    assert (said.text, said.said) == ("Pass at 30 km/h.", "Pass at 30 kilometres per hour.")
    r.normalise = False
    try:
        written = r.render("Pass at 30 km/h.")
    finally:
        r.normalise = True
    assert written.said == "Pass at 30 km/h." and written.duration_s != said.duration_s


def test_the_speaker_queues_the_written_text():
    """What the arbiter (and through it the log and display) sees is the text as written."""
    import threading

    import numpy as np

    from vehicle_assist.speech.speak import Speaker

    got, rendered = [], []

    class Arb:
        cancel_event = threading.Event()

        def begin_advisory(self):
            pass

        def say(self, req):
            got.append(req.text)

        def is_speaking(self):
            return True

    class R:
        def render(self, text, rate=None):
            rendered.append(text)
            return tts.Rendered(text, np.ones(10, np.float32), 22050, 1.0, speakable(text))

    Speaker(Arb(), R()).say("Keep to 30 mph. Then 20 mph.")
    assert got == rendered == ["Keep to 30 mph.", "Then 20 mph."]
