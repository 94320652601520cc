"""Scenario expectations: a small English grammar, parsed into typed checks, and a pure checker.

Grammar (times are drive seconds; NAME is an alert name from configs/alerts.yaml, ``any``, or
names joined by ``|``; LABEL likewise for hazard labels):

- ``alert NAME within D s of t=T``        an audible alert starts in ``[T-D, T+D]``
- ``alert NAME between t=A and t=B``      an audible alert starts in ``[A, B]``
- ``no alert [NAME] between t=A and t=B`` no audible alert starts in ``[A, B]``
- ``no alert [NAME]``                     none in the whole replay
- ``hazard LABEL [at least LEVEL] between t=A and t=B``  a hazard of that label (and level) is assessed
- ``answer to the question at t=T cites rule R`` / ``cites one of rules R1, R2``
- ``answer to the question at t=T mentions "TEXT"``   (case, hyphens and spacing ignored)
- ``answer to the question at t=T is refused`` / ``is not refused``
- ``transcript of the question at t=T contains "TEXT"``
- ``advice KIND between t=A and t=B``      a route advisory of that kind (configs/route_advice.yaml) is spoken in ``[A, B]``
- ``no advice [KIND] between t=A and t=B`` / ``no advice [KIND]``   none (of that kind) in the span / the whole replay
- ``no speed limit claimed [between t=A and t=B]``   no route context in the span names a limit (or a road)
- ``speed limit N mph claimed at t=T``     the last route context at or before ``T`` gives limit ``N``
- ``way N claimed at t=T``                 ...is on OSM way ``N`` (the id in the drive's truth)

"Alert" means an AlertEvent with ``state == "start"`` and ``audible`` true: what the driver hears.
The answer to a question is the first advisory with a question, at or after the question's time,
not already taken by an earlier question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from vehicle_assist.messages import HazardLevel

_NUM = r"(\d+(?:\.\d+)?)"
_NAMES = r"([a-z0-9_\-]+(?:\|[a-z0-9_\-]+)*)"
_QUOTED = r"\"([^\"]+)\""
_Q = rf"(?:the )?answer to the question at t={_NUM} "
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("alert_within", re.compile(rf"alert {_NAMES} within {_NUM} ?s of t={_NUM}")),
    ("alert_between", re.compile(rf"alert {_NAMES} between t={_NUM} and t={_NUM}")),
    ("no_alert_between", re.compile(rf"no alert(?: {_NAMES})? between t={_NUM} and t={_NUM}")),
    ("no_alert", re.compile(rf"no alert(?: {_NAMES})?")),
    ("hazard_between", re.compile(rf"hazard {_NAMES}(?: at least ([a-z]+))? between t={_NUM} and t={_NUM}")),
    ("cites_one_of", re.compile(rf"{_Q}cites one of rules ([\w.\-]+(?:, ?[\w.\-]+)*)")),
    ("cites", re.compile(rf"{_Q}cites rule ([\w.\-]+)")),
    ("mentions", re.compile(rf"{_Q}mentions {_QUOTED}")),
    ("refused", re.compile(rf"{_Q}is (not )?refused")),
    ("heard", re.compile(rf"(?:the )?transcript of the question at t={_NUM} contains {_QUOTED}")),
    ("advice_between", re.compile(rf"advice {_NAMES} between t={_NUM} and t={_NUM}")),
    ("no_advice_between", re.compile(rf"no advice(?: {_NAMES})? between t={_NUM} and t={_NUM}")),
    ("no_advice", re.compile(rf"no advice(?: {_NAMES})?")),
    ("no_limit", re.compile(rf"no speed limit claimed(?: between t={_NUM} and t={_NUM})?")),
    ("limit_at", re.compile(rf"speed limit {_NUM} mph claimed at t={_NUM}")),
    ("way_at", re.compile(rf"way (\d+) claimed at t={_NUM}")),
]
GRAMMAR = [
    "alert NAME within D s of t=T", "alert NAME between t=A and t=B", "no alert [NAME] between t=A and t=B",
    "no alert [NAME]", "hazard LABEL [at least LEVEL] between t=A and t=B",
    "answer to the question at t=T cites rule R", "answer to the question at t=T cites one of rules R1, R2",
    'answer to the question at t=T mentions "TEXT"', "answer to the question at t=T is [not] refused",
    'transcript of the question at t=T contains "TEXT"', "advice KIND between t=A and t=B",
    "no advice [KIND] between t=A and t=B", "no advice [KIND]", "no speed limit claimed [between t=A and t=B]",
    "speed limit N mph claimed at t=T", "way N claimed at t=T",
]


class ExpectationError(ValueError):
    """An expectation string does not follow the grammar."""


@dataclass(frozen=True)
class Expectation:
    """One parsed check. ``kind`` names the rule; times in seconds; ``names`` empty = any."""

    text: str
    kind: str
    names: tuple[str, ...] = ()
    t0: float | None = None
    t1: float | None = None
    question_t: float | None = None
    rules: tuple[str, ...] = ()
    phrase: str = ""
    negate: bool = False
    level: HazardLevel | None = None
    value: float | None = None
    why: str = ""

    @property
    def polarity(self) -> str | None:
        """``positive`` for an expected alert, ``negative`` for expected silence, else None."""
        return {"alert_within": "positive", "alert_between": "positive",
                "no_alert_between": "negative", "no_alert": "negative"}.get(self.kind)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation on one trip log."""

    expectation: str
    passed: bool
    reason: str
    kind: str = ""
    matched_t: tuple[float, ...] = ()


