"""The alert table (``configs/alerts.yaml``): name -> priority, text, cooldown, minimum duration, audible.

Alerts are data, like openpilot's events. :func:`load_table` validates the file strictly and
checks the rules a table must keep (unique priorities, critical alerts audible on the alert tier,
short spoken text); ``tests/test_safety_alerts.py`` lints the shipped table against the hazard
kinds it triggers on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from vehicle_assist import config
from vehicle_assist.config import Field, StrictModel
from vehicle_assist.messages import HazardLevel, Tier

SYSTEM_SIGNALS = ("camera-lost", "perception-lagging")
"""Hazard kinds raised by the lane itself rather than by a track."""

ROUTE_SIGNALS = ("speeding",)
"""Hazard kinds raised by the route lane (vehicle_assist.route.advice): never above a hazard alert."""

MAX_WORDS = 8
"""Spoken alerts stay short: a driver must take them in within about two seconds."""

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class Trigger(StrictModel):
    """Which hazards raise an alert: a hazard kind at or above a level."""

    kind: str
    level: Literal["info", "caution", "warning", "critical"]

    @property
    def min_level(self) -> HazardLevel:
        return HazardLevel[self.level.upper()]


class AlertSpec(StrictModel):
    """One row of the alert table."""

    priority: int = Field(ge=0, le=1000)
    text: str = Field(min_length=1)
    cooldown_s: float = Field(ge=0)
    min_duration_s: float = Field(ge=0)
    audible: bool = True
    tier: Literal["alert", "advisory"] = "alert"
    critical: bool = False
    trigger: Trigger

    @property
    def audio_tier(self) -> Tier:
        return Tier[self.tier.upper()]


class AlertTableFile(StrictModel):
    alerts: dict[str, AlertSpec]


def load_table(path: Path | str | None = None) -> dict[str, AlertSpec]:
    """Load and validate the alert table; raises ConfigError naming the offending alert."""
    path = Path(path) if path else config.config_path("alerts.yaml")
    table = config.load(path, AlertTableFile).alerts
    if not table:
        raise config.ConfigError(path, "alerts", "at least one alert")
    seen: dict[int, str] = {}
    for name, spec in table.items():
        where = f"alerts.{name}"
        if not _NAME.match(name):
            raise config.ConfigError(path, where, "a kebab-case name (e.g. forward-collision)")
        if spec.priority in seen:
            raise config.ConfigError(path, f"{where}.priority", f"a priority not shared with {seen[spec.priority]}")
        seen[spec.priority] = name
        if len(spec.text.split()) > MAX_WORDS:
            raise config.ConfigError(path, f"{where}.text", f"at most {MAX_WORDS} words")
        if spec.critical and not (spec.audible and spec.tier == "alert"):
            raise config.ConfigError(path, where, "critical alerts audible and on the alert tier")
        if spec.min_duration_s > spec.cooldown_s:
            raise config.ConfigError(path, f"{where}.min_duration_s", "no longer than cooldown_s")
    return table


__all__ = ["AlertSpec", "Trigger", "load_table", "SYSTEM_SIGNALS", "ROUTE_SIGNALS", "MAX_WORDS"]
