"""``vehicle-assist replay``: a recorded drive or a labelled scenario through the unchanged runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from vehicle_assist.commands._out import console, emit, err_console, fail, progress, say, warn


def register(app: typer.Typer) -> None:
    @app.command(short_help="Replay drives or labelled scenarios through the runtime.")
    def replay(
        target: str = typer.Argument(..., metavar="TARGET", help="A scenario (sim/scenarios/<name> or a .yaml with expect:), a drive "
                                              "(sim/manifests/<name>, a folder with manifest.yaml, a video, an .mcap), "
                                              "or a folder of them (batch)."),
        realtime: bool = typer.Option(False, "--realtime", help="Feed inputs at their recorded times and drop stale frames, as live (for latency figures). Default: lockstep, every frame in order."),
        speed: float = typer.Option(1.0, "--speed", metavar="X", min=0.05, max=20, help="Realtime only: drive seconds per wall second."),
        rate: Optional[float] = typer.Option(None, "--rate", metavar="HZ", min=0.5, max=60, help="Lockstep only: hand frames to perception at most at this rate (Hz of drive time), a fixed stride as a live loop at that rate would see; default every frame."),
        out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Output folder (default: runs/replay/<name>-<time> under VA_HOME); in batch mode, the parent of one folder per target."),
        start: float = typer.Option(0.0, "--start", metavar="SECONDS", min=0, help="Replay from this drive time (s)."),
        end: Optional[float] = typer.Option(None, "--end", metavar="SECONDS", min=0, help="Replay up to this drive time (s)."),
        check: bool = typer.Option(False, "--check", help="Check the scenario's expectations and compare with its reference log (sim/refs); exit 1 when any fails."),
        update_refs: bool = typer.Option(False, "--update-refs", help="Rewrite the scenario's reference log from this replay."),
        from_log: Optional[Path] = typer.Option(None, "--from-log", metavar="TRIP", help="Do not replay: re-run tracking, hazards and alerts on the detections logged in this trip log (fast iteration on configs/hazards.yaml, alerts.yaml and the tracker settings)."),
        no_voice: bool = typer.Option(False, "--no-voice", help="Perception and alerts only: no ASR, no advisories (faster)."),
        video: bool = typer.Option(True, "--video/--no-video", help="Write the annotated MP4."),
        mcap: bool = typer.Option(False, "--mcap", help="Also write outputs.mcap (trip log + frames with annotations) for Foxglove."),
        jobs: int = typer.Option(1, "--jobs", metavar="N", min=1, max=256, help="Batch mode, local engine: replays run in this many parallel processes. Ray engine without --address: the CPUs of the local Ray instance (default: all cores)."),
        engine: str = typer.Option("local", "--engine", metavar="ENGINE", help="Batch mode: where the replays run: local (child processes on this machine) or ray (Ray tasks, on a local instance or the cluster at --address)."),
        address: Optional[str] = typer.Option(None, "--address", metavar="ADDRESS", help="Ray engine: the cluster to run on (for example auto, or ray://head:10001). Default: start a local Ray instance."),
        time_limit: Optional[float] = typer.Option(None, "--time-limit", metavar="SECONDS", min=1, help="Batch mode: a replay running longer than this many seconds is stopped and tried once more, then reported as failed."),
        config_file: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="Onboard config (default: VA_CONFIG or configs/default.yaml)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Replay a drive through the runtime; write the trip log, spoken WAVs, an annotated MP4 and an HTML report.

        With a scenario, its driver questions are spoken into the microphone stream at their times and
        --check says which expectations failed (exit 1). A folder replays every scenario in it and
        writes one summary (pass/fail, alert precision and recall, false alerts per hour, latency),
        printed and kept as summary.json in the output folder.
        """
        from vehicle_assist.replay.errors import ReplayError

        try:
            p = Path(target)
            folder = p if p.is_dir() and not (p / "manifest.yaml").exists() else None
            if engine not in ("local", "ray"):
                fail(f"--engine must be local or ray, not {engine!r}", 2, code="usage")
            if folder is not None:
                result = _batch(folder, out, jobs, realtime, speed, rate, check, update_refs, no_voice, video, mcap, config_file,
                                as_json, engine, address, time_limit)
                emit(result, as_json, _human_batch)
                raise SystemExit(0 if result["failed"] == 0 else 1)
            result = _single(target, realtime, speed, rate, out, start, end, check, update_refs, from_log, no_voice,
                             video, mcap, config_file, as_json)
        except ReplayError as err:
            fail(err, 2)
        except KeyboardInterrupt:
            fail("cancelled: pending replays were stopped; finished ones are in their output folders", 130,
                 code="cancelled")
        for w in result.get("warnings") or []:  # on stderr under --json too
            warn(w)
        emit(result, as_json, _human)
        if check and result.get("passed") is False:
            raise SystemExit(1)


