"""Workload-aware timing (pure): may a non-urgent advisory be spoken now, must it wait, or is it stale?

A non-urgent advisory waits while a hazard at ``hold_level`` or above is active, or while the
situation is demanding (high speed with close traffic, or a junction-like road), and is dropped
once its time-to-live has passed. Time comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from vehicle_assist.advisory.router import level
from vehicle_assist.clock import Clock
from vehicle_assist.config import WorkloadSettings
from vehicle_assist.messages import Advisory, Hazard, VehicleState

SPEAK, WAIT, DROP = "speak", "wait", "drop"


@dataclass(frozen=True)
class Decision:
    """What to do with a pending advisory now, and why."""

    action: str
    reason: str


def demanding(hazards: list[Hazard] | tuple[Hazard, ...], ego: VehicleState | None, settings: WorkloadSettings) -> str:
    """Why the situation is demanding ('' when it is not): high speed with close traffic, or a junction."""
    if ego is not None and ego.road_type and ego.road_type.lower() in settings.demanding_road_types:
        return f"at a {ego.road_type}"
    if ego is not None and ego.speed_mps is not None and ego.speed_mps >= settings.high_speed_mps:
        close = [h for h in hazards if h.distance_m is not None and h.distance_m <= settings.close_distance_m]
        if close:
            return f"{ego.speed_mps:.0f} m/s with {close[0].label} at {close[0].distance_m:.0f} m"
    return ""


def decide(advisory: Advisory, now_ns: int, hazards: list[Hazard] | tuple[Hazard, ...], ego: VehicleState | None,
           settings: WorkloadSettings) -> Decision:
    """SPEAK, WAIT or DROP a pending non-urgent advisory at ``now_ns``."""
    ttl_s = min(advisory.ttl_s, settings.ttl_s) if advisory.ttl_s > 0 else settings.ttl_s
    age_s = (now_ns - advisory.t_ns) / 1e9
    if age_s > ttl_s:
        return Decision(DROP, f"older than its time-to-live ({age_s:.1f} s > {ttl_s:.1f} s)")
    hold = level(settings.hold_level)
    active = [h for h in hazards if h.level >= hold]
    if active:
        worst = max(active, key=lambda h: h.level)
        return Decision(WAIT, f"{worst.level.name.lower()} hazard active: {worst.label}")
    why = demanding(hazards, ego, settings)
    if why:
        return Decision(WAIT, f"driver busy: {why}")
    return Decision(SPEAK, "clear")


Situation = Callable[[], tuple[Sequence[Hazard], VehicleState | None]]
"""Returns the current hazards and ego state (from the bus's latest values)."""


async def hold(advisory: Advisory, clk: Clock, situation: Situation, settings: WorkloadSettings,
               poll_s: float = 0.1) -> Decision:
    """Wait, in the run's clock time, until ``advisory`` may be spoken (SPEAK) or has expired (DROP)."""
    while True:
        hazards, ego = situation()
        d = decide(advisory, clk.now_ns(), list(hazards), ego, settings)
        if d.action != WAIT:
            return d
        await clk.sleep(poll_s)
