"""Regression against committed reference logs, as openpilot's process replay does.

A reference (``sim/refs/<scenario>.jsonl``) holds the canonical form of a trip log: the compared
topics only, in order, with processing times, sequence numbers and per-field ignored keys removed
(drive times are kept and compared with a tolerance).
:func:`compare` reports every difference beyond the numeric tolerances; :func:`write_ref` rewrites
a reference (``--update-refs``). The rules live in ``sim/refs/compare.yaml``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydantic import Field

from vehicle_assist import config, paths
from vehicle_assist.config import ConfigError, StrictModel
from vehicle_assist.replay.errors import FormatError

REF_FORMAT = "vehicle_assist.ref/1"


class Tolerance(StrictModel):
    """``|got - ref| <= abs + rel * |ref|`` passes."""

    abs: float = Field(0.0, ge=0)
    rel: float = Field(0.0, ge=0)


class CompareRules(StrictModel):
    """What is compared and how loosely."""

    topics: list[str] = ["hazards", "alerts", "transcripts", "intents", "advisories"]
    ignore_fields: list[str] = ["proc_ns", "seq", "t_perf_ns", "first_t_ns", "t_start_ns", "t_end_ns", "infer_ms", "asr_ms", "render_ms"]
    topic_ignore: dict[str, list[str]] = {}
    tolerance: Tolerance = Tolerance(abs=1e-6, rel=1e-6)
    field_tolerance: dict[str, Tolerance] = {"t_ns": Tolerance(abs=150_000_000)}


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
        sep = "" if self.field.startswith("[") else "."
        return f"{self.topic}[{self.index}]{sep}{self.field}: reference {_short(self.ref)}, got {_short(self.got)}"


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


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


def _by_topic(items: list[dict[str, Any]], topics: list[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {t: [] for t in topics}
    for it in items:
        grouped.setdefault(it["topic"], []).append(it["msg"])
    return grouped


def compare(records: Iterable[dict[str, Any]], reference: list[dict[str, Any]], rules: CompareRules) -> list[Diff]:
    """Differences between a trip log and a reference (both canonicalised with ``rules``), per topic in order."""
    got = _by_topic(canonical(records, rules), rules.topics)
    ref = _by_topic(canonical(reference, rules), rules.topics)
    diffs: list[Diff] = []
    for topic in rules.topics:
        a, b = ref.get(topic, []), got.get(topic, [])
        for i, (x, y) in enumerate(zip(a, b)):
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
        tol = rules.field_tolerance.get(leaf, rules.tolerance)
        if math.isclose(ref, got, rel_tol=tol.rel, abs_tol=tol.abs) or abs(got - ref) <= tol.abs + tol.rel * abs(ref):
            return []
        return [(path or "(value)", ref, got)]
    return [] if ref == got else [(path or "(value)", ref, got)]


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


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


__all__ = ["CompareRules", "Diff", "Tolerance", "canonical", "compare", "load_rules", "read_ref", "ref_path", "write_ref", "ConfigError"]
