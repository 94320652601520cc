"""Pure parts of the advisory lane: passage sentences, validation, extractive answers, routing, timing."""

from __future__ import annotations

import json

import pytest

from vehicle_assist.advisory import extractive, router, timing, validate
from vehicle_assist.advisory.scene import SceneError, describe, parse_scene
from vehicle_assist.advisory.text import passage_sentences, shorten
from vehicle_assist.config import AdvisorySettings, RemoteSettings, WorkloadSettings
from vehicle_assist.messages import Advisory, Hazard, HazardLevel, Intent, Passage, Scene, VehicleState


@pytest.fixture(scope="module")
def rules(request) -> dict[str, Passage]:
    from tests.conftest import code_passages

    return code_passages()


# --- passage sentences ------------------------------------------------------------------------


def test_bullets_keep_their_short_lead_in(rules):
    texts = [s.text for s in passage_sentences(rules["126"])]
    assert ("You should allow at least a two-second gap between you and the vehicle in front on high-speed "
            "roads and in tunnels where visibility is reduced.") in texts


def test_table_cells_become_sentences_with_units(rules):
    texts = [s.text for s in passage_sentences(rules["124"])]
    assert any(t.startswith("Cars & motorcycles") and t.endswith("motorways: 70 mph (112 km/h).") for t in texts)
    fig = [s.text for s in passage_sentences(rules["126-figure"])]
    assert "70 mph (113 km/h), overall stopping distance: 96 metres (315 feet), about 24 car lengths." in fig


def test_a_bullet_list_is_also_one_sentence_and_headings_are_dropped(rules):
    sents = passage_sentences(rules["257"])  # "Amber flashing lights. ... You should - reduce your speed - ..."
    texts = [s.text for s in sents]
    assert "Amber flashing lights." not in texts and not any(t.startswith("Rule 257:") for t in texts)
    assert "You should reduce your speed." in texts
    joined = [s for s in sents if s.joined]
    assert len(joined) == 1 and joined[0].text.startswith("You should reduce your speed, be prepared for the hazard, and")
    items = [s for s in sents if s.group == joined[0].group and not s.joined]
    assert len(items) == 3
    # a lead-in that does not run on into its items ("... from - a hard shoulder, ...") is not joined
    assert not any(s.joined for s in passage_sentences(rules["278"]))
    assert not any(t.startswith("Law") for t in (s.text for s in passage_sentences(rules["278"])))


def test_question_cues_pick_the_kind_of_sentence_asked_for():
    from vehicle_assist.advisory import cues

    assert [c.name for c in cues.active("how far back should I stay")] == ["distance"]
    assert "permission" in [c.name for c in cues.active("can I cross the solid white line")]
    assert [c.name for c in cues.active("")] == ["action"]  # a scene alone asks what to do
    perm = [c for c in cues.load() if c.name == "permission"]
    assert cues.matches("You MUST NOT cross it.", perm) == 1 and cues.matches("you must not", perm) == 0
    assert cues.matches("Never cross it.", perm) == 1  # the other words in any case


def test_cues_move_the_answer_to_what_was_asked(rules):
    q = "how far back should I stay from the car in front in wet weather"
    plain = extractive.answer(q, [rules["227"]], max_words=45, sentences=1)
    cued = extractive.answer(q, [rules["227"]], max_words=45, sentences=1,
                             ranked=extractive.rank_sentences(q, [rules["227"]], cue_weight=1.0))
    assert plain is not None and "keep well back" in plain.text  # most words in common, no distance
    assert cued is not None and "double" in cued.text  # "how far" asks for a distance


def test_shorten_keeps_short_text_and_cuts_long_text_at_a_clause():
    assert shorten("Keep left.", 10) == "Keep left."
    long = "Drive slowly, give plenty of room, watch the mirrors, and be ready to stop at any moment without warning."
    out = shorten(long, 8)
    assert len(out.split()) <= 8 and out.endswith(".") and out.startswith("Drive slowly,")