def parse(text: str, why: str = "") -> Expectation:
    """Parse one expectation; raises ExpectationError naming the grammar when it does not fit."""
    s = " ".join(text.strip().lower().split())
    for kind, pat in _PATTERNS:
        m = pat.fullmatch(s)
        if m:
            return _build(text.strip(), kind, m.groups(), why)
    raise ExpectationError(f"{text!r} is not an expectation; expected one of: " + "; ".join(GRAMMAR))


def _names(raw: str | None) -> tuple[str, ...]:
    if not raw or raw == "any":
        return ()
    return tuple(n for n in raw.split("|") if n != "any") if "any" not in raw.split("|") else ()


def _build(text: str, kind: str, g: tuple, why: str) -> Expectation:
    if kind == "alert_within":
        d, t = float(g[1]), float(g[2])
        return Expectation(text, kind, _names(g[0]), t0=max(0.0, t - d), t1=t + d, why=why)
    if kind in ("alert_between", "no_alert_between", "advice_between", "no_advice_between"):
        a, b = float(g[1]), float(g[2])
        if b < a:
            raise ExpectationError(f"{text!r}: the span ends (t={b}) before it starts (t={a})")
        return Expectation(text, kind, _names(g[0]), t0=a, t1=b, why=why)
    if kind in ("no_alert", "no_advice"):
        return Expectation(text, kind, _names(g[0]), why=why)
    if kind == "no_limit":
        return Expectation(text, kind, t0=float(g[0]) if g[0] else None, t1=float(g[1]) if g[1] else None, why=why)
    if kind in ("limit_at", "way_at"):
        return Expectation(text, kind, t0=float(g[1]), value=float(g[0]), why=why)
    if kind == "hazard_between":
        level = None
        if g[1]:
            try:
                level = HazardLevel[g[1].upper()]
            except KeyError:
                raise ExpectationError(f"{text!r}: level {g[1]!r}; expected one of {[lv.name.lower() for lv in HazardLevel]}") from None
        return Expectation(text, kind, _names(g[0]), t0=float(g[2]), t1=float(g[3]), level=level, why=why)
    q = float(g[0])
    if kind == "cites_one_of":
        return Expectation(text, kind, question_t=q, rules=tuple(_rule(r) for r in re.split(r", ?", g[1])), why=why)
    if kind == "cites":
        return Expectation(text, kind, question_t=q, rules=(_rule(g[1]),), why=why)
    if kind == "mentions":
        return Expectation(text, kind, question_t=q, phrase=g[1], why=why)
    if kind == "refused":
        return Expectation(text, kind, question_t=q, negate=bool(g[1]), why=why)
    return Expectation(text, kind, question_t=q, phrase=g[1], why=why)  # heard


