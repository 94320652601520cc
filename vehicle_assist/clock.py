"""Time, in one place. No other module reads the system clock.

Production code receives a :class:`Clock`; live runs pass a :class:`WallClock`, replay passes a
:class:`ReplayClock` driven by the drive's timestamps, so decisions are identical under replay.
All times are integer nanoseconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What every component may ask of time."""

    def now_ns(self) -> int:
        """Current time of this run, in nanoseconds (monotonic within a run)."""

    def perf_ns(self) -> int:
        """Processing time for measuring latency; real even under replay."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


def perf_ns() -> int:
    """Monotonic processing-time counter for stage timings (never the drive's time)."""
    return time.perf_counter_ns()


def cpu_ns() -> int:
    """CPU time this process has used (all threads), for cost figures that do not depend on other load."""
    return time.process_time_ns()


def unix_time() -> float:
    """Wall-clock seconds since the epoch, for log headers and file names only."""
    return time.time()


class WallClock:
    """The live clock: monotonic real time."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def perf_ns(self) -> int:
        return time.perf_counter_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ReplayClock:
    """A clock driven by a recorded drive: time moves only when the replay says so.

    ``advance_to`` is called by the replay source with each message's recorded timestamp.
    ``sleep`` returns once replay time has passed the deadline, so timers fire in drive time.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def now_ns(self) -> int:
        return self._now

    def perf_ns(self) -> int:
        return time.perf_counter_ns()

    def advance_to(self, t_ns: int) -> None:
        """Move time forward (never backwards) and wake sleepers whose deadline passed."""
        with self._lock:
            if t_ns < self._now:
                raise ValueError(f"replay time went backwards: {t_ns} < {self._now}")
            self._now = t_ns
            due = [w for w in self._waiters if w[0] <= t_ns]
            self._waiters = [w for w in self._waiters if w[0] > t_ns]
        for _, fut in due:
            if not fut.done():
                fut.get_loop().call_soon_threadsafe(_resolve, fut)

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + int(seconds * 1e9)
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.append((deadline, fut))
        await fut


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
