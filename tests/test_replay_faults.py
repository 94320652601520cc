"""Fault injection: pure, deterministic transforms of a real drive's stream."""

from __future__ import annotations

import numpy as np

from vehicle_assist.replay import faults
from vehicle_assist.replay.drive import VoicePcm, open_drive
from vehicle_assist.replay.faults import FaultPlan


def stream(data):
    data("drives", "urban_narrow_street_taxi_pedestrians_dad000597.mp4")
    voice = [VoicePcm(0.5, np.full(16000, 0.3, np.float32))]
    return list(open_drive("urban_narrow_street_taxi_pedestrians_dad000597", voice=voice).messages())


def frame_times(items):
    return [m.t_ns / 1e9 for m in items if m.topic == "frames"]


def test_camera_outage_and_dropped_frames(data):
    items = stream(data)
    plan = FaultPlan.model_validate({"camera_outage": [{"start_s": 1.0, "end_s": 3.0}],
                                     "drop_frames": {"every": 10, "at_s": [4.0]}})
    out = list(faults.apply(plan, items))
    t = frame_times(out)
    assert not any(1.0 <= x < 3.0 for x in t)
    rounded = [round(x, 2) for x in t]
    assert 0.4 in rounded and 0.45 not in rounded and 0.95 not in rounded  # seq 9, 19, ... dropped (every 10th)
    assert 4.0 not in [round(x, 2) for x in t]
    assert len(t) == 100 - 40 - 6 - 1  # outage 40 frames; every-10th outside it: 6; t=4.0 (seq 80): 1
    assert [m for m in out if m.topic == "audio"] == [m for m in items if m.topic == "audio"]  # audio untouched


def test_random_drops_are_seeded(data):
    items = stream(data)
    plan = FaultPlan.model_validate({"drop_frames": {"probability": 0.3, "seed": 7}})
    a, b = frame_times(faults.apply(plan, items)), frame_times(faults.apply(plan, items))
    assert a == b and 50 < len(a) < 90


def test_corrupt_audio_kinds(data):
    items = stream(data)
    for kind, check in (("zeros", lambda p: not p.any()), ("nan", lambda p: np.isnan(p).all()),
                        ("noise", lambda p: np.abs(p).max() > 0.5), ("clip", lambda p: np.abs(p).max() <= 1.0)):
        plan = FaultPlan.model_validate({"corrupt_audio": [{"start_s": 0.6, "end_s": 1.0, "kind": kind}]})
        out = [m for m in faults.apply(plan, items) if m.topic == "audio"]
        inside = [m.msg.pcm for m in out if 0.6e9 <= m.t_ns < 1.0e9]
        outside = [m.msg.pcm for m in out if m.t_ns >= 1.1e9 and m.t_ns < 1.4e9]
        assert inside and all(check(p) for p in inside), kind
        assert all(np.allclose(p, 0.3) for p in outside)  # the voice after the span is intact


def test_slm_stall_flag_and_description():
    plan = FaultPlan.model_validate({"slm_stall": {"stall_s": 8, "after_s": 2}, "camera_outage": [{"start_s": 1, "end_s": 2}]})
    assert plan.slm_stall_s(int(1e9)) == 0.0 and plan.slm_stall_s(int(3e9)) == 8.0
    assert faults.describe(plan) == ["camera outage t=1-2 s", "SLM stalls 8 s on requests after t=2 s"]
    assert FaultPlan().is_empty() and not plan.is_empty()


def test_stalled_advisor_waits_in_drive_time():
    import asyncio

    from vehicle_assist.clock import ReplayClock
    from vehicle_assist.messages import Advisory
    from vehicle_assist.replay.run import StalledAdvisor

    class Answer:  # isolates the wrapper from the advisory lane
        async def execute(self, question, scene, t_ns):
            return Advisory(t_ns, "ok", "template", question=question)

    async def main():
        clock, events = ReplayClock(0), []
        plan = FaultPlan.model_validate({"slm_stall": {"stall_s": 3.0, "after_s": 1.0}})
        adv = StalledAdvisor(Answer(), plan, clock, events.append)
        assert (await adv.execute("q", None, int(0.5e9))).text == "ok" and not events  # before after_s: no stall
        task = asyncio.ensure_future(adv.execute("q", None, int(2e9)))
        await asyncio.sleep(0.01)
        clock.advance_to(int(2.9e9))
        await asyncio.sleep(0.01)
        assert not task.done() and [e.type for e in events] == ["start"]
        clock.advance_to(int(3.1e9))
        assert (await asyncio.wait_for(task, 1.0)).text == "ok"
        assert [(e.type, e.stage) for e in events] == [("start", "stall"), ("end", "stall")]

    asyncio.run(main())