def _rule(r: Any) -> str:
    """Rule ids compare without a 'rule ' prefix, case-insensitively."""
    return re.sub(r"^rule\s*", "", str(r).strip().lower())


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\-‐‑–]", " ", text.lower()).split())


# --- checking --------------------------------------------------------------------------------


def _msgs(records: Iterable[dict], topic: str) -> list[tuple[float, dict]]:
    out = []
    for r in records:
        if r.get("topic") == topic and isinstance(r.get("msg"), (dict, list)):
            out.append((r["t_ns"] / 1e9, r["msg"]))
    return out


def alert_starts(records: Iterable[dict]) -> list[tuple[float, str]]:
    """(drive time s, name) of every audible alert start, in log order."""
    return [(t, m.get("name", "")) for t, m in _msgs(records, "alerts")
            if isinstance(m, dict) and m.get("state", "start") == "start" and m.get("audible", True)]


def answers(records: list[dict], question_times: Iterable[float]) -> dict[float, dict | None]:
    """Question time -> its advisory record (see the module docstring for the matching rule)."""
    advisories = [(t, m) for t, m in _msgs(records, "advisories") if isinstance(m, dict) and m.get("question") is not None]
    taken: set[int] = set()
    out: dict[float, dict | None] = {}
    for q in sorted(set(question_times)):
        out[q] = None
        for i, (t, m) in enumerate(advisories):
            if i not in taken and t >= q - 1e-9:
                taken.add(i)
                out[q] = {**m, "_t": t}
                break
    return out


def check(expectations: Iterable[Expectation], records: Iterable[dict[str, Any]],
          question_times: Iterable[float] = ()) -> list[CheckResult]:
    """Check every expectation against a trip log's records (pure)."""
    records = list(records)
    exps = list(expectations)
    alerts = alert_starts(records)
    qtimes = set(question_times) | {e.question_t for e in exps if e.question_t is not None}
    answered = answers(records, qtimes)
    return [_check_one(e, records, alerts, answered) for e in exps]


def _in(names: tuple[str, ...], name: str) -> bool:
    return not names or name in names


def _fmt(hits: list[tuple[float, str]]) -> str:
    return ", ".join(f"{n} at t={t:.2f}" for t, n in hits[:5]) + (" ..." if len(hits) > 5 else "")


def route_advice(records: Iterable[dict]) -> list[tuple[float, str]]:
    """(drive time s, kind) of every route advisory (``route`` advisories without a question); the
    kind is the row of configs/route_advice.yaml whose rule the advisory cites."""
    from vehicle_assist.route.advice import ROUTE, load_table

    by_rule = {k.rule: name for name, k in load_table().advice.items()}
    out = []
    for t, m in _msgs(records, "advisories"):
        if isinstance(m, dict) and m.get("route") == ROUTE and m.get("question") is None:
            cited = list(m.get("cited") or [])
            out.append((t, by_rule.get(cited[0], "route") if cited else "route"))
    return out


