"""Route decisions (pure): which route advisory is due, whether the car is speeding, and the answer
to a question that needs the position. Time, the route context and the previous state come in as
arguments; a new state comes out. The tables are ``configs/route_advice.yaml``.

- :func:`advise`: at most one advisory per call, for the nearest feature ahead that is *sure* (no
  turn-off before it), within its kind's distance window, not advised before, its kind out of
  cooldown, and only while the match is stable. The text is the map's fact plus a sentence quoted
  from the cited rule (grounded by construction; ``tests/test_route_lane.py`` checks every quote).
- :func:`speeding`: on after ``persist_s`` more than ``on_over_mph`` over the applicable limit, off
  after ``clear_s`` at most ``off_over_mph`` over it (hysteresis); off at once with no limit known.
- :func:`question_kind` / :func:`answer`: "what's the speed limit here?", "what road is this?", "is
  there a crossing coming up?" answered from the context; with no map data the answer says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from vehicle_assist import config
from vehicle_assist.config import StrictModel
from vehicle_assist.messages import Advisory, Hazard, HazardLevel, RouteContext, RouteFeature

MPH = 0.44704
ROUTE = "route"
"""``Advisory.route`` of what the route lane says (advice and answers from the map)."""
SPEEDING = "speeding"
"""Hazard kind of the speeding alert (``configs/alerts.yaml``)."""


class AdviceKind(StrictModel):
    """One row of the advisory table."""

    feature: str
    details: list[str] = []
    """Feature details that count (crossing types); empty: any."""
    rule: str
    say: str = Field(min_length=1)
    """The map's fact; ``{distance}`` (metres, rounded), ``{limit}`` (mph), ``{detail}``."""
    quote: str = Field(min_length=1)
    """Verbatim from the rule's text."""
    min_m: float = Field(0.0, ge=0)
    max_m: float = Field(gt=0)
    cooldown_s: float = Field(ge=0)


class SpeedingSettings(StrictModel):
    on_over_mph: float = Field(3.0, ge=0)
    persist_s: float = Field(4.0, ge=0)
    off_over_mph: float = Field(1.0, ge=0)
    clear_s: float = Field(2.0, ge=0)


class AdviceTable(StrictModel):
    """``configs/route_advice.yaml``."""

    stable_s: float = Field(3.0, ge=0)
    way_hold_s: float = Field(1.0, ge=0)
    advice: dict[str, AdviceKind]
    speeding: SpeedingSettings = SpeedingSettings()
    questions: dict[str, list[str]] = {}


@lru_cache(maxsize=4)
def load_table(path: Path | None = None) -> AdviceTable:
    path = path or config.config_path("route_advice.yaml")
    table = config.load(path, AdviceTable)
    for name, kinds in table.questions.items():
        if name not in QUESTION_KINDS:
            raise config.ConfigError(path, f"questions.{name}", f"one of {', '.join(QUESTION_KINDS)}")
        for rx in kinds:
            try:
                re.compile(rx)
            except re.error as err:
                raise config.ConfigError(path, f"questions.{name}", f"a valid regular expression ({err})") from err
    return table


# --- stability and advisories ------------------------------------------------------------------


@dataclass(frozen=True)
class AdviceState:
    """Since when the car has been matched, on which way since when; per kind the last advisory;
    the features already advised (kind, osm id)."""

    matched_since_ns: int | None = None
    way_id: int | None = None
    way_since_ns: int | None = None
    last: dict[str, int] = field(default_factory=dict)
    done: frozenset[tuple[str, int]] = frozenset()


@dataclass(frozen=True)
class Advice:
    """A route advisory that is due: its kind, the feature, what to say and the rule cited."""

    kind: str
    feature: RouteFeature
    text: str
    rule: str

    def advisory(self, t_ns: int, ttl_s: float = 10.0) -> Advisory:
        return Advisory(t_ns, self.text, ROUTE, (self.rule,), ttl_s=ttl_s)


def track(ctx: RouteContext, now_ns: int, state: AdviceState) -> AdviceState:
    """The state's stability fields after this context."""
    if ctx.way_id is None:
        return replace(state, matched_since_ns=None, way_id=None, way_since_ns=None)
    since = state.matched_since_ns if state.matched_since_ns is not None else now_ns
    way_since = state.way_since_ns if state.way_id == ctx.way_id and state.way_since_ns is not None else now_ns
    return replace(state, matched_since_ns=since, way_id=ctx.way_id, way_since_ns=way_since)


def stable(state: AdviceState, now_ns: int, table: AdviceTable) -> bool:
    """Matched for ``stable_s`` and on the same way for ``way_hold_s``."""
    return (state.matched_since_ns is not None and state.way_since_ns is not None
            and now_ns - state.matched_since_ns >= table.stable_s * 1e9
            and now_ns - state.way_since_ns >= table.way_hold_s * 1e9)


