"""Spoken-question normalisation, out-of-scope detection, BM25 words and scene queries (all pure)."""

from __future__ import annotations

from vehicle_assist.knowledge.normalize import bm25_tokens, normalize, out_of_scope, words_to_numbers
from vehicle_assist.knowledge.retrieve import scene_query
from vehicle_assist.messages import Scene


def test_numbers_in_words_and_mph():
    assert normalize("stopping at seventy miles an hour") .startswith("stopping at 70 mph")
    assert words_to_numbers("thirty five metres", {"thirty": 30, "five": 5}) == "35 metres"
    assert normalize("doing 50mph").startswith("doing 50 mph")


def test_fillers_removed():
    assert normalize("um, so er what's the limit please") == "so what's the limit"


def test_everyday_words_gain_the_codes_terms():
    q = normalize("there's a car with blues on behind me")
    assert q.startswith("there's a car with blues on behind me") and "emergency vehicle" in q
    assert "advanced stop lines" in normalize("can i stop in the bike box")
    assert "reflective road studs" in normalize("what colour are cat's eyes")


def test_plain_questions_are_left_alone():
    assert normalize("when should I use dipped headlights") == "when should I use dipped headlights"


def test_out_of_scope_table():
    assert out_of_scope("what's the speed limit on the autobahn") == "foreign_jurisdiction"
    assert out_of_scope("how much does an MOT cost") == "price_or_cost"
    assert out_of_scope("what's the weather going to be like tomorrow") == "live_information"
    for question in ("how much space do I give a cyclist", "how much tread do my tyres need",
                     "what should I do in windy weather", "what's the speed limit on a motorway"):
        assert out_of_scope(question) is None, question


def test_bm25_tokens_drop_stopwords_and_stem():
    assert bm25_tokens("What are the Overtaking rules for cyclists?") == ["overtak", "rul", "cyclist"]
    assert bm25_tokens("overtake a cyclist: the rule") == bm25_tokens("overtaking cyclists, rules")
    assert bm25_tokens("1.5 metres") == ["1.5", "metr"]


def test_scene_queries_name_the_situation():
    q = scene_query(Scene(label="bicycle", hazard="cyclist_ahead", road_type="rural", speed_mps=13.4))
    assert "cyclist" in q and "country road" in q and "30 mph" in q
    q = scene_query(Scene(label="emergency_vehicle", hazard="emergency-vehicle-behind"))
    assert "emergency vehicle" in q and "let it pass" in q
    assert "fog" in scene_query(Scene(road_type="motorway", weather="fog"))
    # unknown values still read as words, never crash
    assert scene_query(Scene(label="kangaroo", hazard="hopping_across")) == "kangaroo, hopping across"
    assert scene_query(Scene()) == ""
