"""Which speed limit applies on a way: the ``maxspeed`` tag, else Rule 124's national limit (pure).

The national limit depends on the road category (built-up, single, dual carriageway, motorway),
the vehicle type and, for built-up roads, the nation (Wales: 20 mph). The tables are in
``configs/route.yaml``. A way whose ``maxspeed`` is ``none`` or unreadable has no claimable limit.

Sources (``limit_source``): ``tagged`` (the way's ``maxspeed``), ``national`` (Rule 124 for a
category the map states: a motorway, the way's own ``lit=yes``/``lit=no``, a dual carriageway, or
``maxspeed=national``/``GB:nsl_*``), ``built_up_inferred`` (Rule 124's built-up limit for a way with
no ``lit`` tag that looks built-up: a street class (``built_up_classes``), or street lights,
buildings or urban landuse around it (``built_up_evidence``); a guess from the surroundings, said
as such).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vehicle_assist.route.map import BuiltUpEvidence, RoadMap, RouteTables

SOURCES = ("tagged", "national", "built_up_inferred")


@dataclass(frozen=True)
class WayLimits:
    """Per-way applicable limit for one vehicle type: ``mph`` (NaN: none) and ``source``
    (``tagged`` | ``national`` | ``built_up_inferred`` | ``""``) arrays, indexed like the map's ways."""

    mph: np.ndarray
    source: np.ndarray
    category: np.ndarray

    def of(self, way: int) -> tuple[float | None, str | None]:
        v = float(self.mph[way])
        return (None, None) if math.isnan(v) else (v, str(self.source[way]))


def road_category(way_class: str, dual: bool, lit: int, built_up_classes: list[str], looks_built_up: bool = False) -> str:
    """Rule 124's road category of a way: motorway | dual | built_up | single. ``lit``: 1 tagged
    lit=yes, 0 lit=no, -1 untagged; with no tag, a street class or ``looks_built_up`` (the
    surroundings, :func:`looks_built_up`) make it built-up."""
    if way_class in ("motorway", "motorway_link"):
        return "motorway"
    if lit == 1 or (lit != 0 and (way_class in built_up_classes or looks_built_up)):
        return "built_up"
    return "dual" if dual else "single"


def looks_built_up(near_lit: int, near_buildings: int, near_lamps: int, near_landuse: bool, ev: BuiltUpEvidence) -> bool:
    """Street lights likely: other lit ways, buildings, street lamps or urban landuse around the way."""
    return (near_lit >= ev.min_lit_ways or near_buildings >= ev.min_buildings or near_lamps >= ev.min_lamps
            or bool(near_landuse))


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
    source = np.full(n, "", dtype="<U17")
    category = np.empty(n, dtype="<U8")
    ev = tables.built_up_evidence
    for w in range(n):
        lit, cls = int(a["way_lit"][w]), str(a["way_class"][w])
        evidence = looks_built_up(int(a["way_near_lit"][w]), int(a["way_near_buildings"][w]),
                                  int(a["way_near_lamps"][w]), bool(a["way_near_landuse"][w]), ev)
        cat = road_category(cls, bool(a["way_dual"][w]), lit, tables.built_up_classes, evidence)
        inferred = cat == "built_up" and lit != 1
        kind = str(a["way_maxspeed_kind"][w])
        if kind.startswith("national:"):  # the national-limit sign: not a built-up road
            stated = kind.split(":", 1)[1]
            cat = stated or ("motorway" if cat == "motorway" else "dual" if bool(a["way_dual"][w]) else "single")
            inferred = False
        category[w] = cat
        if kind == "mph":
            mph[w], source[w] = float(a["way_maxspeed_mph"][w]), "tagged"
        elif kind == "none":
            continue
        else:  # untagged, or tagged as "national": Rule 124
            mph[w] = national_limit(cat, vehicle_type, nation, tables)
            source[w] = "built_up_inferred" if inferred else "national"
    return WayLimits(mph, source, category)