def say_distance(m: float) -> int:
    """Metres as spoken: to 10 m below 100 m, else to 50 m."""
    return int(round(m / 10.0) * 10) if m < 100 else int(round(m / 50.0) * 50)


def _kind_of(f: RouteFeature, table: AdviceTable) -> str | None:
    for name, k in table.advice.items():
        if k.feature == f.kind and (not k.details or f.detail in k.details):
            return name
    return None


def _key(name: str, f: RouteFeature) -> tuple[str, int] | None:
    if f.osm_id is not None:
        return (name, f.osm_id)
    if f.limit_mph is not None:
        return None  # a limit change has no node: the cooldown keeps it from repeating
    return None


def compose(name: str, f: RouteFeature, k: AdviceKind) -> str:
    """The spoken text: the map's fact, then the rule's sentence (first letter capitalised)."""
    fact = k.say.format(distance=say_distance(f.distance_m), detail=(f.detail or "").capitalize(),
                        limit=int(round(f.limit_mph)) if f.limit_mph is not None else "")
    quote = k.quote.strip()
    quote = quote[0].upper() + quote[1:]
    if not quote.endswith((".", "!", "?")):
        quote += "."
    return f"{fact[0].upper() + fact[1:]} Rule {k.rule}: {quote}"


def advise(ctx: RouteContext, now_ns: int, state: AdviceState, table: AdviceTable) -> tuple[Advice | None, AdviceState]:
    """The route advisory due now (or None), and the next state. Call once per route context."""
    state = track(ctx, now_ns, state)
    if not stable(state, now_ns, table):
        return None, state
    for f in ctx.features_ahead:  # nearest first
        name = _kind_of(f, table)
        if name is None or not f.sure:
            continue
        k = table.advice[name]
        if not (k.min_m <= f.distance_m <= k.max_m):
            continue
        key = _key(name, f)
        if key is not None and key in state.done:
            continue
        last = state.last.get(name)
        if last is not None and now_ns - last < k.cooldown_s * 1e9:
            continue
        if f.kind == "speed_limit_change" and (f.limit_mph is None or ctx.speed_limit_mph is None):
            continue
        done = state.done | {key} if key is not None else state.done
        if len(done) > 512:  # bounded: the oldest memory of a feature hardly matters after hundreds
            done = frozenset(list(done)[-256:])
        return Advice(name, f, compose(name, f, k), k.rule), replace(state, last={**state.last, name: now_ns}, done=done)
    return None, state


# --- speeding ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedingState:
    active: bool = False
    over_since_ns: int | None = None
    under_since_ns: int | None = None
    limit_mph: float | None = None


def speeding(limit_mph: float | None, speed_mps: float | None, now_ns: int, state: SpeedingState,
             s: SpeedingSettings) -> SpeedingState:
    """The speeding state after this sample (see the module docstring)."""
    if limit_mph is None or speed_mps is None:
        return SpeedingState()
    mph = speed_mps / MPH
    if not state.active:
        if mph > limit_mph + s.on_over_mph:
            since = state.over_since_ns if state.over_since_ns is not None else now_ns
            return SpeedingState(now_ns - since >= s.persist_s * 1e9, since, None, limit_mph)
        return SpeedingState(limit_mph=limit_mph)
    if mph <= limit_mph + s.off_over_mph:
        since = state.under_since_ns if state.under_since_ns is not None else now_ns
        if now_ns - since >= s.clear_s * 1e9:
            return SpeedingState(limit_mph=limit_mph)
        return SpeedingState(True, state.over_since_ns, since, limit_mph)
    return SpeedingState(True, state.over_since_ns, None, limit_mph)


def speeding_hazards(state: SpeedingState, now_ns: int) -> list[Hazard]:
    """The speeding alert's hazard while active (caution: below every hazard alert)."""
    if not state.active:
        return []
    label = f"over {state.limit_mph:g} mph" if state.limit_mph is not None else SPEEDING
    return [Hazard(t_ns=now_ns, kind=SPEEDING, level=HazardLevel.CAUTION, label=label)]


# --- questions that need the position ------------------------------------------------------------

QUESTION_KINDS = ("speed_limit", "crossing", "road")
CROSSING_KINDS = ("crossing",)
RULE_OF_CROSSING = {"zebra": "195", "pelican": "196", "puffin": "199", "toucan": "199",
                    "signal-controlled": "198"}
"""Crossing type -> the rule for drivers at it (marked/unmarked/unknown crossings: none cited)."""


def question_kind(text: str, table: AdviceTable) -> str | None:
    """Which position question ``text`` asks (``speed_limit``, ``crossing``, ``road``), or None."""
    s = " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())
    for name, patterns in table.questions.items():
        if any(re.search(rf"\b(?:{rx})\b", s) for rx in patterns):
            return name
    return None


def _road(ctx: RouteContext) -> str:
    if ctx.road and ctx.road_class:
        return f"{ctx.road}, a {ctx.road_class.replace('_', ' ')} road"
    return ctx.road or (f"an unnamed {ctx.road_class.replace('_', ' ')} road" if ctx.road_class else "an unnamed road")