def _check_route(e: Expectation, records: list[dict]) -> CheckResult:
    which = "|".join(e.names) or "any"
    if e.kind in ("advice_between", "no_advice_between", "no_advice"):
        lo, hi = (e.t0, e.t1) if e.t0 is not None else (float("-inf"), float("inf"))
        said = route_advice(records)
        hits = [(t, n) for t, n in said if _in(e.names, n) and lo - 1e-9 <= t <= hi + 1e-9]
        if e.kind == "advice_between":
            if hits:
                return CheckResult(e.text, True, _fmt(hits), e.kind, tuple(t for t, _ in hits))
            return CheckResult(e.text, False, f"no {which} advice between t={lo:g} and t={hi:g}; all advice: "
                               f"{_fmt(said) or 'none'}", e.kind)
        if hits:
            return CheckResult(e.text, False, f"unexpected: {_fmt(hits)}", e.kind, tuple(t for t, _ in hits))
        return CheckResult(e.text, True, f"no {which} advice" + (f" between t={lo:g} and t={hi:g}" if e.t0 is not None
                                                                  else " in the whole replay"), e.kind)
    ctxs = [(t, m) for t, m in _msgs(records, "route") if isinstance(m, dict)]
    if e.kind == "no_limit":
        lo, hi = (e.t0, e.t1) if e.t0 is not None else (float("-inf"), float("inf"))
        claims = [(t, f"{m.get('road')} {m.get('speed_limit_mph')} mph") for t, m in ctxs
                  if lo - 1e-9 <= t <= hi + 1e-9 and (m.get("speed_limit_mph") is not None or m.get("way_id") is not None)]
        if claims:
            return CheckResult(e.text, False, f"claimed: {_fmt(claims)} ({len(claims)} contexts)", e.kind,
                               tuple(t for t, _ in claims))
        n = sum(lo - 1e-9 <= t <= hi + 1e-9 for t, _ in ctxs)
        return CheckResult(e.text, True, f"{n} route contexts, none names a road or limit", e.kind)
    before = [(t, m) for t, m in ctxs if t <= e.t0 + 1e-9]
    if not before:
        return CheckResult(e.text, False, f"no route context at or before t={e.t0:g}", e.kind)
    t, m = before[-1]
    if e.kind == "way_at":
        way = m.get("way_id")
        return CheckResult(e.text, way is not None and int(way) == int(e.value),
                           f"at t={t:.2f}: way {way} ({m.get('road')})", e.kind, (t,))
    got = m.get("speed_limit_mph")
    ok = got is not None and abs(float(got) - e.value) < 0.5
    return CheckResult(e.text, ok, f"at t={t:.2f}: {m.get('road')} {got} mph ({m.get('limit_source')})", e.kind, (t,))