def test_shorten_drops_cross_references_to_other_rules():
    said = shorten("Slow vehicles MUST use a flashing amber beacon (also see Rule 220). Take care (see Rule 126).", 40)
    assert said == "Slow vehicles MUST use a flashing amber beacon. Take care."


# --- validation -------------------------------------------------------------------------------


SUPPORT = {"126": "allow at least a two-second gap on high-speed roads. The gap should be at least doubled on wet roads"}


def test_validate_accepts_supported_numbers_in_other_words():
    v = validate.check("Keep a 2-second gap, doubled when wet (Rule 126).", ["126"], ["126", "163"], SUPPORT)
    assert v.ok, v.reasons


@pytest.mark.parametrize("answer,cited,why", [
    ("Keep a three-second gap.", ["126"], "number 3"),
    ("Keep a two-metre gap.", ["126"], "'2 m'"),
    ("Keep a two-second gap, see Rule 127.", ["126"], "Rule 127"),
    ("Keep a two-second gap.", ["999"], "not retrieved"),
    ("Keep a two-second gap.", [], "no rule cited"),
    ("Drive at 50 mph.", ["126"], "number 50"),
])
def test_validate_rejects_unsupported_facts_and_says_why(answer, cited, why):
    v = validate.check(answer, cited, ["126", "163"], SUPPORT)
    assert not v.ok
    assert any(why in r for r in v.reasons), v.reasons


def test_validate_rejects_an_answer_that_shares_no_words_with_its_rule():
    v = validate.check("You are a calm in-car assistant answering drivers.", ["126"], ["126"], SUPPORT)
    assert not v.ok and any("shares no words" in r for r in v.reasons)
    assert validate.check("Leave a two-second gap on high-speed roads.", ["126"], ["126"], SUPPORT).ok


def test_validate_rejects_an_echo_of_the_model_instructions():
    system = "You are a calm in-car assistant. Answer the driver in one short sentence, using only the rules given."
    v = validate.check("You're a calm in-car assistant.", ["126"], ["126"], SUPPORT, instructions=system)
    assert not v.ok and any("instructions" in r for r in v.reasons)
    assert validate.check("Leave a two-second gap.", ["126"], ["126"], SUPPORT, instructions=system).ok


def test_validate_accepts_numbers_from_the_scene():
    v = validate.check("The cyclist is 12 metres ahead; leave a two-second gap.", ["126"], ["126"], SUPPORT,
                       scene_text="cyclist 12 metres ahead")
    assert v.ok, v.reasons


# --- extractive -------------------------------------------------------------------------------


def test_extractive_picks_the_key_sentence(rules):
    ex = extractive.answer("what gap should I leave on a high-speed road", [rules["126"], rules["105"]],
                           max_words=45, sentences=1)
    assert ex is not None and "two-second gap" in ex.text and ex.cited == ("126",)


def test_extractive_answer_is_grounded_and_short(rules):
    ex = extractive.answer("how much room should I give a cyclist when I overtake", [rules["163"], rules["213"]],
                           max_words=30)
    assert ex is not None and len(ex.text.split()) <= 38
    assert validate.check(ex.text, ex.cited, ["163", "213"], {"163": rules["163"].text, "213": rules["213"].text}).ok


def test_extractive_without_passages_gives_none():
    assert extractive.answer("anything", []) is None


# --- scene ------------------------------------------------------------------------------------


def test_parse_scene_forms():
    s = parse_scene("label=cyclist distance=12 speed=30 road=narrow weather=rain")
    assert s.label == "cyclist" and s.distance_m == 12 and abs(s.speed_mps - 13.41) < 0.01 and s.road_type == "narrow"
    assert parse_scene('{"label": "bus", "distance_m": 20}') == Scene(label="bus", distance_m=20)
    assert parse_scene("cyclist ahead on a narrow road").hazard == "cyclist ahead on a narrow road"
    assert "30 mph" in describe(s)
    with pytest.raises(SceneError, match="unknown scene key"):
        parse_scene("colour=red")
    with pytest.raises(SceneError, match="needs a number"):
        parse_scene("distance=far")