def _single(target, realtime, speed, rate, out, start, end, check, update_refs, from_log, no_voice, video, mcap,
            config_file, as_json) -> dict[str, Any]:
    from vehicle_assist.replay import engine, job

    t = job.resolve_target(target)
    if (check or update_refs) and t.scenario is None:
        fail(f"--check and --update-refs need a scenario; {target} is a drive", 2, code="usage")
    out_dir = out or job.default_out(t.name)
    if from_log is not None:
        if update_refs:
            fail("--update-refs needs a real replay, not --from-log", 2, code="usage")
        return job.realert_target(t, from_log, out_dir, check, False)
    _render_generated([t.drive_spec], as_json)
    if rate and realtime:
        fail("--rate is for lockstep; --realtime drops frames by itself when perception falls behind", 2, code="usage")
    drive = job.open_target(t, voice=False)
    s0, e0 = job.window(t, drive, start, end)  # a window outside the drive fails before any model loads
    spec = engine.JobSpec(target=target, out=str(out_dir), realtime=realtime, speed=speed, rate=rate, start=start, end=end,
                          check=check, update_refs=update_refs, voice=not no_voice, video=video, mcap=mcap,
                          config_file=str(config_file) if config_file else None)
    with progress("loading models", None, enabled=not as_json):
        engine.load_parts(spec)
    total = max(1, int(((e0 or drive.info.duration_s) - s0) * min(drive.info.frame_rate_hz, rate or 1e9)))
    with progress(f"replaying {t.name}", total, enabled=not as_json) as advance:
        return engine.run_job(spec, on_item=lambda m: advance() if m.topic == "frames" else None)


def _render_generated(drive_specs: list[str], as_json: bool) -> None:
    """Render the generated drives (approach sequences) the targets need and lack, with a progress bar,
    before any replay starts (batch children then find them made)."""
    from vehicle_assist.replay import drive as drive_mod

    for spec in dict.fromkeys(drive_specs):
        drive_mod.ensure_drive(spec, lambda desc, total: progress(desc, total, enabled=not as_json))


def _human(r: dict[str, Any]) -> None:
    rp = r.get("replay") or {}
    if rp:
        console.print(f"[bold]{r['name']}[/bold]: {rp.get('frames_in')} frames, {rp.get('drive_s')} s of drive in "
                      f"{rp.get('wall_s')} s ({rp.get('x_realtime')}x real time)")
    for a_t, name in r.get("alerts", []):
        console.print(f"  alert {name} at t={a_t:.2f} s")
    for c in r.get("checks") or []:
        mark = "[green]pass[/green]" if c["passed"] else "[red]FAIL[/red]"
        console.print(f"  {mark} {escape(c['expectation'])}: {escape(c['reason'])}")
    ref = r.get("ref")
    if ref:
        if ref.get("updated"):
            say(f"  reference updated: {ref['path']} ({ref['records']} records)")
        for d in ref.get("diffs", [])[:20]:
            console.print(f"  [red]ref[/red] {escape(d)}")
    for k, v in (r.get("files") or {}).items():
        say(f"  {k}: {v}")
    if r.get("trip_log"):
        say(f"  trip log: {r['trip_log']}")
    if r.get("passed") is not None:
        console.print("[green]all checks passed[/green]" if r["passed"] else "[red]checks failed[/red]")


# --- batch ------------------------------------------------------------------------------------


def _batch(folder: Path, out, jobs, realtime, speed, rate, check, update_refs, no_voice, video, mcap, config_file, as_json,
           engine_name: str = "local", address: str | None = None, time_limit: float | None = None) -> dict[str, Any]:
    import os

    from vehicle_assist import config as config_mod
    from vehicle_assist.replay import engine, job
    from vehicle_assist.replay.scenario import is_scenario

    targets = sorted(p for p in folder.iterdir() if (p.suffix in (".yaml", ".yml") and is_scenario(p))
                     or p.suffix.lower() in (".mp4", ".mcap", ".avi", ".mkv") or (p / "manifest.yaml").is_file())
    if not targets:
        fail(f"{folder}: no scenarios or drives in it", 2, code="drive-missing")
    from vehicle_assist import private

    base = out or job.default_out(folder.name)
    private.make_dirs(base)
    _render_generated([job.resolve_target(str(p)).drive_spec for p in targets if is_scenario(p)], as_json)
    specs = [engine.JobSpec(target=str(p), out=str(base / p.stem), realtime=realtime, speed=speed, rate=rate,
                            check=check and is_scenario(p), update_refs=update_refs and is_scenario(p), voice=not no_voice,
                            video=video, mcap=mcap, config_file=str(config_file) if config_file else None) for p in targets]
    cpus = float(config_mod.load_app(config_file).runtime.threads.detector)
    t0 = __import__("time").perf_counter()
    with progress(f"replaying {len(targets)} targets ({engine_name})", len(targets), enabled=not as_json) as advance:
        if engine_name == "ray":
            local_cpus = None if address else (jobs if jobs > 1 else os.cpu_count() or 1)
            results = engine.run_ray(specs, address, min(cpus, float(local_cpus or cpus)), time_limit,
                                     on_result=lambda r: advance(), num_cpus=local_cpus)
        else:
            results = engine.run_local(specs, jobs, time_limit, on_result=lambda r: advance())
    summary = summarize(targets, results)
    summary["engine"] = engine_name
    summary["wall_s"] = round(__import__("time").perf_counter() - t0, 2)
    summary["summary_file"] = str(base / "summary.json")  # the same document as printed, kept with the runs
    private.write_text(base / "summary.json", json.dumps(summary, indent=1, default=str))
    return summary


