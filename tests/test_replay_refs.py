"""Reference logs: canonical form, comparison of what matters (decisions, not floats or wording),
update and malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vehicle_assist.messages import (Advisory, AlertEvent, Envelope, Hazard, HazardLevel, Intent, Transcript,
                                     envelope_record)
from vehicle_assist.replay import refs
from vehicle_assist.replay.errors import FormatError

QUESTION = "How much room should I give a cyclist when I overtake?"
ANSWER = ("Leave at least 1.5 metres when overtaking cyclists at speeds of up to 30mph, "
          "and give them more space when overtaking at higher speeds.")


def records(distance=14.0, ttc=2.8, alert_t=3.4, text=QUESTION, proc=1, cited=("163",), answer=ANSWER,
            route="extractive", refused=False, intent="question", confidence=0.85, hazards=None, rejected=""):
    hz = hazards if hazards is not None else (
        Hazard(int(2.9e9), "forward-collision", HazardLevel.WARNING, "car", 4, distance, ttc, True),)
    items = [("hazards", 2.9, hz),
             ("alerts", alert_t, AlertEvent(int(alert_t * 1e9), "forward-collision", 90, "Vehicle ahead, brake.", True)),
             ("transcripts", 7.0 + proc, Transcript(int((7.0 + proc) * 1e9), text, confidence, asr_ms=100.0 * proc, rejected=rejected)),
             ("intents", 7.1 + proc, Intent(int((7.1 + proc) * 1e9), intent, text)),
             ("advisories", 7.5 + proc, Advisory(int((7.5 + proc) * 1e9), answer, route, tuple(cited), refused, text)),
             ("timings", 3.0, None)]
    return [envelope_record(Envelope(t, int(s * 1e9), i, m, proc_ns=proc * 10**9 + i)) for i, (t, s, m) in enumerate(items, 1)]


RULES = refs.load_rules()
REPO = Path(__file__).resolve().parents[1]


def reference(tmp_path, **kw):
    path = tmp_path / "ref.jsonl"
    refs.write_ref(records(**kw), path, RULES)
    return refs.read_ref(path)[1]


def test_identical_within_tolerance_and_timestamps_ignored(tmp_path):
    path = tmp_path / "ref.jsonl"
    assert refs.write_ref(records(), path, RULES, {"scenario": "x"}) == 5  # timings are not compared
    header, ref = refs.read_ref(path)
    assert header["scenario"] == "x"
    # processing times, ASR time, confidence and voice-lane timestamps differ; numbers within tolerance
    assert refs.compare(records(distance=14.4, ttc=2.9, proc=5, confidence=0.81), ref, RULES) == []


def test_transcript_one_word_off_still_passes(tmp_path):
    """Whisper on another CPU's SIMD path heard "when overtake" (issue 13): 1 word in 11 is within the WER tolerance."""
    ref = reference(tmp_path)
    heard = "How much room should I give a cyclist when overtake?"
    assert refs.word_error_rate(QUESTION, heard) == pytest.approx(1 / 11)
    assert refs.compare(records(text=heard), ref, RULES) == []
    garbled = "How much broom should we give a cyclist then I overtake?"  # 3 words in 11: beyond 0.25
    (diff,) = refs.compare(records(text=garbled, intent="question"), ref, RULES)
    assert str(diff).startswith("transcripts[0].text (word error rate 0.27 > 0.25): reference")


def test_a_transcript_rejected_as_noise_is_a_difference(tmp_path):
    ref = reference(tmp_path)
    assert [str(d) for d in refs.compare(records(rejected="unsure"), ref, RULES)] == [
        'transcripts[0].rejected: reference "", got "unsure"']


def test_changed_cited_rule_fails(tmp_path):
    ref = reference(tmp_path)
    diffs = [str(d) for d in refs.compare(records(cited=("212",)), ref, RULES)]
    assert diffs == ['advisories[0].cited[0]: reference "163", got "212"']
    assert refs.compare(records(cited=("163", "212")), ref, RULES)  # an extra rule is a difference too


