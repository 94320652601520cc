"""Watchdog: run each stage as an asyncio task; a stage that crashes is reported and restarted.

A crash becomes an :class:`~vehicle_assist.messages.ErrorEvent` (code ``stage-crashed``, the
exception in the message, the restart count) handed to ``on_error`` (the runtime publishes it on
``errors``, so it lands in the trip log); the stage is started again after an exponential
backoff. A stage that ran longer than ``reset_after_s`` before crashing starts over at the first
delay. After ``max_restarts`` crashes in a row it is given up (``stage-gave-up``) and the other
stages keep running. A stage that returns normally (its source ended) is not restarted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from vehicle_assist.clock import Clock
from vehicle_assist.messages import ErrorEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Restart delays: ``initial_s * factor**n``, capped at ``max_s``."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 10.0
    reset_after_s: float = 30.0
    """A stage that ran this long before crashing restarts at ``initial_s`` again."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based); pure."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))


class Watchdog:
    """Supervises named stage coroutines (each built afresh by a factory on every start)."""

    def __init__(self, clock: Clock, on_error: Callable[[ErrorEvent], None], backoff: Backoff | None = None,
                 max_restarts: int | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.clock = clock
        self.on_error = on_error
        self.backoff = backoff or Backoff()
        self.max_restarts = max_restarts
        self._sleep = sleep  # real time: restarts must not wait for replay time to move
        self.restarts: dict[str, int] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_settings(cls, clock: Clock, on_error: Callable[[ErrorEvent], None], settings: Any) -> "Watchdog":
        """From :class:`~vehicle_assist.config.WatchdogSettings`."""
        s = settings
        return cls(clock, on_error, Backoff(s.initial_backoff_s, s.backoff_factor, s.max_backoff_s, s.reset_after_s),
                   s.max_restarts)

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start supervising stage ``name``; returns its supervising task."""
        if name in self.tasks and not self.tasks[name].done():
            raise ValueError(f"stage '{name}' is already running")
        self.restarts[name] = 0
        task = asyncio.get_running_loop().create_task(self._supervise(name, factory), name=f"stage:{name}")
        self.tasks[name] = task
        return task

    def cancel(self, *names: str) -> None:
        """Stop the named stages now (no restart)."""
        for name in names:
            if (task := self.tasks.get(name)) is not None:
                task.cancel()

    async def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        streak = 0
        while True:
            started = self.clock.perf_ns()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                ran_s = (self.clock.perf_ns() - started) / 1e9
                streak = 1 if ran_s >= self.backoff.reset_after_s else streak + 1
                self.restarts[name] += 1
                log.error("stage %s crashed after %.2f s (crash %d in a row)", name, ran_s, streak, exc_info=err)
                if self.max_restarts is not None and streak > self.max_restarts:
                    self._report(name, "stage-gave-up",
                                 f"{type(err).__name__}: {err} (crashed {streak} times in a row; not restarted)")
                    return
                delay = self.backoff.delay(streak)
                self._report(name, "stage-crashed", f"{type(err).__name__}: {err} (restart in {delay:.2f} s)")
                await self._sleep(delay)

    def _report(self, name: str, code: str, message: str) -> None:
        event = ErrorEvent(t_ns=self.clock.now_ns(), code=code, message=message, stage=name,
                           restarts=self.restarts[name])
        try:
            self.on_error(event)
        except Exception:  # reporting must never take the watchdog down
            log.exception("watchdog could not report %s", event)

    async def wait(self) -> None:
        """Until every supervised stage has finished (returned or given up)."""
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel every stage and wait up to ``timeout_s`` for them to unwind."""
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=timeout_s)
