"""Reference logs: canonical form, tolerant comparison, update and malformed files."""

from __future__ import annotations

import json

import pytest

from vehicle_assist.messages import AlertEvent, Envelope, Hazard, HazardLevel, Transcript, envelope_record
from vehicle_assist.replay import refs
from vehicle_assist.replay.errors import FormatError


def records(distance=14.0, ttc=2.8, alert_t=3.4, text="keep a two second gap", proc=1):
    items = [("hazards", 2.9, (Hazard(int(2.9e9), "forward-collision", HazardLevel.WARNING, "car", 4, distance, ttc, True),)),
             ("alerts", alert_t, AlertEvent(int(alert_t * 1e9), "forward-collision", 90, "Vehicle ahead, brake.", True)),
             ("transcripts", 7.0 + proc, Transcript(int((7.0 + proc) * 1e9), text, 0.8, asr_ms=100.0 * proc)),
             ("timings", 3.0, None)]
    return [envelope_record(Envelope(t, int(s * 1e9), i, m, proc_ns=proc * 10**9 + i)) for i, (t, s, m) in enumerate(items, 1)]


RULES = refs.load_rules()


def test_identical_within_tolerance_and_timestamps_ignored(tmp_path):
    path = tmp_path / "ref.jsonl"
    assert refs.write_ref(records(), path, RULES, {"scenario": "x"}) == 3  # timings are not compared
    header, ref = refs.read_ref(path)
    assert header["scenario"] == "x"
    # processing times, ASR time and voice-lane timestamps differ; numbers within tolerance
    assert refs.compare(records(distance=14.2, ttc=2.9, proc=5), ref, RULES) == []


def test_differences_are_reported_with_field_and_values(tmp_path):
    path = tmp_path / "ref.jsonl"
    refs.write_ref(records(), path, RULES)
    _, ref = refs.read_ref(path)
    diffs = refs.compare(records(distance=16.0, alert_t=4.0, text="keep a gap"), ref, RULES)
    text = [str(d) for d in diffs]
    assert "hazards[0][0].distance_m: reference 14.0, got 16.0" in text
    assert any(t.startswith("alerts[0].t_ns: reference 3400000000") for t in text)
    assert 'transcripts[0].text: reference "keep a two second gap", got "keep a gap"' in text
    missing = refs.compare(records()[:1], ref, RULES)
    assert [str(d) for d in missing] == ["alerts[0].(count): reference 1, got 0", "transcripts[0].(count): reference 1, got 0"]


def test_malformed_reference_names_line(tmp_path):
    path = tmp_path / "ref.jsonl"
    path.write_text(json.dumps({"type": "header", "format": refs.REF_FORMAT}) + "\n{broken\n")
    with pytest.raises(FormatError, match=r"ref.jsonl: line 2, column 2: expected a JSON object"):
        refs.read_ref(path)
    with pytest.raises(FormatError, match="ref-missing"):
        refs.read_ref(tmp_path / "none.jsonl")