# --- router -----------------------------------------------------------------------------------


class R:
    """A retrieval outcome (only what the router reads)."""

    def __init__(self, answerable: bool, reason: str = "") -> None:
        self.answerable, self.reason = answerable, reason


S = AdvisorySettings()


def test_router_table():
    assert router.route(Intent(0, "mute", "mute for ten minutes"), None, S) == router.INTENT
    assert router.route(Scene(label="cyclist", hazard="cyclist-ahead"), R(True), S) == S.route
    assert router.route("what gap should I leave", R(True), S, support=3.0) == S.route
    assert router.route("what is the capital of France", R(False, "out-of-scope:chit_chat"), S, similarity=0.9) == router.REFUSAL
    assert router.route("what gap should I leave", None, S) == router.REFUSAL
    assert router.route("what gap", R(True), S, support=0.1) == router.REFUSAL


def test_router_rescues_only_weakly_similar_questions():
    assert router.route("q", R(False, "low-similarity:0.35"), S, similarity=S.rescue_similarity + 0.01) == S.route
    assert router.route("q", R(False, "low-similarity:0.35"), S, similarity=S.rescue_similarity - 0.01) == router.REFUSAL


def test_router_refuses_a_question_weak_on_both_words_and_meaning():
    weak_words, weak_meaning = S.weak_support - 0.1, S.weak_similarity - 0.01
    assert router.route("quickest way to manchester", R(True), S, support=weak_words, similarity=weak_meaning) == router.REFUSAL
    # weak on one count only: still answered
    assert router.route("q", R(True), S, support=weak_words, similarity=S.weak_similarity + 0.1) == S.route
    assert router.route("q", R(True), S, support=S.weak_support + 1, similarity=weak_meaning) == S.route
    # a scene has no question to judge
    assert router.route(Scene(label="bicycle"), R(True), S, support=weak_words, similarity=weak_meaning) == S.route


def test_router_remote_is_opt_in_and_only_for_complex_questions():
    complex_q = "why should I leave a bigger gap in the rain than on a dry road"
    assert router.route(complex_q, R(True), S) == S.route  # off by default
    on = S.model_copy(update={"remote": RemoteSettings(enabled=True, url="http://127.0.0.1:9/v1")})
    assert router.route(complex_q, R(True), on) == router.REMOTE
    assert router.route("what gap should I leave", R(True), on) == on.route


# --- timing -----------------------------------------------------------------------------------


W = WorkloadSettings()
ADV = Advisory(t_ns=0, text="Give the cyclist room.", route="extractive", ttl_s=10.0)


def test_timing_waits_while_a_warning_is_active():
    d = timing.decide(ADV, 1_000_000_000, [Hazard(0, "collision", HazardLevel.WARNING, "car")], None, W)
    assert d.action == timing.WAIT and "warning" in d.reason


def test_timing_waits_when_fast_with_close_traffic_or_at_a_junction():
    fast = VehicleState(0, speed_mps=30.0)
    close = [Hazard(0, "vehicle", HazardLevel.INFO, "car", distance_m=15.0)]
    assert timing.decide(ADV, 0, close, fast, W).action == timing.WAIT
    assert timing.decide(ADV, 0, [], fast, W).action == timing.SPEAK
    assert timing.decide(ADV, 0, close, VehicleState(0, speed_mps=10.0), W).action == timing.SPEAK
    assert timing.decide(ADV, 0, [], VehicleState(0, road_type="junction"), W).action == timing.WAIT


def test_timing_drops_after_ttl_and_unknown_speed_is_not_zero():
    assert timing.decide(ADV, 11_000_000_000, [], None, W).action == timing.DROP
    close = [Hazard(0, "vehicle", HazardLevel.INFO, "car", distance_m=5.0)]
    assert timing.decide(ADV, 0, close, VehicleState(0, speed_mps=None), W).action == timing.SPEAK


