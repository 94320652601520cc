"""Regression against committed reference logs, as openpilot's process replay does.

A reference (``sim/refs/<scenario>.jsonl``) holds the canonical form of a trip log: the compared
topics only, in order, with processing times, sequence numbers and per-field ignored keys removed
(drive times are kept and compared with a tolerance).

:func:`compare` reports every difference that matters; :func:`write_ref` rewrites a reference
(``--update-refs``). What matters is a decision, not the floats computed on the way to it, so a
replay on another CPU (other SIMD paths in ONNX Runtime and CTranslate2) compares equal. Each topic
is compared in one of three ways (the rules live in ``sim/refs/compare.yaml``):

- ``exact``: every field; numbers within tolerance (alerts: name, state, text, time).
- ``fields``: only the listed fields, exactly (numbers within tolerance), list fields in
  ``unordered`` as sets; text fields in ``max_wer`` by word error rate; text fields in ``facts``
  by the numbers with units they state ("1.5 metres", "30mph", "two-second").
- ``hazards``: the hazards at ``min_level`` or above, each matched by ``match`` (kind, label,
  level) to one of the other log within the ``t_ns`` tolerance and with ``numbers`` within their
  tolerances, both ways. Track ids are not compared (an extra marginal box shifts every later id).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import Field, field_validator

from vehicle_assist import config, paths
from vehicle_assist.config import ConfigError, StrictModel
from vehicle_assist.messages import HazardLevel
from vehicle_assist.replay.errors import FormatError

REF_FORMAT = "vehicle_assist.ref/1"


class Tolerance(StrictModel):
    """``|got - ref| <= abs + rel * |ref|`` passes."""

    abs: float = Field(0.0, ge=0)
    rel: float = Field(0.0, ge=0)


class TopicRule(StrictModel):
    """How one topic is compared (see the module docstring)."""

    how: Literal["exact", "fields", "hazards"] = "exact"
    fields: list[str] = []
    unordered: list[str] = []
    max_wer: dict[str, float] = {}
    facts: list[str] = []
    min_level: Literal["info", "caution", "warning", "critical"] = "caution"
    match: list[str] = ["kind", "label", "level"]
    numbers: list[str] = ["distance_m", "ttc_s"]


class CompareRules(StrictModel):
    """What is compared and how loosely."""

    topics: dict[str, TopicRule] = {t: TopicRule() for t in ("hazards", "alerts", "transcripts", "intents", "advisories")}
    ignore_fields: list[str] = ["proc_ns", "seq", "t_perf_ns", "first_t_ns", "t_start_ns", "t_end_ns", "infer_ms", "asr_ms", "render_ms"]
    topic_ignore: dict[str, list[str]] = {}
    tolerance: Tolerance = Tolerance(abs=1e-6, rel=1e-6)
    field_tolerance: dict[str, Tolerance] = {"t_ns": Tolerance(abs=150_000_000)}

    @field_validator("topics", mode="before")
    @classmethod
    def _list_means_exact(cls, v: Any) -> Any:
        return {t: {} for t in v} if isinstance(v, list) else v

    def topic_rules(self) -> dict[str, TopicRule]:
        """``topics`` as a mapping, also when a plain list was set without validation (``model_copy``)."""
        return {t: TopicRule() for t in self.topics} if isinstance(self.topics, list) else self.topics

    def tol(self, field: str) -> Tolerance:
        return self.field_tolerance.get(field, self.tolerance)


def load_rules(path: Path | None = None) -> CompareRules:
    """The comparison rules (``sim/refs/compare.yaml``; defaults when absent)."""
    path = path or paths.sim() / "refs" / "compare.yaml"
    return config.load(path, CompareRules) if path.is_file() else CompareRules()


@dataclass(frozen=True)
class Diff:
    """One difference between a trip log and its reference."""

    topic: str
    index: int
    field: str
    ref: Any
    got: Any

    def __str__(self) -> str:
        sep = "" if self.field.startswith(("[", " ")) else "."
        return f"{self.topic}[{self.index}]{sep}{self.field}: reference {_short(self.ref)}, got {_short(self.got)}"


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _strip(value: Any, ignore: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, ignore) for k, v in sorted(value.items()) if k not in ignore}
    if isinstance(value, list):
        return [_strip(v, ignore) for v in value]
    return value


def canonical(records: Iterable[dict[str, Any]], rules: CompareRules) -> list[dict[str, Any]]:
    """The compared part of a trip log: ``{"topic", "msg"}`` in log order, ignored fields removed."""
    out = []
    for r in records:
        topic = r.get("topic")
        if topic in rules.topics:
            ignore = set(rules.ignore_fields) | set(rules.topic_ignore.get(topic, []))
            out.append({"topic": topic, "msg": _strip(r.get("msg"), ignore)})
    return out


def _by_topic(items: list[dict[str, Any]], topics: Iterable[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {t: [] for t in topics}
    for it in items:
        grouped.setdefault(it["topic"], []).append(it["msg"])
    return grouped


def compare(records: Iterable[dict[str, Any]], reference: list[dict[str, Any]], rules: CompareRules) -> list[Diff]:
    """Differences between a trip log and a reference (both canonicalised with ``rules``), per topic."""
    got = _by_topic(canonical(records, rules), rules.topics)
    ref = _by_topic(canonical(reference, rules), rules.topics)
    diffs: list[Diff] = []
    for topic, rule in rules.topic_rules().items():
        a, b = ref.get(topic, []), got.get(topic, [])
        if rule.how == "hazards":
            diffs += _diff_hazards(topic, a, b, rule, rules)
            continue
        for i, (x, y) in enumerate(zip(a, b)):
            if rule.how == "fields":
                diffs += _diff_fields(topic, i, x, y, rule, rules)
            else:
                diffs += [Diff(topic, i, f, rx, gy) for f, rx, gy in _diff_value(x, y, "", rules)]
        if len(a) != len(b):
            diffs.append(Diff(topic, min(len(a), len(b)), "(count)", len(a), len(b)))
    return diffs


def _diff_value(ref: Any, got: Any, path: str, rules: CompareRules) -> list[tuple[str, Any, Any]]:
    if isinstance(ref, dict) and isinstance(got, dict):
        out = []
        for k in sorted(set(ref) | set(got)):
            out += _diff_value(ref.get(k), got.get(k), f"{path}.{k}" if path else k, rules)
        return out
    if isinstance(ref, list) and isinstance(got, list):
        if len(ref) != len(got):
            return [(f"{path}(len)", len(ref), len(got))]
        out = []
        for i, (x, y) in enumerate(zip(ref, got)):
            out += _diff_value(x, y, f"{path}[{i}]", rules)
        return out
    if _is_num(ref) and _is_num(got):
        leaf = path.rsplit(".", 1)[-1].split("[")[0]
        return [] if _close(ref, got, rules.tol(leaf)) else [(path or "(value)", ref, got)]
    return [] if ref == got else [(path or "(value)", ref, got)]


def _close(ref: float, got: float, tol: Tolerance) -> bool:
    return math.isclose(ref, got, rel_tol=tol.rel, abs_tol=tol.abs) or abs(got - ref) <= tol.abs + tol.rel * abs(ref)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --- fields: the parts of a message that carry its meaning ---------------------------------------


def _diff_fields(topic: str, i: int, ref: Any, got: Any, rule: TopicRule, rules: CompareRules) -> list[Diff]:
    if not (isinstance(ref, dict) and isinstance(got, dict)):
        return [Diff(topic, i, f, r, g) for f, r, g in _diff_value(ref, got, "", rules)]
    out: list[Diff] = []
    for f in rule.fields:
        r, g = ref.get(f), got.get(f)
        if f in rule.unordered and isinstance(r, list) and isinstance(g, list):
            r, g = sorted(map(str, r)), sorted(map(str, g))
        out += [Diff(topic, i, p, rv, gv) for p, rv, gv in _diff_value(r, g, f, rules)]
    for f, limit in rule.max_wer.items():
        r, g = str(ref.get(f) or ""), str(got.get(f) or "")
        rate = word_error_rate(r, g)
        if rate > limit:
            out.append(Diff(topic, i, f"{f} (word error rate {rate:.2f} > {limit:g})", r, g))
    for f in rule.facts:
        r, g = key_facts(str(ref.get(f) or "")), key_facts(str(got.get(f) or ""))
        if r != g:
            out.append(Diff(topic, i, f"{f} (numbers with units)", r, g))
    return out


def words(text: str) -> list[str]:
    """Lower-case words; punctuation and hyphens are spaces (apostrophes stay inside words)."""
    return re.sub(r"[^a-z0-9'.]+|(?<!\d)\.|\.(?!\d)", " ", text.lower()).split()


def word_error_rate(ref: str, hyp: str) -> float:
    """Word edit distance (substitutions, insertions, deletions) over the reference's word count."""
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[len(h)] / len(r) if r else float(len(h) > 0)


_NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUMBER_WORDS.update({"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "hundred": 100})
UNITS = {
    "m": ("m", "metre", "metres", "meter", "meters"), "km": ("km", "kilometre", "kilometres", "kilometer", "kilometers"),
    "mph": ("mph",), "km/h": ("km/h", "kph"), "mile": ("mile", "miles"), "ft": ("ft", "foot", "feet"),
    "yd": ("yard", "yards"), "s": ("s", "sec", "second", "seconds"), "min": ("minute", "minutes"),
    "h": ("hour", "hours"), "kg": ("kg",), "t": ("tonne", "tonnes"), "%": ("%", "percent", "per cent"),
    "deg": ("degree", "degrees"),
}
_UNIT_OF = {alias: unit for unit, aliases in UNITS.items() for alias in aliases}
_FACT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")[\s-]?("
                   + "|".join(sorted(map(re.escape, _UNIT_OF), key=len, reverse=True)) + r")(?![\w/])", re.IGNORECASE)


def key_facts(text: str) -> list[str]:
    """The numbers with units a text states, normalised and sorted: "Leave at least 1.5 metres at up
    to 30mph" and "a two-second gap" give ``["1.5 m", "30 mph"]`` and ``["2 s"]``."""
    out = set()
    for num, unit in _FACT.findall(text):
        value = float(_NUMBER_WORDS.get(num.lower(), num) if not num[0].isdigit() else num)
        out.add(f"{value:g} {_UNIT_OF[unit.lower()]}")
    return sorted(out)


# --- hazards: the decisions at caution or above, matched in time ---------------------------------


_LEVELS = {lvl.name.lower(): lvl for lvl in HazardLevel}


def _hazard_items(msgs: list[Any], rule: TopicRule) -> list[tuple[int, dict[str, Any]]]:
    """(record index, hazard) of every hazard at ``min_level`` or above."""
    floor = _LEVELS[rule.min_level]
    out = []
    for i, msg in enumerate(msgs):
        for h in msg if isinstance(msg, list) else [msg]:
            if isinstance(h, dict) and _LEVELS.get(str(h.get("level")), HazardLevel.NONE) >= floor:
                out.append((i, h))
    return out


def _describe(h: dict[str, Any], fields: list[str]) -> str:
    t = h.get("t_ns")
    head = " ".join(str(h.get(k)) for k in ("level", "label", "kind"))
    nums = " ".join(f"{k}={h.get(k)}" for k in fields)
    return f"{head} at t={t / 1e9:.2f} s {nums}" if _is_num(t) else f"{head} {nums}"


def _diff_hazards(topic: str, ref: list[Any], got: list[Any], rule: TopicRule, rules: CompareRules) -> list[Diff]:
    a, b = _hazard_items(ref, rule), _hazard_items(got, rule)
    t_tol = rules.tol("t_ns")
    out = [Diff(topic, i, "(no match)", _describe(h, rule.numbers), _nearest(h, b, rule, rules) or f"none within {t_tol.abs / 1e9:g} s")
           for i, h in a if not _matched(h, b, rule, rules)]
    out += [Diff(topic, i, "(no match)", _nearest(h, a, rule, rules) or f"none within {t_tol.abs / 1e9:g} s", _describe(h, rule.numbers))
            for i, h in b if not _matched(h, a, rule, rules)]
    return out


def _candidates(h: dict[str, Any], others: list[tuple[int, dict[str, Any]]], rule: TopicRule, rules: CompareRules) -> list[dict[str, Any]]:
    key = [h.get(k) for k in rule.match]
    t, tol = h.get("t_ns"), rules.tol("t_ns")
    return [o for _, o in others if [o.get(k) for k in rule.match] == key
            and (not _is_num(t) or (_is_num(o.get("t_ns")) and _close(t, o["t_ns"], tol)))]


def _matched(h: dict[str, Any], others: list[tuple[int, dict[str, Any]]], rule: TopicRule, rules: CompareRules) -> bool:
    return any(not any(_diff_value(h.get(k), o.get(k), k, rules) for k in rule.numbers) for o in _candidates(h, others, rule, rules))


def _nearest(h: dict[str, Any], others: list[tuple[int, dict[str, Any]]], rule: TopicRule, rules: CompareRules) -> str | None:
    cands = _candidates(h, others, rule, rules)
    if not cands:
        return None
    t = h.get("t_ns") if _is_num(h.get("t_ns")) else 0
    return _describe(min(cands, key=lambda o: abs((o.get("t_ns") or 0) - t)), rule.numbers)


def ref_path(scenario_name: str, folder: Path | None = None) -> Path:
    """Where a scenario's reference lives."""
    return (folder or paths.sim() / "refs") / f"{scenario_name}.jsonl"


def write_ref(records: Iterable[dict[str, Any]], path: Path, rules: CompareRules, info: dict[str, Any] | None = None) -> int:
    """Write the canonical form of a trip log as a reference; returns the number of records."""
    items = canonical(records, rules)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"type": "header", "format": REF_FORMAT, **(info or {})}, sort_keys=True) + "\n")
        for it in items:
            f.write(json.dumps(it, sort_keys=True, separators=(",", ":")) + "\n")
    return len(items)


def read_ref(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A reference's header and canonical records; a malformed file names the line."""
    if not path.is_file():
        raise FormatError("ref-missing", path, "(file)", "a reference log (create it with --update-refs)")
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines, start=1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise FormatError("ref-invalid", path, f"line {i}, column {err.colno}", f"a JSON object ({err.msg})") from err
        if i == 1:
            if not isinstance(rec, dict) or rec.get("format") != REF_FORMAT:
                raise FormatError("ref-invalid", path, "line 1", f"a header with format {REF_FORMAT!r}")
            header = rec
            continue
        if not isinstance(rec, dict) or "topic" not in rec or "msg" not in rec:
            raise FormatError("ref-invalid", path, f"line {i}", "an object with 'topic' and 'msg'")
        out.append(rec)
    if not lines:
        raise FormatError("ref-invalid", path, "line 1", "a header line")
    return header, out


__all__ = ["CompareRules", "Diff", "Tolerance", "TopicRule", "canonical", "compare", "key_facts", "load_rules", "read_ref",
           "ref_path", "word_error_rate", "words", "write_ref", "ConfigError"]
