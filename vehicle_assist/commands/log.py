"""``vehicle-assist log show|stats TRIP``: read a trip log written by ``run`` or ``replay``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from vehicle_assist.commands._out import console, emit, emit_line, fail, progress, warn

TRIP_HELP = ("Trip log (.jsonl) to read, or 'latest' for the newest one written by run (runtime.trip_log_dir) "
             "or replay (runs/replay).")


def resolve_trip(trip: str) -> Path:
    """A trip path as typed (relative to the shell's directory), or the newest log for 'latest':
    of ``run`` (``runtime.trip_log_dir``) and of ``replay`` (``trip.jsonl`` under ``runs/replay``)."""
    if trip != "latest":
        return Path(trip).expanduser()
    from vehicle_assist import config, paths
    from vehicle_assist.replay.job import replay_root

    folder, replays = paths.resolve(config.load_app().runtime.trip_log_dir), replay_root()
    logs = [p for p in folder.glob("*.jsonl") if p.is_file()] + [p for p in replays.rglob("trip.jsonl") if p.is_file()]
    if not logs:
        fail(f"no trip logs in {folder} or {replays}", 2, code="not-found")
    return max(logs, key=lambda p: p.stat().st_mtime)


def header_line(path: Path, header: dict[str, Any]) -> str:
    """The trip log's provenance on one line (fields of the wrong type show as '?', never fail)."""
    git = header.get("git") if isinstance(header.get("git"), dict) else {}
    models = header.get("models")
    names = ", ".join(map(str, models)) if isinstance(models, (dict, list)) else "?"
    return (f"{path}  git {str(git.get('commit'))[:10]}{' (dirty)' if git.get('dirty') else ''}"
            f"  config {str(header.get('config_hash'))[:19]}  models {names or '-'}")


def summary(msg: Any, width: int = 110) -> str:
    """One readable line for a logged message: its type, then its scalar fields."""
    if not isinstance(msg, dict):
        return str(msg)[:width]
    parts = [str(msg.get("type", ""))]
    for k, v in msg.items():
        if k in ("type", "t_ns") or v is None or (isinstance(v, dict) and "ndarray" in v):
            continue
        if isinstance(v, float):
            v = round(v, 3)
        text = json.dumps(v, default=str) if isinstance(v, (list, dict)) else repr(v) if isinstance(v, str) else str(v)
        parts.append(f"{k}={text}")
    line = " ".join(parts)
    return line if len(line) <= width else line[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    log_app = typer.Typer(help="Read trip logs: list their records, or count them and give latency percentiles per stage.",
                          no_args_is_help=True)
    app.add_typer(log_app, name="log", short_help="Read trip logs: their records, or counts and latencies.")

    @log_app.command("show", short_help="List a trip log's records: seq, time, topic, message.")
    def show(
        trip: str = typer.Argument(..., metavar="TRIP", help=TRIP_HELP),
        topic: Optional[list[str]] = typer.Option(None, "--topic", "-t", metavar="TOPIC", help="Only records of this topic (repeatable)."),
        limit: int = typer.Option(0, "--limit", "-n", metavar="N", min=0, help="Show at most this many records (0: all)."),
        as_json: bool = typer.Option(False, "--json", help="JSON Lines: the header, then each record as logged."),
    ) -> None:
        """List a trip log's records in order (seq, time since the trip started, topic, message)."""
        from vehicle_assist import triplog

        path = resolve_trip(trip)
        try:
            header, records = triplog.read(path)
            if as_json:
                emit_line(header)
            else:
                console.print(header_line(path, header), markup=False, highlight=False, soft_wrap=True)
            # the trip's start; older logs (or a header of the wrong type): their first record, whatever is shown
            t0 = header.get("t0_ns") if isinstance(header.get("t0_ns"), int) else None
            shown = 0
            for rec in records:
                t0 = rec["t_ns"] if t0 is None else t0
                if topic and rec.get("topic") not in topic:
                    continue
                if limit and shown >= limit:
                    break
                shown += 1
                if as_json:
                    emit_line(rec)
                    continue
                console.print(f"{rec['seq']:>7} {(rec['t_ns'] - t0) / 1e9:9.3f}s {rec['topic']:<16} {summary(rec.get('msg'))}",
                              markup=False, highlight=False, soft_wrap=True)
        except triplog.TripLogError as err:
            fail(err, 2)
        if records.problems():
            warn(records.problems())

    @log_app.command("stats", short_help="Counts per topic, latency percentiles per stage, errors.")
    def stats(
        trip: str = typer.Argument(..., metavar="TRIP", help=TRIP_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Counts per topic, latency percentiles per stage (from stage timings), errors, seq check."""
        from vehicle_assist import triplog, tripstats

        path = resolve_trip(trip)
        try:
            header, records = triplog.read(path)
            with progress(f"reading {path.name}", None, enabled=not as_json) as advance:
                def counted():
                    for i, rec in enumerate(records, 1):
                        if i % 1000 == 0:
                            advance(1000)
                        yield rec
                doc = tripstats.summarize(header, counted())
            doc["truncated_last_line"] = records.truncated
            doc["skipped_lines"] = [{"line": n, "why": why} for n, why in records.skipped]
            doc["path"] = str(path)
        except triplog.TripLogError as err:
            fail(err, 2)
        if records.problems():
            warn(records.problems())

        def human(d: dict) -> None:
            console.print(f"{d['path']}: {d['records']} records over {d['duration_s']:.1f} s; "
                          f"seq strictly increasing: {'yes' if d['seq_strictly_increasing'] else 'NO'}"
                          f"{'; last line cut off (skipped)' if d['truncated_last_line'] else ''}"
                          f"{f'; {len(skipped)} bad line(s) skipped' if (skipped := d['skipped_lines']) else ''}",
                          markup=False, highlight=False)
            console.print("topics: " + ", ".join(f"{k} {v}" for k, v in d["topics"].items()))
            if d["latency_ms"]:
                console.print(f"{'stage':<28}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}  (ms)")
                for stage, p in d["latency_ms"].items():
                    console.print(f"{stage:<28}{p['n']:>7}{p['p50']:>9.1f}{p['p95']:>9.1f}{p['p99']:>9.1f}{p['max']:>9.1f}",
                                  markup=False, highlight=False)
            e = d["errors"]
            console.print(f"errors: {e['count']}" + (" (" + ", ".join(f"{k} {v}" for k, v in e["by_code"].items()) + ")" if e["count"] else ""))
            for err in e["first"]:
                console.print(f"  seq {err['seq']} {err['stage']}: {err['code']}: {err['message']}", markup=False)

        emit(doc, as_json, human)
