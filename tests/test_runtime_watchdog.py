"""Watchdog: a crashing stage is reported as an ErrorEvent and restarted with backoff; one that
keeps crashing is given up while the others run on; cancellation stops everything."""

from __future__ import annotations

import asyncio

from vehicle_assist.clock import ReplayClock
from vehicle_assist.watchdog import Backoff, Watchdog


def test_backoff_delays_grow_and_cap():
    b = Backoff(initial_s=0.5, factor=2.0, max_s=3.0)
    assert [b.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def _watchdog(errors, slept, **kw):
    async def fake_sleep(s):
        slept.append(s)
        await asyncio.sleep(0)

    return Watchdog(ReplayClock(7), errors.append, sleep=fake_sleep, **kw)


def test_crashed_stage_is_logged_and_restarted_with_backoff():
    errors, slept, runs = [], [], []

    async def flaky():
        runs.append(1)
        if len(runs) <= 2:
            raise RuntimeError(f"detector blew up #{len(runs)}")

    async def main():
        wd = _watchdog(errors, slept)
        wd.start("detect", flaky)
        await wd.wait()
        return wd

    wd = asyncio.run(main())
    assert len(runs) == 3 and wd.restarts["detect"] == 2
    assert slept == [0.5, 1.0]
    assert [e.code for e in errors] == ["stage-crashed", "stage-crashed"]
    assert errors[0].stage == "detect" and "RuntimeError: detector blew up #1" in errors[0].message
    assert errors[0].t_ns == 7 and errors[1].restarts == 2


def test_a_stage_that_keeps_crashing_is_given_up_and_others_run_on():
    errors, slept, ticks = [], [], []

    async def broken():
        raise ValueError("bad frame")

    async def steady():
        for _ in range(20):
            ticks.append(1)
            await asyncio.sleep(0)

    async def main():
        wd = _watchdog(errors, slept, max_restarts=3)
        wd.start("broken", broken)
        wd.start("steady", steady)
        await asyncio.wait_for(wd.wait(), 5)

    asyncio.run(main())
    assert [e.code for e in errors] == ["stage-crashed"] * 3 + ["stage-gave-up"]
    assert len(ticks) == 20


def test_stop_cancels_running_stages():
    errors, slept = [], []

    async def forever():
        while True:
            await asyncio.sleep(0.01)

    async def main():
        wd = _watchdog(errors, slept)
        task = wd.start("loop", forever)
        await asyncio.sleep(0.05)
        await wd.stop(1.0)
        return task

    task = asyncio.run(main())
    assert task.cancelled() and errors == []