def test_answers_compare_rules_refusal_route_and_key_facts_not_wording(tmp_path):
    ref = reference(tmp_path, cited=("163", "212"))
    reworded = "Give cyclists 1.5 m or more when you overtake them at up to 30 mph; more at higher speeds."
    assert refs.compare(records(cited=("212", "163"), answer=reworded), ref, RULES) == []  # cited as a set
    diffs = [str(d) for d in refs.compare(records(cited=("163", "212"), answer=ANSWER.replace("1.5", "2")), ref, RULES)]
    assert diffs == ['advisories[0].text (numbers with units): reference ["1.5 m", "30 mph"], got ["2 m", "30 mph"]']
    assert [d.field for d in refs.compare(records(cited=("163", "212"), refused=True), ref, RULES)] == ["refused"]
    assert [d.field for d in refs.compare(records(cited=("163", "212"), route="slm"), ref, RULES)] == ["route"]


def test_key_facts_are_numbers_with_units():
    assert refs.key_facts(ANSWER) == ["1.5 m", "30 mph"]
    assert refs.key_facts("Allow at least a two-second gap; in a tunnel leave a 5-metre gap.") == ["2 s", "5 m"]
    assert refs.key_facts("Rule 126 says so, in 2 sections.") == []  # a number without a unit is not a fact


def test_intents_compare_by_name(tmp_path):
    ref = reference(tmp_path)
    assert [str(d) for d in refs.compare(records(intent="repeat"), ref, RULES)] == \
        ['intents[0].name: reference "question", got "repeat"']


def test_alerts_stay_strict(tmp_path):
    ref = reference(tmp_path)
    assert refs.compare(records(alert_t=3.5), ref, RULES) == []  # within 0.15 s of drive time
    diffs = [str(d) for d in refs.compare(records(alert_t=3.6), ref, RULES)]
    assert diffs == ["alerts[0].t_ns: reference 3400000000, got 3600000000"]
    missing = refs.compare(records()[:1], ref, RULES)
    assert "alerts[0].(count): reference 1, got 0" in [str(d) for d in missing]


def hazard(level, label="car", tid=4, distance=14.0, ttc=2.8, t=2.9):
    return Hazard(int(t * 1e9), "forward-collision" if label == "car" else "pedestrian-ahead", level, label, tid,
                  distance, ttc, True)


def test_hazards_below_caution_and_track_ids_do_not_count(tmp_path):
    """A marginal info-level box appearing with float differences shifts later track ids; neither counts."""
    ref = reference(tmp_path, hazards=(hazard(HazardLevel.WARNING, tid=4), hazard(HazardLevel.INFO, "person", 5, 30.0, None)))
    got = records(hazards=(hazard(HazardLevel.INFO, "person", 4, 31.0, None), hazard(HazardLevel.WARNING, tid=5),
                           hazard(HazardLevel.INFO, "car", 6, 40.0, None)))
    assert refs.compare(got, ref, RULES) == []


def test_hazards_at_caution_or_above_must_match_in_level_and_numbers(tmp_path):
    ref = reference(tmp_path)
    lower = [str(d) for d in refs.compare(records(hazards=(hazard(HazardLevel.CAUTION),)), ref, RULES)]
    assert lower == ['hazards[0].(no match): reference "warning car forward-collision at t=2.90 s distance_m=14.0 ttc_s=2.8", '
                     'got "none within 0.15 s"',
                     'hazards[0].(no match): reference "none within 0.15 s", '
                     'got "caution car forward-collision at t=2.90 s distance_m=14.0 ttc_s=2.8"']
    far = refs.compare(records(distance=16.0), ref, RULES)
    assert len(far) == 2 and "distance_m=16.0" in str(far[0])  # beyond 0.5 m + 5 %: the nearest candidate is shown
    assert len(refs.compare(records(hazards=()), ref, RULES)) == 1  # a missing warning


def test_hazards_match_within_the_time_tolerance():
    rules = RULES
    frames = [(0.0, HazardLevel.INFO), (0.05, HazardLevel.CAUTION), (0.10, HazardLevel.WARNING), (0.15, HazardLevel.WARNING)]
    ref = refs.canonical([envelope_record(Envelope("hazards", int(t * 1e9), i, (hazard(lv, t=t, distance=20 - 10 * t),)))
                          for i, (t, lv) in enumerate(frames)], rules)
    # the caution -> warning step one frame later (another CPU's float path near a threshold): within 0.15 s
    later = [(0.0, HazardLevel.INFO), (0.05, HazardLevel.CAUTION), (0.10, HazardLevel.CAUTION), (0.15, HazardLevel.WARNING)]
    got = [envelope_record(Envelope("hazards", int(t * 1e9), i, (hazard(lv, t=t, distance=20 - 10 * t),)))
           for i, (t, lv) in enumerate(later)]
    assert refs.compare(got, ref, rules) == []


