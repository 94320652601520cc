"""Proactive advisories (pure): when a hazard has persisted, the advisory lane may offer the rule.

A cyclist held in the ego path for a few seconds, or a pedestrian at caution level, is not urgent
(the alert table handles urgency) but is a moment where a short reminder of the rule helps ("give
them at least 1.5 metres when overtaking"). :func:`due` looks at the current hazards and says
which one, if any, should start an advisory now: the hazard's kind is in the table with a minimum
level, the same track has been there for ``persist_s`` (missing from frames for up to ``gap_s`` does
not break the run: the detector sees people only on alternate frames), and no proactive advisory of
that kind was started within ``cooldown_s``. Time comes in as an argument; state goes in and comes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from vehicle_assist.config import ProactiveSettings
from vehicle_assist.messages import Hazard, HazardLevel


@dataclass(frozen=True)
class ProactiveState:
    """Per (kind, track): (first seen in this run, last seen); per kind: when it last triggered."""

    seen: dict[tuple[str, int | None], tuple[int, int]] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)


def due(hazards: Iterable[Hazard], state: ProactiveState, now_ns: int,
        settings: ProactiveSettings) -> tuple[Hazard | None, ProactiveState]:
    """The hazard that should start a proactive advisory now (or None), and the next state."""
    if not settings.enabled:
        return None, state
    wanted = {k: HazardLevel[v.upper()] for k, v in settings.kinds.items()}
    present = [h for h in hazards if h.kind in wanted and h.level >= wanted[h.kind]
               and (h.in_corridor or not settings.in_corridor_only)]
    gap_ns = int(settings.gap_s * 1e9)
    seen = {k: v for k, v in state.seen.items() if now_ns - v[1] <= gap_ns}
    for h in present:
        key = (h.kind, h.track_id)
        seen[key] = (seen[key][0] if key in seen else now_ns, now_ns)
    last = dict(state.last)
    chosen = None
    for h in sorted(present, key=lambda h: (-int(h.level), h.distance_m if h.distance_m is not None else 1e9)):
        held_s = (now_ns - seen[(h.kind, h.track_id)][0]) / 1e9
        quiet_s = (now_ns - last[h.kind]) / 1e9 if h.kind in last else float("inf")
        if held_s >= settings.persist_s and quiet_s >= settings.cooldown_s:
            chosen = h
            last[h.kind] = now_ns
            break
    return chosen, ProactiveState(seen, last)


__all__ = ["ProactiveState", "due"]
