"""The advisory lane in the car: one advisory at a time, off the safety lane's path.

A driver's question replaces an advisory still running (its speech is stopped); a question another
lane can answer (``first``: the route lane's "what's the speed limit here?") is answered by it; a
hazard that persisted may start one unasked (``proactive.due``), and another lane may hand one in
(:meth:`AdvisoryDispatcher.tell`: a route advisory, said once the driver is not busy), never over a
running one. The answer is logged on ``advisories``; a failure is logged on ``errors`` and the voice
lane goes on (the safety lane never waits on any of this).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Iterable, Protocol

from vehicle_assist import clock
from vehicle_assist.advisory import timing
from vehicle_assist.advisory.proactive import ProactiveState, due
from vehicle_assist.bus import Bus
from vehicle_assist.config import ProactiveSettings, WorkloadSettings
from vehicle_assist.messages import Advisory, AdvisoryEvent, ErrorEvent, Hazard, Intent, Scene, VehicleState

APOLOGY = "Sorry, I can't answer questions right now."
ROUTE_ADVICE = "route-advice"
"""The advisory_events stage around the rendering of an advisory another lane handed in (replay's
lockstep waits for its end, so what that lane decides next never depends on render speed)."""

Say = Callable[[str, str], Awaitable[None]]
"""``say(text, source)``: speak a text on the advisory tier (the runtime's speaker, off the loop)."""


class Advisor(Protocol):
    """What the dispatcher needs of ``advisory.run.AdvisoryRun``."""

    async def execute(self, question: str | None, scene: Scene | None, t_ns: int) -> Advisory:
        """Answer and speak; returns the Advisory."""


def scene_of(hazards: Iterable[Hazard], ego: VehicleState | None) -> Scene | None:
    """Pure: the situation for retrieval, from the worst current hazard and what is known of the ego."""
    worst = max(hazards, key=lambda h: int(h.level), default=None)
    if worst is None and ego is None:
        return None
    return Scene(label=worst.label if worst else None, distance_m=worst.distance_m if worst else None,
                 speed_mps=getattr(ego, "speed_mps", None), road_type=getattr(ego, "road_type", None),
                 weather=getattr(ego, "weather", None), hazard=worst.kind if worst else None)


class AdvisoryDispatcher:
    """Starts, replaces and finishes advisories; ``last`` is the last one given (for "repeat")."""

    def __init__(self, advisor: Advisor | None, bus: Bus, say: Say, stop_speaking: Callable[[], None],
                 hazards: Callable[[], tuple[Hazard, ...]], proactive: ProactiveSettings,
                 workload: WorkloadSettings = WorkloadSettings(),
                 first: Callable[[Intent], Advisory | None] = lambda intent: None) -> None:
        self.advisor, self.bus, self.say, self.stop_speaking = advisor, bus, say, stop_speaking
        self.hazards, self.proactive, self.workload, self.first = hazards, proactive, workload, first
        self.last: Advisory | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = ProactiveState()

    def busy(self) -> bool:
        """An advisory is running."""
        return self._task is not None and not self._task.done()

    def ask(self, intent: Intent) -> None:
        """Answer the driver's question, replacing an advisory still running."""
        if self.busy():
            self._task.cancel()
            self.stop_speaking()
        known = self.first(intent)
        if known is not None:
            self._task = asyncio.ensure_future(self._give(known, "route"))
            return
        self._task = asyncio.ensure_future(self._advise(intent.text, scene_of(self.hazards(), self.ego()), intent.t_ns))

    def tell(self, advisory: Advisory, source: str) -> None:
        """Say an advisory another lane made, once the driver is not busy (the workload hold; dropped
        when it goes stale); never over a running advisory."""
        if not self.busy():
            self._task = asyncio.ensure_future(self._give(advisory, source, hold=True))

    def offer(self, found: tuple[Hazard, ...], t_ns: int) -> None:
        """A hazard that persisted may start an advisory on its rule, unasked; never over a running one."""
        hazard, self._state = due(found, self._state, t_ns, self.proactive)
        if hazard is None or self.advisor is None or self.busy():
            return
        self._task = asyncio.ensure_future(self._advise(None, scene_of([hazard], self.ego()), self.bus.clock.now_ns()))

    async def finish(self, timeout_s: float) -> None:
        """Let a running advisory finish (at most ``timeout_s``), then cancel it."""
        if self.busy():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()

    def close(self) -> None:
        """Cancel an advisory still running."""
        if self.busy():
            self._task.cancel()

    def ego(self) -> VehicleState | None:
        """The latest vehicle state (None before any)."""
        env = self.bus.latest("vehicle")
        return env.msg if env else None

    async def _give(self, advisory: Advisory, source: str, hold: bool = False) -> None:
        """Say an advisory made elsewhere (under the workload hold with ``hold``, its rendering bracketed
        by ``route-advice`` events) and log it."""
        if hold:
            situation = lambda: (self.hazards(), self.ego())  # noqa: E731
            if (await timing.hold(advisory, self.bus.clock, situation, self.workload)).action == timing.DROP:
                return
            self.bus.publish("advisory_events", AdvisoryEvent("start", ROUTE_ADVICE, clock.perf_ns()))
        try:
            await self.say(advisory.text, source)
            self.last = advisory
            self.bus.publish("advisories", advisory)
        finally:
            if hold:
                self.bus.publish("advisory_events", AdvisoryEvent("end", ROUTE_ADVICE, clock.perf_ns()))

    async def _advise(self, question: str | None, scene: Scene | None, t_ns: int) -> None:
        """Answer a question (or, with ``question`` None, advise on the scene's hazard) and log it."""
        try:
            if self.advisor is None:
                advisory = Advisory(t_ns, APOLOGY, "refusal", refused=True, question=question)
                await self.say(advisory.text, "advisory")
            else:
                advisory = await self.advisor.execute(question, scene, t_ns)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the voice lane degrades, never the safety lane
            self.bus.publish("errors", ErrorEvent(self.bus.clock.now_ns(), "advisory-failed", f"{type(err).__name__}: {err}",
                                                  stage="advisory"))
            return
        self.last = advisory
        self.bus.publish("advisories", advisory)


__all__ = ["AdvisoryDispatcher", "Advisor", "Say", "scene_of", "APOLOGY", "ROUTE_ADVICE"]
