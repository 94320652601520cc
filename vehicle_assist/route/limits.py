"""Which speed limit applies on a way: the ``maxspeed`` tag, else Rule 124's national limit (pure).

The national limit depends on the road category (built-up, single, dual carriageway, motorway),
the vehicle type and, for built-up roads, the nation (Wales: 20 mph). The tables are in
``configs/route.yaml``. A way whose ``maxspeed`` is ``none`` or unreadable has no claimable limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vehicle_assist.route.map import RoadMap, RouteTables

SOURCES = ("tagged", "national")


@dataclass(frozen=True)
class WayLimits:
    """Per-way applicable limit for one vehicle type: ``mph`` (NaN: none) and ``source``
    (``tagged`` | ``national`` | ``""``) arrays, indexed like the map's ways."""

    mph: np.ndarray
    source: np.ndarray
    category: np.ndarray

    def of(self, way: int) -> tuple[float | None, str | None]:
        v = float(self.mph[way])
        return (None, None) if math.isnan(v) else (v, str(self.source[way]))


def road_category(way_class: str, dual: bool, lit: int, built_up_classes: list[str]) -> str:
    """Rule 124's road category of a way: motorway | dual | built_up | single."""
    if way_class in ("motorway", "motorway_link"):
        return "motorway"
    if lit == 1 or (lit != 0 and way_class in built_up_classes):
        return "built_up"
    return "dual" if dual else "single"


def national_limit(category: str, vehicle_type: str, nation: str, tables: RouteTables) -> float:
    """Rule 124's limit (mph) for a category, vehicle type and nation (england | scotland | wales)."""
    row = tables.national_limits_mph.get(vehicle_type)
    if row is None:
        raise KeyError(f"unknown vehicle type {vehicle_type!r}; known: {sorted(tables.national_limits_mph)}")
    key = "built_up_wales" if category == "built_up" and nation == "wales" else category
    return float(row[key])


def way_limits(rmap: RoadMap, tables: RouteTables, vehicle_type: str = "car", nation: str = "england") -> WayLimits:
    """The applicable limit of every way of a map for one vehicle type."""
    a = rmap.a
    n = len(a["way_id"])
    mph = np.full(n, np.nan)
    source = np.full(n, "", dtype="<U8")
    category = np.empty(n, dtype="<U8")
    for w in range(n):
        cat = road_category(str(a["way_class"][w]), bool(a["way_dual"][w]), int(a["way_lit"][w]), tables.built_up_classes)
        kind = str(a["way_maxspeed_kind"][w])
        if kind.startswith("national:"):
            cat = kind.split(":", 1)[1] or cat
        category[w] = cat
        if kind == "mph":
            mph[w], source[w] = float(a["way_maxspeed_mph"][w]), "tagged"
        elif kind == "none":
            continue
        else:  # untagged, or tagged as "national": Rule 124
            mph[w], source[w] = national_limit(cat, vehicle_type, nation, tables), "national"
    return WayLimits(mph, source, category)
