"""Bus semantics: latest-value and bounded FIFO topics, seq, logging sinks, cross-thread publish,
and staleness driven by a ReplayClock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from vehicle_assist import messages as m
from vehicle_assist.bus import Bus, BusClosed, is_stale
from vehicle_assist.clock import ReplayClock
from vehicle_assist.topics import TOPICS


def _dets(i: int) -> m.Detections:
    return m.Detections(t_ns=i, frame_seq=i, width=640, height=480)


def test_latest_topic_gives_newest_and_counts_dropped():
    clock = ReplayClock()
    bus = Bus(clock)
    sub = bus.subscribe("detections")
    envs = []
    for i in range(1, 6):
        clock.advance_to(i * 100_000_000)
        envs.append(bus.publish("detections", _dets(i)))
    assert [e.seq for e in envs] == sorted({e.seq for e in envs})  # strictly increasing
    assert [e.t_ns for e in envs] == [i * 100_000_000 for i in range(1, 6)]
    assert all(e.proc_ns is not None for e in envs)
    assert sub.qsize() == 1
    got = sub.get_nowait()
    assert got.msg.frame_seq == 5 and sub.dropped == 4
    with pytest.raises(asyncio.QueueEmpty):
        sub.get_nowait()
    assert bus.latest("detections").msg.frame_seq == 5
    assert bus.stats()["detections"]["dropped"] == 4


def test_fifo_topic_is_bounded_and_drops_oldest():
    bus = Bus(ReplayClock(), fifo_maxlen=3)
    sub = bus.subscribe("transcripts")
    for i in range(5):
        bus.publish("transcripts", m.Transcript(t_ns=i, text=f"t{i}", confidence=0.9))
    assert [sub.get_nowait().msg.text for _ in range(3)] == ["t2", "t3", "t4"]
    assert sub.dropped == 2


def test_logged_topics_reach_the_sink_in_seq_order_and_unlogged_do_not():
    bus = Bus(ReplayClock())
    logged: list[m.Envelope] = []
    bus.add_sink(logged.append)
    bus.publish("frames", m.CameraFrame(t_ns=0, seq=0, image=__import__("numpy").zeros((2, 2, 3), "uint8")))
    bus.publish("hazards", ())
    bus.publish("errors", m.ErrorEvent(0, "x", "boom"))
    assert [e.topic for e in logged] == ["hazards", "errors"]
    assert logged[0].seq < logged[1].seq
    assert not TOPICS["frames"].logged and TOPICS["hazards"].logged


def test_a_failing_sink_never_stops_publishing():
    bus = Bus(ReplayClock())

    def broken(env):
        raise OSError(28, "No space left on device")

    bus.add_sink(broken)
    sub = bus.subscribe("alerts")
    bus.publish("alerts", m.AlertEvent(0, "collision", 0, "Brake!", True))
    assert sub.get_nowait().msg.name == "collision"
    assert bus.sink_errors == 1


def test_unknown_topic_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown topic 'nope'"):
        Bus(ReplayClock()).publish("nope", 1)


def test_publish_from_a_worker_thread_wakes_the_loop():
    async def main():
        bus = Bus(ReplayClock())
        sub = bus.subscribe("transcripts")
        waiter = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        t = threading.Thread(target=bus.publish, args=("transcripts", m.Transcript(0, "hello", 1.0)))
        t.start()
        env = await asyncio.wait_for(waiter, 2.0)
        t.join()
        return env

    assert asyncio.run(main()).msg.text == "hello"


def test_close_ends_consumers():
    async def main():
        bus = Bus(ReplayClock())
        sub = bus.subscribe("intents")
        bus.publish("intents", m.Intent(0, "mute", "mute"))
        seen = []

        async def consume():
            async for env in sub:
                seen.append(env.msg.name)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        bus.close()
        await asyncio.wait_for(task, 1.0)
        with pytest.raises(BusClosed):
            await sub.get()
        return seen

    assert asyncio.run(main()) == ["mute"]


def test_is_stale_rule():
    assert not is_stale(0, 500_000_000, 0.5)
    assert is_stale(0, 500_000_001, 0.5)
    assert not is_stale(0, 10**12, None)


def test_staleness_follows_the_replay_clock():
    clock = ReplayClock()
    bus = Bus(clock)
    health = bus.subscribe("health")
    bus.expect("frames", "vehicle")
    clock.advance_to(400_000_000)
    assert bus.check_stale() == []
    clock.advance_to(600_000_000)  # frames (0.5 s) stale, vehicle (2 s) not yet
    (change,) = bus.check_stale()
    assert (change.topic, change.stale, change.age_s) == ("frames", True, 0.6)
    assert health.get_nowait().msg == change
    assert bus.stale_topics() == {"frames"}
    assert bus.check_stale() == []  # only changes are published
    bus.publish("frames", m.CameraFrame(t_ns=600_000_000, seq=1, image=__import__("numpy").zeros((1, 1, 3), "uint8")))
    (recovered,) = bus.check_stale()
    assert (recovered.topic, recovered.stale) == ("frames", False)
    clock.advance_to(2_100_000_000)
    topics = {c.topic for c in bus.check_stale() if c.stale}
    assert topics == {"frames", "vehicle"}
    bus.unexpect("frames")
    assert "frames" not in bus.stale_topics()


def test_watch_checks_staleness_in_clock_time():
    async def main():
        clock = ReplayClock()
        bus = Bus(clock)
        health = bus.subscribe("health")
        bus.expect("detections")
        task = asyncio.create_task(bus.watch(0.1))
        for step in range(1, 9):  # drive time moves 0.8 s in 0.1 s steps
            await asyncio.sleep(0)
            clock.advance_to(step * 100_000_000)
            await asyncio.sleep(0.001)
        env = await asyncio.wait_for(health.get(), 1.0)
        task.cancel()
        return env

    env = asyncio.run(main())
    assert env.msg.topic == "detections" and env.msg.stale
    assert 0.5 < env.msg.age_s <= 0.7


def test_topic_table_lint():
    for name, spec in TOPICS.items():
        assert spec.kind in ("latest", "fifo"), name
        if spec.rate_hz:
            # staleness must tolerate a few missed periods, never trip on one late message
            assert spec.stale_after_s is None or spec.stale_after_s >= 2.0 / spec.rate_hz, name
        else:
            assert spec.kind == "fifo" and spec.logged, f"event topic {name} must be a logged FIFO"
    assert not TOPICS["frames"].logged and not TOPICS["audio"].logged  # pixels and PCM never logged
    assert TOPICS["frames"].kind == "latest"  # stale frames are dropped, never queued
