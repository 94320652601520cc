"""Clocks: replay time moves only when the replay says so; sleepers wake in drive time."""

from __future__ import annotations

import asyncio

import pytest

from vehicle_assist.clock import Clock, ReplayClock, WallClock


def test_both_clocks_satisfy_the_protocol():
    assert isinstance(WallClock(), Clock) and isinstance(ReplayClock(), Clock)


def test_wall_clock_is_monotonic():
    c = WallClock()
    a, b = c.now_ns(), c.now_ns()
    assert b >= a


def test_replay_clock_never_goes_back():
    c = ReplayClock(100)
    c.advance_to(200)
    assert c.now_ns() == 200
    with pytest.raises(ValueError, match="backwards"):
        c.advance_to(150)


def test_replay_sleep_wakes_only_when_drive_time_passes():
    async def scenario():
        c = ReplayClock(0)
        woke: list[int] = []

        async def sleeper():
            await c.sleep(1.0)
            woke.append(c.now_ns())

        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0.01)
        c.advance_to(500_000_000)
        await asyncio.sleep(0.01)
        assert woke == []
        c.advance_to(1_000_000_000)
        await asyncio.wait_for(task, 1.0)
        return woke

    assert asyncio.run(scenario()) == [1_000_000_000]
