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
def test_the_car_says_what_ask_says():
    """What is measured is what the car says: the runtime's advisor and `ask`'s lane give the same answer."""
    from vehicle_assist import models, runtime
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.audio_out import AudioArbiter, NullSink
    from vehicle_assist.config import load_app

    cfg = load_app()
    arbiter = AudioArbiter(NullSink(realtime=False)).start()
    lane = lanes.build(cfg)
    try:
        car = runtime._advisor_factory(cfg, models.load_tts())(arbiter, lambda e: None)
        for q in ("how fast can I go on a dual carriageway", "can i park on the zigzags by a crossing",
                  "what's the capital of france"):
            said = asyncio.run(car.execute(q, None, 0))
            asked = asyncio.run(lane.run.execute(q, None, 0))
            assert (said.text, said.cited, said.route) == (asked.text, asked.cited, asked.route), q
    finally:
        lane.close()
        arbiter.wait_idle(10)
        arbiter.close()
