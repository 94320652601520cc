"""The decoder prompt's domain vocabulary: derived from the Code's texts and Whisper's tokenizer."""

from __future__ import annotations

from vehicle_assist.speech import prompt


def test_domain_terms_are_recurring_words_the_tokenizer_finds_rare():
    texts = ["Approach the roundabout slowly on the carriageway."] * 6 + ["Use the road, road, road."] * 9 + ["RTRA sect 5 roundabouts"]
    rare = {"roundabout", "carriageway", "roundabouts", "approach"}
    terms = prompt.domain_terms(texts, lambda w: 2 if w in rare else 1, n=5, min_docs=5)
    # "road" is common (one token); "roundabouts" is too rare and a plural; "RTRA" and "Approach" are
    # not written in lower case (acronyms, place names and sentence starts are left out)
    assert terms == ["carriageway", "roundabout"]


def test_plural_of_a_chosen_term_is_not_repeated():
    texts = ["junction junctions"] * 5
    assert prompt.domain_terms(texts, lambda w: 2, n=5) == ["junction"]


def test_prompt_names_terms_and_commands():
    p = prompt.domain_prompt(["carriageway", "kerb"], ["mute the alerts", "louder"])
    assert p == "Highway Code questions: carriageway, kerb. Commands: mute the alerts, louder."


def test_the_prompt_is_built_from_this_install():
    p = prompt.build(10)
    assert p.startswith("Highway Code questions: ") and "mute the alerts" in p
    terms = p.split(": ", 1)[1].split(". Commands")[0].split(", ")
    assert len(terms) == 10 and "motorway" in terms and "the" not in terms
