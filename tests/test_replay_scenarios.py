"""The committed scenarios: they load, their expectations parse, they reference real drives and
alert names of the table, and together they label enough alerts and silences."""

from __future__ import annotations

import pytest

from vehicle_assist import paths
from vehicle_assist.replay import scenario
from vehicle_assist.replay.drive import resolve_drive
from vehicle_assist.replay.errors import ScenarioError
from vehicle_assist.safety.alerts import load_table

FILES = scenario.discover()


def test_enough_labelled_scenarios():
    loaded = [scenario.load(p) for p in FILES]
    positive = [s.name for s in loaded if "positive" in s.polarity()]
    negative = [s.name for s in loaded if "negative" in s.polarity() and "positive" not in s.polarity()]
    assert len(positive) >= 5, positive
    assert len(negative) >= 5, negative


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_is_well_formed(path):
    s = scenario.load(path)
    assert s.spec.watched.strip(), "say what was seen when watching the drive"
    manifest = resolve_drive(s.spec.drive)
    assert manifest.is_file() and manifest.is_relative_to(paths.sim())
    from vehicle_assist.route.advice import load_table as advice_table

    names, advice = set(load_table()), set(advice_table().advice)
    for e in s.expectations:
        known = advice if e.kind.startswith(("advice", "no_advice")) else names
        assert set(e.names) <= known, f"{e.text}: unknown alert or advice name (tables: {sorted(known)})"


def test_scenario_errors_name_file_and_position(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("drive: highway_cars_1s\nwatched: x\nexpect:\n  - alert soon\n")
    with pytest.raises(ScenarioError) as err:
        scenario.load(p)
    assert err.value.code == "expectation-invalid" and "s.yaml: expect.0:" in str(err.value)
    p.write_text("drive: highway_cars_1s\nwatched: x\nexpect: ['answer to the question at t=2 cites rule 126']\n")
    with pytest.raises(ScenarioError, match="expect.0: expected a question at t=2"):
        scenario.load(p)
    p.write_text("drive: highway_cars_1s\nexpect: ['no alert']\n")
    with pytest.raises(ScenarioError, match="watched: expected Field required"):
        scenario.load(p)
    p.write_text("drive: x\nwatched: y\nquestions: [{t: 1}]\nexpect: ['no alert']\n")
    with pytest.raises(ScenarioError, match="questions.0: expected give exactly one of 'text' or 'audio'"):
        scenario.load(p)


def test_synthesized_questions_are_cached_so_replays_hear_the_same_waveform(tmp_path):
    import numpy as np

    qs = [scenario.Question(t=1.0, text="What gap should I leave to the car in front?")]
    (a,) = scenario.render_questions(qs, cache=tmp_path)
    (b,) = scenario.render_questions(qs, cache=tmp_path)
    assert len(list(tmp_path.glob("*.wav"))) == 1 and a.t_s == 1.0
    assert np.array_equal(a.pcm, b.pcm) and 1.5 < len(a.pcm) / 16000 < 5.0  # 16 kHz speech