NO_DATA = "I have no map data for this position, so I can't say."


def answer(kind: str, question: str, ctx: RouteContext | None, t_ns: int) -> Advisory:
    """The answer from the map (rule cited where one applies); no match: it says so, no guess."""
    if ctx is None or ctx.way_id is None:
        return Advisory(t_ns, NO_DATA, ROUTE, (), refused=True, question=question)
    if kind == "speed_limit":
        if ctx.speed_limit_mph is None:
            return Advisory(t_ns, f"The map gives no speed limit for {ctx.road or 'this road'}. Rule 124: keep to "
                            "the limit the signs show.", ROUTE, ("124",), question=question)
        mph = f"{ctx.speed_limit_mph:g} miles per hour"
        if ctx.limit_source == "tagged":
            text = f"The speed limit on {ctx.road or 'this road'} is {mph}, from the map. Rule 124."
        elif ctx.limit_source == "built_up_inferred":
            text = (f"The map has no signed limit for {ctx.road or 'this road'}; it looks like a built-up street, "
                    f"so likely {mph}, by Rule 124. Signs take precedence.")
        else:
            text = (f"The map has no signed limit for {ctx.road or 'this road'}; the national limit for its road "
                    f"type is {mph}, by Rule 124. Signs take precedence.")
        return Advisory(t_ns, text, ROUTE, ("124",), question=question)
    if kind == "road":
        return Advisory(t_ns, f"You are on {_road(ctx)}, by the map.", ROUTE, (), question=question)
    crossings = [f for f in ctx.features_ahead if f.kind in CROSSING_KINDS]
    if not crossings:
        return Advisory(t_ns, f"The map shows no crossing in the next {say_distance(ctx.lookahead_m or 100)} metres.",
                        ROUTE, (), question=question)
    f = crossings[0]
    rule = RULE_OF_CROSSING.get(f.detail)
    maybe = "" if f.sure else ", if you stay on this road"
    name = f"a {f.detail} crossing" if f.detail and f.detail != "unknown" else "a crossing"
    see = f" See Rule {rule}." if rule else ""
    return Advisory(t_ns, f"Yes: {name} in about {say_distance(f.distance_m)} metres{maybe}.{see}",
                    ROUTE, (rule,) if rule else (), question=question)


ROAD = "\u2039road\u203a"
"""Stands for a road's name in :func:`spoken_texts` (an opening that holds it depends on the map)."""


def spoken_texts(table: AdviceTable, lookahead_m: float = 600.0) -> list[str]:
    """Everything the route lane says from its tables and templates, for pre-rendering openings: each advisory
    kind at every spoken distance in its window (speed limits 20-70 mph), and the map answers for each limit
    source, limit and crossing type up to ``lookahead_m``; a road's name is :data:`ROAD`. Pure."""
    out: dict[str, None] = {}

    def distances(lo: float, hi: float) -> list[int]:
        return sorted({d for d in (say_distance(m) for m in range(int(lo), int(hi) + 1, 5)) if lo <= d <= hi})

    limits = (20, 30, 40, 50, 60, 70)
    for name, k in table.advice.items():
        details = k.details or ([""] if k.feature != "crossing" else ["unknown"])
        for m in distances(k.min_m, k.max_m):
            for detail in details:
                for limit in (limits if k.feature == "speed_limit_change" else (None,)):
                    f = RouteFeature(k.feature, float(m), detail, limit_mph=limit)
                    out.setdefault(compose(name, f, k))
    out.setdefault(NO_DATA)
    for source in ("tagged", "built_up_inferred", "national"):
        for limit in (None,) + limits:
            ctx = RouteContext(0, way_id=1, road=ROAD, speed_limit_mph=limit, limit_source=source)
            out.setdefault(answer("speed_limit", "", ctx, 0).text)
    out.setdefault(answer("road", "", RouteContext(0, way_id=1, road=ROAD), 0).text)
    out.setdefault(answer("crossing", "", RouteContext(0, way_id=1, lookahead_m=lookahead_m), 0).text)
    for detail in tuple(RULE_OF_CROSSING) + ("unknown",):
        for m in distances(10, lookahead_m):
            for sure in (True, False):
                ctx = RouteContext(0, way_id=1, features_ahead=(RouteFeature("crossing", float(m), detail, sure=sure),))
                out.setdefault(answer("crossing", "", ctx, 0).text)
    return list(out)


__all__ = ["AdviceTable", "AdviceKind", "SpeedingSettings", "AdviceState", "Advice", "SpeedingState", "load_table",
           "advise", "track", "stable", "compose", "say_distance", "speeding", "speeding_hazards", "question_kind",
           "answer", "spoken_texts", "ROUTE", "ROAD", "SPEEDING", "NO_DATA", "QUESTION_KINDS"]