def _check_one(e: Expectation, records: list[dict], alerts: list[tuple[float, str]],
               answered: dict[float, dict | None]) -> CheckResult:
    which = "|".join(e.names) or "any"
    if e.kind in ("advice_between", "no_advice_between", "no_advice", "no_limit", "limit_at", "way_at"):
        return _check_route(e, records)
    if e.kind in ("alert_within", "alert_between"):
        hits = [(t, n) for t, n in alerts if _in(e.names, n) and e.t0 - 1e-9 <= t <= e.t1 + 1e-9]
        if hits:
            return CheckResult(e.text, True, f"{_fmt(hits)}", e.kind, tuple(t for t, _ in hits))
        others = [(t, n) for t, n in alerts if _in(e.names, n)]
        label = "alert" if not e.names else f"{which} alert"
        near = f"; {label}s elsewhere: {_fmt(others)}" if others else f"; no {label} at all"
        all_alerts = f" (all alerts: {_fmt(alerts)})" if alerts and not others else ""
        return CheckResult(e.text, False, f"no {label} between t={e.t0:g} and t={e.t1:g}{near}{all_alerts}", e.kind)
    if e.kind in ("no_alert_between", "no_alert"):
        lo, hi = (e.t0, e.t1) if e.kind == "no_alert_between" else (float("-inf"), float("inf"))
        hits = [(t, n) for t, n in alerts if _in(e.names, n) and lo - 1e-9 <= t <= hi + 1e-9]
        if hits:
            return CheckResult(e.text, False, f"unexpected: {_fmt(hits)}", e.kind, tuple(t for t, _ in hits))
        what = "no alert" if not e.names else f"no {which} alert"
        return CheckResult(e.text, True, what + (f" between t={lo:g} and t={hi:g}" if e.t0 is not None else " in the whole replay"), e.kind)
    if e.kind == "hazard_between":
        found = []
        for t, m in _msgs(records, "hazards"):
            for h in (m if isinstance(m, list) else [m]):
                if not isinstance(h, dict) or not (e.t0 - 1e-9 <= t <= e.t1 + 1e-9) or not _in(e.names, h.get("label", "")):
                    continue
                level = HazardLevel[str(h.get("level", "none")).upper()] if str(h.get("level", "")).upper() in HazardLevel.__members__ else HazardLevel.NONE
                if e.level is None or level >= e.level:
                    found.append((t, f"{h.get('label')}/{level.name.lower()}"))
        if found:
            return CheckResult(e.text, True, _fmt(found), e.kind, tuple(t for t, _ in found))
        return CheckResult(e.text, False, f"no {which} hazard{' at ' + e.level.name.lower() + ' or above' if e.level else ''} between t={e.t0:g} and t={e.t1:g}", e.kind)
    if e.kind == "heard":
        heard = [(t, m.get("text", "")) for t, m in _msgs(records, "transcripts") if isinstance(m, dict) and t >= e.question_t - 1e-9]
        if not heard:
            return CheckResult(e.text, False, f"no transcript after t={e.question_t:g}", e.kind)
        t, text = heard[0]
        ok = _norm(e.phrase) in _norm(text)
        return CheckResult(e.text, ok, f"heard {text!r} at t={t:.2f}", e.kind, (t,))
    answer = answered.get(e.question_t)
    if answer is None:
        return CheckResult(e.text, False, f"no answer to the question at t={e.question_t:g} in the log", e.kind)
    t, cited = answer["_t"], tuple(_rule(c) for c in answer.get("cited") or ())
    said = f"answer at t={t:.2f} ({answer.get('route')}): {answer.get('text', '')[:120]!r}, cites {list(cited) or 'nothing'}"
    if e.kind == "cites":
        return CheckResult(e.text, e.rules[0] in cited, said, e.kind, (t,))
    if e.kind == "cites_one_of":
        return CheckResult(e.text, any(r in cited for r in e.rules), said, e.kind, (t,))
    if e.kind == "mentions":
        return CheckResult(e.text, _norm(e.phrase) in _norm(answer.get("text", "")), said, e.kind, (t,))
    refused = bool(answer.get("refused"))
    return CheckResult(e.text, refused != e.negate, said + f", refused={refused}", e.kind, (t,))


# --- scoring across scenarios ------------------------------------------------------------------


@dataclass(frozen=True)
class AlertScore:
    """Alert precision and recall against labelled windows (see :func:`score`)."""

    positives: int
    detected: int
    alerts_in_labelled: int
    alerts_true: int
    alerts_false: int

    @property
    def recall(self) -> float | None:
        return self.detected / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        return self.alerts_true / self.alerts_in_labelled if self.alerts_in_labelled else None


def score(runs: Iterable[tuple[list[Expectation], list[CheckResult], list[tuple[float, str]]]]) -> AlertScore:
    """Pool (expectations, results, alert starts) of many scenarios.

    Recall: expected-alert windows that got a matching alert / all expected-alert windows.
    Precision: alerts inside an expected-alert window / alerts inside any labelled window
    (expected alert or expected silence); alerts outside every labelled window are not counted.
    """
    pos = det = inside = true = false = 0
    for exps, results, alerts in runs:
        positive = [e for e in exps if e.polarity == "positive"]
        negative = [e for e in exps if e.polarity == "negative"]
        pos += len(positive)
        det += sum(r.passed for e, r in zip(exps, results) if e.polarity == "positive")
        for t, name in alerts:
            in_pos = any(_in(e.names, name) and e.t0 - 1e-9 <= t <= e.t1 + 1e-9 for e in positive)
            in_neg = any(_in(e.names, name) and (e.t0 is None or e.t0 - 1e-9 <= t <= e.t1 + 1e-9) for e in negative)
            if in_pos:
                inside, true = inside + 1, true + 1
            elif in_neg:
                inside, false = inside + 1, false + 1
    return AlertScore(pos, det, inside, true, false)