def summarize(targets: list[Path], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pass/fail per target, alert precision/recall against the labels, false alerts per hour, latency percentiles."""
    from vehicle_assist import triplog
    from vehicle_assist.replay import expect
    from vehicle_assist.replay.scenario import is_scenario, load
    from vehicle_assist.tripstats import percentiles, stage_latencies

    runs, lat, drive_s = [], {}, 0.0
    for path, r in zip(targets, results):
        drive_s += float(r.get("drive_s") or 0.0)
        if is_scenario(path) and r.get("checks"):
            s = load(path)
            res = [expect.CheckResult(c["expectation"], c["passed"], c["reason"], c.get("kind", "")) for c in r["checks"]]
            runs.append((s.expectations, res, [(float(t), n) for t, n in r.get("alerts", [])]))
        if r.get("trip_log"):
            try:
                _, recs = triplog.read(r["trip_log"])
                for k, v in stage_latencies(recs).items():
                    lat.setdefault(k, []).extend(v)
            except Exception:  # a broken child log is reported by its own result
                pass
    score = expect.score(runs)
    hours = drive_s / 3600
    return {
        "targets": [{"name": r.get("name"), "passed": r.get("passed"), "error": r.get("error"),
                     "failed_checks": [c["expectation"] + ": " + c["reason"] for c in r.get("checks") or [] if not c["passed"]],
                     "ref_diffs": len(((r.get("ref") or {}).get("diffs")) or []), "out": r.get("out"),
                     "alerts": r.get("alerts") or [], "cited_rules": _cited(r), "drive_s": r.get("drive_s"),
                     "wall_s": (r.get("run") or {}).get("wall_s"), "node": (r.get("run") or {}).get("node"),
                     "attempts": (r.get("run") or {}).get("attempts"),
                     "models_loaded": (r.get("run") or {}).get("models_loaded")} for r in results],
        "failed": sum(1 for r in results if r.get("passed") is False),
        "alert_recall": score.recall, "alert_precision": score.precision,
        "labelled": {"positive_windows": score.positives, "detected": score.detected,
                     "alerts_in_labelled_windows": score.alerts_in_labelled, "false_alerts": score.alerts_false},
        "drive_s": round(drive_s, 2),
        "false_alerts_per_hour": round(score.alerts_false / hours, 1) if hours else None,
        "latency_ms": {k: percentiles(v) for k, v in sorted(lat.items()) if v},
    }


def _cited(r: dict[str, Any]) -> list[list[str]]:
    """The rules each answer of a replay cited, in order (read from its trip log)."""
    from vehicle_assist import triplog

    if not r.get("trip_log"):
        return []
    try:
        _, recs = triplog.read(r["trip_log"])
        return [list((rec.get("msg") or {}).get("cited") or []) for rec in recs if rec.get("topic") == "advisories"]
    except Exception:  # a broken child log is reported by its own result
        return []


def _human_batch(s: dict[str, Any]) -> None:
    for t in s["targets"]:
        mark = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "ran"}[t["passed"]]
        where = f" [dim]{t['wall_s']} s on {escape(str(t['node']))}" + (f", {t['attempts']} attempts" if (t.get("attempts") or 1) > 1 else "") + "[/dim]" if t.get("node") else ""
        console.print(f"{mark} {escape(str(t['name']))}" + (f" ({escape(t['error'])})" if t.get("error") else "") + where)
        for f in t["failed_checks"]:
            say(f"    {f}")
    pr = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    console.print(f"alert recall {pr(s['alert_recall'])}, precision {pr(s['alert_precision'])}, "
                  f"false alerts per hour {s['false_alerts_per_hour']} over {s['drive_s']} s of drive")
    for k, v in s["latency_ms"].items():
        console.print(f"  {k}: p50 {v['p50']} ms, p95 {v['p95']} ms (n={v['n']})")
    if s.get("engine"):
        console.print(f"{len(s['targets'])} targets on the {s['engine']} engine in {s.get('wall_s')} s")
    console.print(f"summary: {s['summary_file']}", soft_wrap=True)
    if s["failed"]:
        err_console.print(f"[red]{s['failed']} target(s) failed[/red]")