# --- every rule number spoken is a cited one (issue 15 follow-up) ---------------------------------

@pytest.mark.parametrize("sentence, spoken", [
    ("Keep to the left unless overtaking (see Rule 275", "Keep to the left unless overtaking"),
    ("You MUST stop at the line (see Rules 275 to 277).", "You MUST stop at the line."),
    ("You MUST stop at the line, as shown in Rule 277.", "You MUST stop at the line."),
    ("Keep left, see Rules 211-215.", "Keep left."),
    ("Give way (also see Rule 220) to buses.", "Give way to buses."),
    ("Use dipped headlights (see Annex 6) at night.", "Use dipped headlights at night."),
    ("Slow down (Rule H2) near people walking.", "Slow down near people walking."),
])
def test_spoken_text_drops_the_codes_cross_references(sentence, spoken):
    assert shorten(sentence, 45) == spoken
    assert not validate.rule_refs(shorten(sentence, 45))


@pytest.mark.parametrize("answer", [
    "Keep to the left unless overtaking (see Rule 275",   # unclosed parenthesis
    "Keep to the left unless overtaking, as Rule 277 says.",
    "Rule 277 says keep to the left unless overtaking.",
    "Keep to the left unless overtaking (Rule H2).",
])
def test_a_rule_number_spoken_but_not_cited_fails_validation(answer):
    support = {"160": "Keep to the left unless overtaking. Stop at the line (see Rule 275)."}
    verdict = validate.check(answer, ("160",), ["160"], support)
    assert not verdict.ok and any("not cited" in r for r in verdict.reasons)
    # the same sentence citing the rule it names passes that check
    named = sorted(validate.rule_refs(answer))[0]
    support[named] = support["160"] + f" Rule {named}."
    assert not any("not cited" in r for r in validate.check(answer, ("160", named), ["160", named], support).reasons)


def test_only_the_supported_sentences_of_a_failed_answer_may_be_said():
    support = {"160": "Keep to the left unless overtaking. Rule 277 says stop at the line."}
    answer = "Keep to the left unless overtaking. Rule 277 says stop at the line."
    assert not validate.check(answer, ("160",), ["160"], support).ok
    assert validate.supported_part(answer, ("160",), ["160"], support) == "Keep to the left unless overtaking."
    assert validate.supported_part("Rule 277 says stop at the line.", ("160",), ["160"], support) == ""


def test_stem_undoubles_the_consonant_before_ing_and_ed():
    from vehicle_assist.advisory.text import stem, terms

    assert stem("stopping") == stem("stopped") == stem("stop") == "stop"
    assert stem("running") == "run" and stem("falling") == "fall" and stem("passing") == "pass"
    assert set(terms("how long does it take to stop")) & set(terms("Typical stopping distances"))


# --- answer selection across rules (issue 15, fifth round) ------------------------------------


def _p(rid: str, text: str, title: str = "t") -> Passage:
    return Passage(rid, "s", title, text)


def test_a_runner_up_that_adds_what_the_question_asks_for_may_come_from_another_rule():
    # the best sentence says nothing a "can I" question asks for (MUST / MUST NOT); rule B's does
    a = _p("A", "Double white lines are painted along the middle of the road. They mark the centre.")
    b = _p("B", "You MUST NOT cross a solid white line on your side.")
    q = "can I cross double white lines in the middle of the road"
    ranked = extractive.rank_sentences(q, [a, b], cue_weight=0.0)
    assert ranked[0].sentence.passage_id == "A"
    plain = extractive.answer(q, [a, b], max_words=45, ranked=ranked)
    assert "MUST NOT" not in plain.text and plain.cited == ("A",)
    completed = extractive.answer(q, [a, b], max_words=45, ranked=ranked, asked=q, complete=8)
    assert "You MUST NOT cross a solid white line on your side." in completed.text
    assert completed.cited == ("A", "B")
    # a best sentence that already answers the cue keeps its own rule's runner-up
    c = _p("C", "You MUST NOT cross double white lines in the middle of the road. They mark the centre.")
    kept = extractive.answer(q, [c, b], max_words=45, asked=q, complete=8)
    assert kept.cited == ("C",)


