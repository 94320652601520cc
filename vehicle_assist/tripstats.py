"""Summaries of a trip log: counts per topic, latency percentiles per stage, errors (pure)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

import numpy as np


def percentiles(values: list[float]) -> dict[str, float]:
    """n, mean, p50, p95, p99 and max of ``values`` (ms), rounded to 0.01."""
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "mean": round(float(a.mean()), 2), "p50": round(float(np.percentile(a, 50)), 2),
            "p95": round(float(np.percentile(a, 95)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2)}


def stage_latencies(records: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    """Milliseconds per stage: ``lane.stage`` from StageTiming records, and ``advisory.<stage>``
    from start/end pairs of advisory events (matched by stage, by processing time)."""
    out: dict[str, list[float]] = defaultdict(list)
    open_: dict[str, int] = {}
    for rec in records:
        msg = rec.get("msg")
        if not isinstance(msg, dict):
            continue
        if msg.get("type") == "StageTiming":
            out[f"{msg.get('lane')}.{msg.get('stage')}"].append(float(msg.get("ms", 0.0)))
        elif rec.get("topic") == "advisory_events" and "stage" in msg and isinstance(msg.get("t_perf_ns"), int):
            kind, stage = str(msg.get("type") or msg.get("kind") or ""), str(msg.get("stage"))
            if kind.endswith("start"):
                open_[stage] = msg["t_perf_ns"]
            elif kind.endswith("end") and stage in open_:
                out[f"advisory.{stage}"].append((msg["t_perf_ns"] - open_.pop(stage)) / 1e6)
    return dict(out)


def summarize(header: dict[str, Any], records: Iterable[dict[str, Any]], truncated: bool = False,
              max_errors: int = 20) -> dict[str, Any]:
    """The ``log stats`` document of a trip log."""
    counts: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    error_codes: Counter[str] = Counter()
    first_t = last_t = None
    last_seq, seq_violations, n = None, 0, 0
    kept: list[dict[str, Any]] = []
    for rec in records:
        n += 1
        counts[rec.get("topic", "?")] += 1
        t = rec.get("t_ns")
        if isinstance(t, int):
            first_t = t if first_t is None else min(first_t, t)
            last_t = t if last_t is None else max(last_t, t)
        seq = rec.get("seq")
        if last_seq is not None and (not isinstance(seq, int) or seq <= last_seq):
            seq_violations += 1
        last_seq = seq if isinstance(seq, int) else last_seq
        msg = rec.get("msg") if isinstance(rec.get("msg"), dict) else {}
        if rec.get("topic") == "errors":
            error_codes[str(msg.get("code"))] += 1
            if len(errors) < max_errors:
                errors.append({"seq": seq, "t_ns": t, "stage": msg.get("stage"), "code": msg.get("code"),
                               "message": msg.get("message")})
        if msg.get("type") == "StageTiming" or rec.get("topic") == "advisory_events":
            kept.append(rec)
    return {
        "header": {k: header.get(k) for k in ("format", "created_unix", "git", "config_hash", "models")},
        "records": n,
        "truncated_last_line": truncated,
        "seq_strictly_increasing": seq_violations == 0,
        "seq_violations": seq_violations,
        "duration_s": round((last_t - first_t) / 1e9, 3) if first_t is not None else 0.0,
        "topics": dict(sorted(counts.items())),
        "latency_ms": {stage: percentiles(v) for stage, v in sorted(stage_latencies(kept).items()) if v},
        "errors": {"count": sum(error_codes.values()), "by_code": dict(error_codes), "first": errors},
    }
