"""The scene informs, it does not take over: a question is answered about what it asks."""

from __future__ import annotations

import asyncio

import pytest

from vehicle_assist.advisory import scene as scenes
from vehicle_assist.advisory.scene import parse_scene


def test_only_a_missing_or_vague_question_lets_the_scene_steer():
    assert scenes.steers(None) and scenes.steers("") and scenes.steers("what now?")
    assert not scenes.steers("Can I park on the pavement?")
    assert not scenes.steers("how far behind should I stay in the rain")


@pytest.mark.slow
def test_a_parking_question_with_a_car_ahead_is_answered_about_parking():
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.config import load_app

    lane = lanes.build(load_app())
    scene = parse_scene("label=car,distance_m=19,hazard=forward-collision")
    try:
        with_scene = asyncio.run(lane.run.execute_report("Can I park on the pavement?", scene, 0))
        without = asyncio.run(lane.run.execute_report("Can I park on the pavement?", None, 0))
        alone = asyncio.run(lane.run.execute_report(None, scene, 0))
    finally:
        lane.close()
    assert "244" in with_scene.advisory.cited and "pavement" in with_scene.advisory.text.lower()
    assert with_scene.advisory.text == without.advisory.text
    assert not alone.advisory.refused and alone.advisory.cited  # a scene alone is still answered from the scene


@pytest.mark.slow
def test_the_car_says_what_ask_says(tmp_path):
    """What is measured is what the car says: the runtime's advisor and `ask`'s lane give the same answer."""
    import runtime_parts as rp  # tests/ is on sys.path under pytest

    from vehicle_assist import runtime
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.audio_out import NullSink
    from vehicle_assist.clock import WallClock
    from vehicle_assist.config import load_app

    cfg = load_app()
    lane = lanes.build(cfg)
    parts = rp.parts(advisor=False)
    parts.advisory = lanes.load(cfg, retriever=lane.retriever)  # what runtime.load_parts loads for the car
    clock = WallClock()
    rt = runtime.build(cfg, runtime.Sources(), clock, runtime.Sinks(NullSink(realtime=False), tmp_path / "trip.jsonl"), parts)
    car = rt.advice.advisor  # the AdvisoryRun the runtime bound (its speaker, clock and workload hold)
    try:
        for q in ("how fast can I go on a dual carriageway", "can i park on the zigzags by a crossing",
                  "what's the capital of france"):
            said = asyncio.run(car.execute(q, None, clock.now_ns()))
            asked = asyncio.run(lane.run.execute(q, None, clock.now_ns()))
            assert (said.text, said.cited, said.route) == (asked.text, asked.cited, asked.route), q
    finally:
        lane.close()
        rt.arbiter.close()
        rt.trip.close()