def test_list_of_topics_means_exact_comparison():
    """As the determinism test of lockstep uses it: every field, track ids included."""
    assert refs.CompareRules.model_validate({"topics": ["hazards"]}).topics["hazards"].how == "exact"
    rules = RULES.model_copy(update={"topics": ["hazards"]})  # unvalidated, as test_replay_run does
    ref = refs.canonical(records(), rules)
    assert refs.compare(records(), ref, rules) == []
    got = records(hazards=(hazard(HazardLevel.WARNING, tid=5),))
    assert [str(d) for d in refs.compare(got, ref, rules)] == ["hazards[0][0].track_id: reference 4, got 5"]


def test_malformed_reference_names_line(tmp_path):
    path = tmp_path / "ref.jsonl"
    path.write_text(json.dumps({"type": "header", "format": refs.REF_FORMAT}) + "\n{broken\n")
    with pytest.raises(FormatError, match=r"ref.jsonl: line 2, column 2: expected a JSON object"):
        refs.read_ref(path)
    with pytest.raises(FormatError, match="ref-missing"):
        refs.read_ref(tmp_path / "none.jsonl")


def test_report_verdict_equals_exit_code_when_only_a_reference_diff_fails(va_home, tmp_path):
    """Issue 13: the report said "Scenario checks: 2/2 passed" while the replay exited 1 on a reference
    diff. The report's verdict, the JSON's ``passed`` and the exit code are one verdict."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    import yaml

    (va_home / "sim" / "scenarios").mkdir(parents=True)
    (va_home / "sim" / "refs").mkdir(parents=True)
    shutil.copy(REPO / "sim" / "refs" / "compare.yaml", va_home / "sim" / "refs" / "compare.yaml")
    (va_home / "sim" / "scenarios" / "cyclist_question.yaml").write_text(yaml.safe_dump({
        "name": "cyclist_question", "drive": "busy_street_following_quiet", "watched": "a question, nothing closing",
        "questions": [{"t": 0.2, "text": QUESTION}],
        "expect": ["no alert", "answer to the question at t=0.2 cites one of rules 163, 212, 213"]}))
    def voice_only(recs):
        return [r for r in recs if r["topic"] not in ("hazards", "alerts")]

    log = voice_only(records(proc=0))  # the checks pass on this log
    trip = tmp_path / "run" / "trip.jsonl"
    trip.parent.mkdir()
    trip.write_text("\n".join(json.dumps(r) for r in [{"type": "header", "format": "vehicle_assist.triplog/1"}] + log) + "\n")
    env = {**os.environ, "VA_HOME": str(va_home)}

    def replay(out):
        proc = subprocess.run([sys.executable, "-m", "vehicle_assist.cli", "replay", "cyclist_question", "--from-log",
                               str(trip), "--check", "--out", str(tmp_path / out), "--json"],
                              capture_output=True, text=True, timeout=120, env=env)
        assert "Traceback" not in proc.stderr, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        html = (tmp_path / out / "report.html").read_text()
        return proc.returncode, result, re.search(r"Verdict: (PASSED|FAILED)", html).group(1), html

    refs.write_ref(log, va_home / "sim" / "refs" / "cyclist_question.jsonl", RULES)
    rc, result, said, _ = replay("same")
    assert (rc, result["passed"], said) == (0, True, "PASSED")

    # the reference's answer cited another rule: every scenario check passes, only the reference differs
    refs.write_ref(voice_only(records(proc=0, cited=("212",))), va_home / "sim" / "refs" / "cyclist_question.jsonl", RULES)
    rc, result, said, html = replay("differs")
    assert all(c["passed"] for c in result["checks"]) and len(result["checks"]) == 2
    assert result["ref"]["diffs"] == ['advisories[0].cited[0]: reference "212", got "163"']
    assert (rc, result["passed"], said) == (1, False, "FAILED")
    assert "scenario checks 2/2 passed; reference: 1 difference(s)" in html
