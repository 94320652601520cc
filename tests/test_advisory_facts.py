"""Structured facts parsed from the Code's own text (advisory/facts.py) and number questions
answered from the fact whose slots match."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from vehicle_assist.advisory import facts
from vehicle_assist.messages import Passage


@pytest.fixture(scope="module")
def rules() -> dict[str, Passage]:
    from tests.conftest import code_passages

    return code_passages()


def test_tables_become_facts_with_their_rule_and_slots(rules):
    speed = [f for f in facts.facts(rules["124"]) if f.row]
    assert len(speed) == 8 * 5 and all(f.rule_id == "124" for f in speed)  # 8 vehicle rows x 5 road columns
    car_motorway = next(f for f in speed if f.row.startswith("Cars & motorcycles") and f.column == "motorways")
    assert car_motorway.value == "70 mph (112 km/h)"
    stopping = [f for f in facts.facts(rules["126-figure"]) if f.row]
    assert len(stopping) == 6 * 3 and {f.rule_id for f in stopping} == {"126-figure"}
    penalties = [f for f in facts.facts(rules["annex-5-penalties#penalty-table-p2"]) if f.column == "penalty points"]
    assert any("mobile phone" in f.row and f.value == "6" for f in penalties)
    # numeric sentences are facts too: the warning triangle, the cyclist clearance, the horn hours
    assert any("45 metres" in f.text for f in facts.facts(rules["276"]))
    assert any("1.5 metres" in f.text for f in facts.facts(rules["163"]))
    assert any("11.30 pm" in f.text for f in facts.facts(rules["112"]))


def test_facts_follow_the_source_text(rules):
    changed = dataclasses.replace(rules["124"], text=rules["124"].text.replace("| 70 (112) | 70 (112) |", "| 70 (112) | 75 (120) |", 1))
    f = facts.best("how fast may a car go on a motorway", [changed])
    assert f is not None and f.value == "75 mph (120 km/h)"


@pytest.mark.parametrize("question,ids,expected", [
    ("how quick can my car go on a motorway", ["124"], "70 mph"),
    ("how fast can an hgv go on the motorway", ["124"], "60 mph"),
    ("what's the limit towing a trailer on a country road", ["124"], "50 mph"),
    ("what's the speed limit in a welsh town", ["124"], "20 mph"),
    ("how long does it take to stop at sixty", ["126", "126-figure"], "73 metres"),
    ("what's the thinking distance at seventy", ["126", "126-figure"], "21 metres"),
    ("how many penalty points for careless driving", ["annex-5-penalties#penalty-table-p1"], "3 to 9"),
])
def test_number_questions_get_the_fact_whose_slots_match(rules, question, ids, expected):
    f = facts.best(question, [rules[i] for i in ids])
    assert f is not None and expected in f.text, f
    assert f.rule_id in ids


def test_a_question_without_a_number_or_a_matching_fact_keeps_the_sentence_answer(rules):
    assert facts.best("am i allowed to go over the speed limit to overtake", [rules["124"]]) is None
    assert facts.best("what should i do at a zebra crossing", [rules["195"]]) is None
    # a row is named but no column: no cell is guessed
    assert facts.best("what is the top speed of a disability scooter", [rules["124"]]) is None


def test_the_context_sentence_is_said_when_the_question_names_it(rules):
    f = facts.best("how much alcohol can i have and drive in scotland", [rules["95"]])
    assert f is not None and "22 microgrammes" in f.text
    assert facts.spoken(f, "how much alcohol can i have and drive in scotland").startswith("In Scotland")


@pytest.mark.slow
def test_the_lane_answers_a_speed_question_from_the_table():
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.config import load_app

    lane = lanes.build(load_app())
    try:
        rep = asyncio.run(lane.run.execute_report("how fast am i allowed on a dual carriageway in my car", None, 0))
    finally:
        lane.close()
    assert "70 mph" in rep.advisory.text and "124" in rep.advisory.cited and rep.verdict.ok