def test_the_runner_up_should_add_to_the_best_sentence_not_repeat_it():
    p = _p("A", "When driving in fog you should use your lights. "
                "When driving in fog you should use your lights and keep a safe distance. "
                "Fog lights MUST be switched off when visibility improves.")
    q = "what should I do in fog with my lights"
    sents = passage_sentences(p)
    ranked = [extractive.Scored(s, score) for s, score in zip(sents, (1.0, 0.9, 0.7))]
    repeat = extractive.answer(q, [p], max_words=45, ranked=ranked)
    fresh = extractive.answer(q, [p], max_words=45, ranked=ranked, redundancy=1.0)
    assert "switched off" not in repeat.text
    assert "switched off" in fresh.text


def test_a_runner_up_too_long_to_fit_gives_way_to_the_next_that_fits():
    long = ("You should give way to pedestrians who are waiting to cross at the crossing, and you should be "
            "ready to slow down or stop, especially where children, older people or disabled people are "
            "waiting, and you should never wave them across in case another vehicle is coming.")
    p = _p("A", "As you approach a zebra crossing you should give way to pedestrians waiting to cross, "
                "and be ready to slow down or stop to let them cross. " + long + " Be patient at the zebra crossing.")
    q = "do I have to stop for people waiting at a zebra crossing"
    ranked = extractive.rank_sentences(q, [p])
    one = extractive.answer(q, [p], max_words=30, ranked=ranked, tries=1)
    three = extractive.answer(q, [p], max_words=30, ranked=ranked, tries=3)
    assert len(one.text.split(". ")) == 1  # the runner-up does not fit: one sentence
    assert "Be patient at the zebra crossing." in three.text


def test_a_third_sentence_is_said_only_when_the_answer_leaves_room_for_it():
    # eighth round: the fact is often in the sentence ranked just below the two said
    p = _p("A", "In wet weather you should keep well back from the vehicle in front. "
                "Stopping distances will be at least double those on dry roads. "
                "Spray from large vehicles may reduce your ability to see.")
    q = "how far back should I stay in the rain"
    sents = passage_sentences(p)
    ranked = sorted((extractive.Scored(s, score) for s, score in zip(sents, (1.0, 0.5, 0.9))), key=lambda r: -r.score)
    two = extractive.answer(q, [p], max_words=45, ranked=ranked)
    three = extractive.answer(q, [p], max_words=45, ranked=ranked, sentences=3)
    assert "double" not in two.text and len(two.text.split(". ")) == 2
    assert "at least double" in three.text and three.text.startswith("In wet weather")  # in the rule's order
    # no room within max_words + 8: two sentences only
    tight = extractive.answer(q, [p], max_words=14, ranked=ranked, sentences=3)
    assert "double" not in tight.text
    # only the sentences ranked just below the best are candidates (third_window)
    far = extractive.answer(q, [p], max_words=45, ranked=ranked, sentences=3, third_window=2)
    assert "double" not in far.text


def test_sentences_are_ranked_against_the_normalised_query_words_too():
    p = _p("A", "Keep your speed steady on the motorway. Look and listen for emergency vehicles with flashing blue lights.")
    q = "what about blues and twos"
    plain = extractive.rank_sentences(q, [p])
    expanded = extractive.rank_sentences(q, [p], expand=q + " (emergency vehicle flashing blue lights)")
    assert plain[0].sentence.text.startswith("Keep") or plain[0].lexical == 0
    assert expanded[0].sentence.text.startswith("Look and listen")
    assert expanded[0].lexical > 0
