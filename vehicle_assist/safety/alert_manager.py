"""The alert manager: hazards in, alert start/end events out (a state machine; time passed in).

Like openpilot's AlertManager, it picks the single active alert by priority. An alert is *due*
while some hazard of its trigger kind is at or above its trigger level. The active alert is held
at least ``min_duration_s``; a higher-priority due alert replaces it at once; the same alert never
starts again within ``cooldown_s`` of its last start. A stronger alert covers the weaker ones of
the same hazard kind (after "Brake!" a "vehicle ahead" would only repeat it), so starting it also
starts their cooldowns. A driver's mute makes non-critical alerts
silent (still shown and logged); critical alerts are never muted.
"""

from __future__ import annotations

from typing import Iterable

from vehicle_assist.messages import AlertEvent, AlertState, Hazard
from vehicle_assist.safety.alerts import AlertSpec


class AlertManager:
    """Table-driven selection of the one active alert."""

    def __init__(self, table: dict[str, AlertSpec]) -> None:
        self.table = table
        self.active: str | None = None
        self._active_since = 0
        self._last_start: dict[str, int] = {}
        self._active_audible = False

    def due(self, hazards: Iterable[Hazard]) -> set[str]:
        """Alert names whose trigger matches some hazard now."""
        hazards = list(hazards)
        return {name for name, spec in self.table.items()
                if any(h.kind == spec.trigger.kind and h.level >= spec.trigger.min_level for h in hazards)}

    def update(self, hazards: Iterable[Hazard], now_ns: int, mute_until_ns: int | None = None) -> list[AlertEvent]:
        """Advance to ``now_ns`` with the current hazards; returns the alerts that ended and started."""
        due = self.due(hazards)
        events: list[AlertEvent] = []
        current = self.active
        holding = current is not None and (
            current in due or now_ns - self._active_since < self.table[current].min_duration_s * 1e9)
        ready = [n for n in due if n == current or self._cooled(n, now_ns)]
        best = max(ready, key=lambda n: self.table[n].priority, default=None)
        if best is not None and best != current and (
                not holding or self.table[best].priority > self.table[current].priority):
            if current is not None:
                events.append(self._event(current, now_ns, AlertState.END, self._active_audible))
            audible = self._audible(best, now_ns, mute_until_ns)
            self.active, self._active_since, self._active_audible = best, now_ns, audible
            self._last_start[best] = now_ns
            # a stronger alert covers the weaker ones of its hazard kind: they do not follow it
            kind, prio = self.table[best].trigger.kind, self.table[best].priority
            for name, spec in self.table.items():
                if spec.trigger.kind == kind and spec.priority < prio:
                    self._last_start[name] = now_ns
            events.append(self._event(best, now_ns, AlertState.START, audible))
        elif current is not None and not holding:
            events.append(self._event(current, now_ns, AlertState.END, self._active_audible))
            self.active = None
        return events

    def _cooled(self, name: str, now_ns: int) -> bool:
        last = self._last_start.get(name)
        return last is None or now_ns - last >= self.table[name].cooldown_s * 1e9

    def _audible(self, name: str, now_ns: int, mute_until_ns: int | None) -> bool:
        spec = self.table[name]
        muted = mute_until_ns is not None and now_ns < mute_until_ns
        return spec.audible and (spec.critical or not muted)

    def _event(self, name: str, now_ns: int, state: AlertState, audible: bool) -> AlertEvent:
        spec = self.table[name]
        return AlertEvent(t_ns=now_ns, name=name, priority=spec.priority, text=spec.text, audible=audible, state=state)


__all__ = ["AlertManager"]
