"""Proactive advisories: the pure trigger, and the runtime starting one for a cyclist held ahead."""

from __future__ import annotations

import asyncio

from vehicle_assist import config, triplog
from vehicle_assist.advisory.proactive import ProactiveState, due
from vehicle_assist.audio_out import NullSink
from vehicle_assist.clock import WallClock
from vehicle_assist.config import ProactiveSettings
from vehicle_assist.messages import Advisory, Hazard, HazardLevel, Track
from vehicle_assist.perception import hazards as hz
from vehicle_assist.runtime import Sinks, Sources, build

import runtime_parts as rp  # noqa: E402

S = 1_000_000_000


def cyclist(t_s, track=3, level=HazardLevel.INFO, corridor=True):
    return Hazard(int(t_s * S), "cyclist-ahead", level, "bicycle", track, 12.0, None, corridor)


def run(seq, settings=ProactiveSettings()):
    state, fired = ProactiveState(), []
    for t, hs in seq:
        h, state = due(hs, state, int(t * S), settings)
        if h is not None:
            fired.append((t, h.kind, h.track_id))
    return fired


def test_fires_once_after_persisting_then_cools_down():
    seq = [(t / 10, [cyclist(t / 10)]) for t in range(0, 100)]  # 10 s of the same cyclist
    assert run(seq) == [(3.0, "cyclist-ahead", 3)]
    # a new cyclist 60 s later is within the cooldown; 130 s later it is not
    later = seq + [(60 + t / 10, [cyclist(60 + t / 10, 4)]) for t in range(50)] \
        + [(130 + t / 10, [cyclist(130 + t / 10, 5)]) for t in range(50)]
    assert [f[0] for f in run(later)] == [3.0, 133.0]


def test_a_gap_restarts_persistence_and_filters_apply():
    alternate = [(t / 10, [cyclist(t / 10)] if t % 2 else []) for t in range(0, 45)]
    assert run(alternate) == [(3.1, "cyclist-ahead", 3)]  # seen on every other frame: still persistent
    gap = [(t / 10, [cyclist(t / 10)] if not 20 <= t < 30 else []) for t in range(0, 65)]
    assert run(gap) == [(6.0, "cyclist-ahead", 3)]  # a 1 s gap: seen again from 3.0 s
    assert run([(t / 10, [cyclist(t / 10, corridor=False)]) for t in range(50)]) == []
    ped = [(t / 10, [Hazard(int(t / 10 * S), "pedestrian-ahead", HazardLevel.INFO, "person", 1, 9.0, None, True)])
           for t in range(50)]
    assert run(ped) == []  # pedestrians count from caution only
    assert run([(t / 10, [cyclist(t / 10)]) for t in range(50)], ProactiveSettings(enabled=False)) == []


class HeldCyclist:
    """A bicycle straight ahead at about 12 m, the same track on every frame."""

    def __init__(self):
        self.calib = hz.CameraCalibration()

    def reset(self):
        pass

    def update(self, dets):
        h = self.calib.focal_px * 1.7 / 12.0
        sx, sy = dets.width / self.calib.width, dets.height / self.calib.height
        box = ((self.calib.cx - 0.3 * h) * sx, (420 - h) * sy, (self.calib.cx + 0.3 * h) * sx, 420.0 * sy)
        hist = tuple((dets.t_ns - k * 40_000_000, h) for k in range(10, -1, -1))
        return [Track(7, "bicycle", box, 0.9, dets.t_ns, hist[0][0], hits=11, history=hist)]


class RecordingAdvisor:
    calls: list = []

    def __init__(self, speaker, on_event):
        pass

    async def execute(self, question, scene, t_ns):
        RecordingAdvisor.calls.append((question, scene))
        return Advisory(t_ns, "Give cyclists at least 1.5 metres.", "extractive", cited=("163",), question=question)


def test_the_runtime_offers_advice_for_a_cyclist_held_ahead(tmp_path):
    clock = WallClock()
    parts = rp.parts(tracker=HeldCyclist())
    parts.advisory = rp.Binds(RecordingAdvisor)
    RecordingAdvisor.calls = []
    cfg = config.AppConfig(runtime={"proactive": {"persist_s": 1.0}})
    rt = build(cfg, Sources(frames=rp.frames(clock.now_ns)), clock, Sinks(NullSink(), tmp_path / "trip.jsonl"), parts)
    asyncio.run(rt.run(duration_s=3.0))
    assert len(RecordingAdvisor.calls) == 1  # once, not once per frame
    question, scene = RecordingAdvisor.calls[0]
    assert question is None and scene.hazard == "cyclist-ahead" and scene.label == "bicycle"
    _, records = triplog.read(tmp_path / "trip.jsonl")
    advisories = [r["msg"] for r in records if r["topic"] == "advisories"]
    assert [a["cited"] for a in advisories] == [["163"]]
