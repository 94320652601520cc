"""The route lane: vehicle states in, :class:`RouteContext` on the bus (topic ``route``), and what
the rest of the runtime should do about it (a route advisory due, the speeding hazard).

:meth:`RouteLane.step` is synchronous and does the work for one vehicle state (a map-matching step
is well under a millisecond; the map and its KD-tree are loaded before the run). The decisions
themselves are pure (:mod:`.advice`). :meth:`RouteLane.serve` is the asyncio task: it consumes the
``vehicle`` topic, publishes ``route`` and a ``timings`` row per fix, and hands advice and hazards
to the runtime's callbacks. Positions never leave the lane: the context names the road, not where on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from vehicle_assist.config import RouteSettings
from vehicle_assist.messages import Advisory, Hazard, Intent, RouteContext, StageTiming, VehicleState
from vehicle_assist.route import advice as adv
from vehicle_assist.route.context import RouteTracker
from vehicle_assist.route.match import Fix


@lru_cache(maxsize=2)
def _load_map(path: str):
    from vehicle_assist.route.map import load_map

    rmap = load_map(path)
    _ = rmap.tree  # build the KD-tree now, not on the first fix
    return rmap


@dataclass
class LaneStep:
    """What one vehicle state produced."""

    context: RouteContext | None
    """None: the state was a repeat of the last fix (nothing new to match; its speed and yaw rate
    still move the dead reckoning on)."""
    advice: adv.Advice | None = None
    hazards: list[Hazard] = field(default_factory=list)
    hazards_changed: bool = False
    ms: float = 0.0


class RouteLane:
    """One map: tracker (matcher + limits + ahead) and the decision states."""

    def __init__(self, tracker: RouteTracker, table: adv.AdviceTable | None = None) -> None:
        self.tracker = tracker
        self.table = table or adv.load_table()
        self.advice_state = adv.AdviceState()
        self.speeding_state = adv.SpeedingState()
        self.context: RouteContext | None = None
        self._last_pos: tuple[float | None, float | None] | None = None

    @classmethod
    def open(cls, settings: RouteSettings) -> "RouteLane":
        """The lane for ``settings.map`` (relative to VA_HOME); a RouteError when it cannot be read."""
        from vehicle_assist import paths

        # the lane answers at once: no fixed lag (its features ahead and speeding are about now)
        return cls(RouteTracker(_load_map(str(paths.resolve(Path(settings.map)))),
                                settings.model_copy(update={"match_lag_s": 0.0, "match_whole_track": False})))

    def answer(self, intent: Intent) -> Advisory | None:
        """The answer to a question that needs the position ("what's the speed limit here?"), from the
        route context; None for any other question."""
        kind = adv.question_kind(intent.text, self.table)
        return None if kind is None else adv.answer(kind, intent.text, self.context, intent.t_ns)

    def step(self, state: VehicleState, now_ns: int, busy: bool = False) -> LaneStep:
        """Match this state's fix, decide advice (unless ``busy``: an advisory is running) and speeding."""
        t0 = time.perf_counter_ns()
        pos = (state.lat, state.lon)
        ctx: RouteContext | None = None
        if pos != self._last_pos or pos == (None, None):
            fix = Fix(now_ns / 1e9, state.lat, state.lon, state.speed_mps, state.heading_deg, state.yaw_rate_dps)
            ctx = self.tracker.update(fix, now_ns)
            self._last_pos = pos
            self.context = ctx
        else:  # the same fix again (GNSS is slower than CAN and the IMU): dead reckoning goes on
            self.tracker.sense(now_ns / 1e9, state.speed_mps, state.yaw_rate_dps)
        out = LaneStep(ctx)
        current = self.context
        if ctx is not None:
            if busy:
                self.advice_state = adv.track(ctx, now_ns, self.advice_state)
            else:
                out.advice, self.advice_state = adv.advise(ctx, now_ns, self.advice_state, self.table)
        was = self.speeding_state.active
        limit = current.speed_limit_mph if current is not None and current.way_id is not None else None
        self.speeding_state = adv.speeding(limit, state.speed_mps, now_ns, self.speeding_state, self.table.speeding)
        out.hazards = adv.speeding_hazards(self.speeding_state, now_ns)
        out.hazards_changed = was != self.speeding_state.active
        out.ms = (time.perf_counter_ns() - t0) / 1e6
        return out

    async def serve(self, bus: Any, clock: Any, busy: Callable[[], bool],
                    on_step: Callable[[LaneStep], None]) -> None:
        """Consume ``vehicle``; publish ``route`` and its timing per new fix; ``on_step`` gets every step."""
        sub = bus.subscribe("vehicle")
        try:
            async for env in sub:
                now = clock.now_ns()
                result = self.step(env.msg, now, busy())
                if result.context is not None:
                    bus.publish("route", result.context)
                    bus.publish("timings", StageTiming(now, "route", "context", round(result.ms, 3)))
                on_step(result)
        finally:
            bus.unsubscribe(sub)


def open_lane(settings: RouteSettings) -> tuple[RouteLane | None, str | None]:
    """The lane for ``settings.map`` (None without a map), or ``(None, why)`` when the map cannot be read
    (the run goes on without route context)."""
    if not settings.map:
        return None, None
    from vehicle_assist.route.map import RouteError

    try:
        return RouteLane.open(settings), None
    except (RouteError, OSError) as err:
        return None, str(err)


__all__ = ["RouteLane", "LaneStep", "open_lane"]
