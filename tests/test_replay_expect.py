"""Expectation grammar and the pure checker over trip-log records."""

from __future__ import annotations

import pytest

from vehicle_assist.messages import (Advisory, AlertEvent, Envelope, Hazard, HazardLevel, Transcript,
                                     envelope_record)
from vehicle_assist.replay import expect
from vehicle_assist.replay.expect import ExpectationError, parse


def log(*items):
    """Trip-log records from (topic, t_s, msg) triples, in order."""
    return [envelope_record(Envelope(topic, int(t * 1e9), i, msg, proc_ns=i)) for i, (topic, t, msg) in enumerate(items, start=1)]


def alert(t, name="forward-collision", audible=True, state="start"):
    return ("alerts", t, AlertEvent(int(t * 1e9), name, 90, "Vehicle ahead, brake.", audible, state))


RECORDS = log(
    ("hazards", 2.9, (Hazard(int(2.9e9), "forward-collision", HazardLevel.WARNING, "car", 4, 14.0, 2.8, True),)),
    alert(3.4),
    alert(5.0, state="end"),
    alert(6.0, name="pedestrian-ahead", audible=False),  # muted: not heard
    ("transcripts", 7.2, Transcript(int(7.2e9), "How close can I follow on a motorway?", 0.8)),
    ("advisories", 8.1, Advisory(int(8.1e9), "Keep at least a two-second gap; double it in the wet.", "extractive",
                                 ("126",), question="How close can I follow on a motorway?")),
    ("advisories", 9.0, Advisory(int(9e9), "Cyclist ahead: give them room.", "template", ("163",), question=None)),
)


@pytest.mark.parametrize("text,ok", [
    ("alert forward-collision within 1.0 s of t=3.0", True),
    ("alert forward-collision within 0.2 s of t=3.0", False),
    ("alert any between t=3 and t=4", True),
    ("alert brake-now|forward-collision between t=3 and t=4", True),
    ("alert brake-now between t=0 and t=10", False),
    ("no alert between t=0 and t=3", True),
    ("no alert between t=0 and t=3.4", False),
    ("no alert pedestrian-ahead", True),  # the muted one was silent
    ("no alert", False),
    ("hazard car at least warning between t=2.5 and t=3", True),
    ("hazard car at least critical between t=2.5 and t=3", False),
    ("hazard person between t=0 and t=10", False),
    ("answer to the question at t=7 cites rule 126", True),
    ("The answer to the question at t=7 cites rule 163", False),
    ("answer to the question at t=7 cites one of rules 163, 126", True),
    ('answer to the question at t=7 mentions "two second gap"', True),
    ('answer to the question at t=7 mentions "three-second"', False),
    ("answer to the question at t=7 is not refused", True),
    ("answer to the question at t=7 is refused", False),
    ('transcript of the question at t=7 contains "motorway"', True),
])
def test_checks(text, ok):
    (result,) = expect.check([parse(text)], RECORDS)
    assert result.passed is ok, result.reason
    assert result.reason  # every outcome says what happened


def test_failure_reasons_say_what_happened_instead():
    (late,) = expect.check([parse("alert forward-collision within 0.2 s of t=3.0")], RECORDS)
    assert "no forward-collision alert between t=2.8 and t=3.2" in late.reason and "forward-collision at t=3.40" in late.reason
    (noisy,) = expect.check([parse("no alert between t=0 and t=4")], RECORDS)
    assert noisy.reason == "unexpected: forward-collision at t=3.40" and noisy.matched_t == (3.4,)
    (unanswered,) = expect.check([parse("answer to the question at t=10 cites rule 126")], RECORDS)
    assert not unanswered.passed and "no answer to the question at t=10" in unanswered.reason


def test_proactive_advisories_are_not_answers_and_each_answer_is_used_once():
    recs = RECORDS + log(("advisories", 12.0, Advisory(int(12e9), "Rule 124: 70 mph.", "extractive", ("124",), question="limit?")))
    results = expect.check([parse("answer to the question at t=7 cites rule 126"),
                            parse("answer to the question at t=7.5 cites rule 124")], recs)
    assert [r.passed for r in results] == [True, True]


@pytest.mark.parametrize("bad", ["alert forward collision soon", "no alert between t=5 and t=2",
                                 "hazard car at least scary between t=0 and t=1", "answer cites 126", ""])
def test_bad_expectations_name_the_grammar(bad):
    with pytest.raises(ExpectationError) as err:
        parse(bad)
    assert "expect" in str(err.value) or "span ends" in str(err.value) or "level" in str(err.value)


def test_score_precision_recall_over_labelled_windows():
    exps = [parse("alert any between t=3 and t=4"), parse("no alert between t=0 and t=2.5"),
            parse("alert brake-now between t=8 and t=9")]
    recs = log(alert(1.0), alert(3.5), alert(6.0))  # 1.0 false (silence window), 3.5 true, 6.0 unlabelled
    results = expect.check(exps, recs)
    s = expect.score([(exps, results, expect.alert_starts(recs))])
    assert (s.positives, s.detected) == (2, 1) and s.recall == 0.5
    assert (s.alerts_in_labelled, s.alerts_true, s.alerts_false) == (2, 1, 1) and s.precision == 0.5
