"""One replay job end to end: resolve the target (scenario or drive), replay it through the runtime,
check expectations and the reference, write the report, the annotated video and the MCAP.

Used by ``vehicle-assist replay`` (one target, or one child process per target in batch mode) and
by ``bench/endtoend.py``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vehicle_assist import paths, private, triplog
from vehicle_assist.replay import expect, refs, report
from vehicle_assist.replay.drive import Drive, is_name, open_drive, resolve_drive
from vehicle_assist.replay.errors import DriveError, ReplayError
from vehicle_assist.replay.faults import FaultPlan
from vehicle_assist.replay.run import ReplayOptions, run_replay
from vehicle_assist.replay.scenario import Scenario, is_scenario, load as load_scenario, render_questions


@dataclass
class Target:
    """What to replay: a drive, optionally with a scenario's questions, faults and expectations."""

    name: str
    drive_spec: str
    scenario: Scenario | None = None
    plan: FaultPlan = field(default_factory=FaultPlan)


def resolve_target(spec: str) -> Target:
    """A scenario (name or file with ``expect:``) or a drive (name, manifest, folder, video, MCAP)."""
    p = Path(spec)
    candidates = [p, paths.resolve(p), paths.sim() / "scenarios" / f"{spec}.yaml"]
    for c in candidates:
        if c.is_file() and is_scenario(c):
            s = load_scenario(c)
            return Target(s.name, s.spec.drive, s, s.spec.faults)
    try:
        drive = resolve_drive(spec)
    except DriveError as err:
        if err.code != "drive-missing" or not is_name(spec) or Path(spec).suffix:
            raise
        raise DriveError("drive-missing", spec, "(path)", f"a scenario or a drive; no scenario at {candidates[-1]}, "
                         f"and {err.expected}") from None
    return Target(drive.stem if drive.is_file() else drive.name, str(drive))


def open_target(t: Target, renderer=None, voice: bool = True) -> Drive:
    """The drive with the scenario's questions spoken into its microphone stream."""
    clips = render_questions(t.scenario.spec.questions, renderer) if t.scenario and voice else []
    return open_drive(t.drive_spec, voice=clips)


def replay_root() -> Path:
    """Where replays write by default: ``runs/replay`` under VA_HOME (git-ignored)."""
    return paths.resolve("runs/replay")


def default_out(name: str) -> Path:
    """``runs/replay/<name>-<UTC stamp>`` under VA_HOME (git-ignored)."""
    from datetime import datetime, timezone

    from vehicle_assist import clock

    stamp = datetime.fromtimestamp(clock.unix_time(), timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = replay_root() / f"{name}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = replay_root() / f"{name}-{stamp}-{n}"
    return out


def read_log(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, records, _ = read_log_checked(path)
    return header, records


def read_log_checked(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """A trip log's header, its records, and one line on lines it had to skip (None if none)."""
    header, records = triplog.read(path)
    recs = list(records)
    return header, recs, records.problems()


def _realert_calibration(trip: Path) -> tuple[Any, dict[str, Any]]:
    """The camera calibration a replay log was made with (from its ``replay.json``), else the
    default camera; raises ReplayError when ``replay.json`` is there but unreadable."""
    from vehicle_assist.config import CameraCalibration

    info_path = trip.parent / "replay.json"
    try:
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        d = info.get("drive") or {}
        cal = d.get("calibration")
        w, h = int(d.get("width", 1280)), int(d.get("height", 720))
        calib = CameraCalibration(width=w, height=h, focal_px=cal["focal_px"], mount_height_m=cal["mount_height_m"],
                                  cx=cal["cx"] if cal.get("cx") is not None else w / 2,
                                  cy=cal["cy"] if cal.get("cy") is not None else h / 2) if cal else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:  # ValueError: JSON and pydantic
        raise ReplayError("bad-replay-info", f"{info_path}: not a replay description this version can read "
                          f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if calib is None:
        from vehicle_assist.perception.hazards import load_table

        calib = load_table().camera.scaled(w, h)
    return calib, info


def verdict(checks: list[dict[str, Any]] | None, ref: dict[str, Any] | None) -> bool:
    """The one verdict of a checked replay, said by the exit code, the JSON and the report's header
    alike: every scenario check passed and the reference comparison found no difference (a missing
    reference is a difference)."""
    return all(c["passed"] for c in checks or []) and not (ref or {}).get("diffs")


def evaluate(t: Target, records: list[dict[str, Any]], check_ref: bool, update_ref: bool,
             rules: refs.CompareRules | None = None, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scenario checks and the reference comparison (or update) of one trip log; ``passed`` is the
    :func:`verdict` when checked (``check_ref`` and a scenario), else None."""
    out: dict[str, Any] = {"checks": None, "ref": None, "passed": None,
                           "alerts": [[round(a, 3), n] for a, n in expect.alert_starts(records)]}
    if t.scenario is None:
        return out
    results = expect.check(t.scenario.expectations, records, t.scenario.question_times)
    out["checks"] = [{"expectation": r.expectation, "passed": r.passed, "reason": r.reason, "kind": r.kind,
                      "polarity": e.polarity, "why": e.why} for r, e in zip(results, t.scenario.expectations)]
    rules = rules or refs.load_rules()
    path = refs.ref_path(t.name)
    if update_ref:
        n = refs.write_ref(records, path, rules, {"scenario": t.name, **({"git": info.get("git")} if info else {})})
        out["ref"] = {"path": str(path), "updated": True, "records": n, "diffs": []}
    elif check_ref:
        if path.is_file():
            _, ref = refs.read_ref(path)
            diffs = refs.compare(records, ref, rules)
            out["ref"] = {"path": str(path), "updated": False, "diffs": [str(d) for d in diffs]}
        else:
            out["ref"] = {"path": str(path), "updated": False, "diffs": [f"no reference at {path} (create it with --update-refs)"]}
    if check_ref:
        out["passed"] = verdict(out["checks"], out["ref"])
    return out


def write_outputs(out_dir: Path, t: Target, header: dict[str, Any], records: list[dict[str, Any]],
                  evaluation: dict[str, Any], drive: Drive | None, start_s: float, end_s: float | None,
                  video: bool, mcap: bool, on_frame: Callable[[], None] | None = None) -> tuple[dict[str, str], dict[str, Any] | None]:
    """report.html, annotated.mp4 (``video``) and outputs.mcap (``mcap``) in ``out_dir``; returns the
    files and, with ``video``, what the video holds (frames, duration, sound, the wall time it took)."""
    from vehicle_assist import clock
    from vehicle_assist.replay import annotate, mcap_out, soundtrack

    files: dict[str, str] = {}
    video_info = None
    info_path = out_dir / "replay.json"
    merged = {**header, **(json.loads(info_path.read_text()) if info_path.is_file() else {})}
    ref = evaluation.get("ref")
    html = report.render(merged, records, title=f"Replay: {t.name}", checks=evaluation.get("checks"),
                         ref_diffs=ref["diffs"] if ref else None, passed=evaluation.get("passed"))
    private.write_text(out_dir / "report.html", html)
    files["report"] = str(out_dir / "report.html")
    if drive is not None and (video or mcap):
        track = soundtrack.load(out_dir)

        def frames():  # what the runtime was given: a camera outage or dropped frames hold the frame before
            from vehicle_assist.replay import faults

            return (m.msg for m in faults.apply(t.plan, (m for m in drive.messages(start_s, end_s) if m.topic == "frames")))

        if video and drive.info.frame_count:  # a telemetry-only drive has no camera to annotate
            wall0 = clock.perf_ns()
            w = annotate.write_video(frames(), records, out_dir / "annotated.mp4", drive.info.frame_rate_hz,
                                     start_s=start_s, soundtrack=track, on_frame=on_frame)
            files["video"] = str(out_dir / "annotated.mp4")
            video_info = {"frames": w.frames, "camera_frames": w.camera_frames, "fps": w.fps, "duration_s": w.duration_s,
                          "size": f"{w.width}x{w.height}", "sound": w.audio,
                          "wall_s": round((clock.perf_ns() - wall0) / 1e9, 3)}
        if mcap:
            mcap_out.write(out_dir / "outputs.mcap", merged, records, frames(), spoken=track.spoken if track else None)
            files["mcap"] = str(out_dir / "outputs.mcap")
    for f in files.values():  # written by PyAV too: owner-only whatever made them
        private.restrict(f)
    return files, video_info


def window(t: Target, drive: Drive, start_s: float | None, end_s: float | None) -> tuple[float, float | None]:
    """The drive-time window to replay (given, else the scenario's, else the whole drive); raises
    ReplayError ``bad-window`` when it holds no part of the drive."""
    scen = t.scenario
    start = start_s or (scen.spec.start_s if scen else 0.0)
    end = end_s if end_s is not None else (scen.spec.end_s if scen else None)
    length = drive.info.duration_s
    if end is not None and end <= start:
        raise ReplayError("bad-window", f"the replay window ends at {end:g} s, not after its start at {start:g} s")
    if start >= length:
        raise ReplayError("bad-window", f"the replay window starts at {start:g} s, at or past the end of "
                          f"{drive.info.name} ({length:.2f} s long)")
    return start, end


def video_warning(info: dict[str, Any]) -> str | None:
    """One line when the video ended before its container said it would (from ``replay.json``'s drive)."""
    read = (info.get("drive") or {}).get("read") or {}
    if not read.get("ended_early"):
        return None
    d = info["drive"]
    return (f"{d.get('path')}: the video ends early: {read['frames']} frame(s) decoded up to {read['until_s']:.2f} s, "
            f"of the {read['claimed_frames']} frames ({d.get('duration_s', 0):.2f} s) its header claims "
            "(a truncated file?); the replay covers what was read")


def replay_target(t: Target, config, parts, out_dir: Path, options: ReplayOptions, check: bool = False,
                  update_refs: bool = False, video: bool = True, mcap: bool = False, renderer=None,
                  on_item=None, on_frame=None) -> dict[str, Any]:
    """Replay one target and evaluate it; returns the JSON-able result."""
    drive = open_target(t, renderer, voice=parts.asr is not None)
    scen = t.scenario
    start, end = window(t, drive, options.start_s, options.end_s)
    opts = ReplayOptions(options.mode, start, end, options.speed, options.step_ms, options.settle_timeout_s, options.frame_rate_hz)
    has_voice = bool(scen and scen.spec.questions)
    res = asyncio.run(run_replay(drive, config, parts, out_dir, opts, t.plan, has_voice=has_voice, on_item=on_item,
                                 extra_info={"scenario": scen.name if scen else None,
                                             "questions": [q.model_dump() for q in scen.spec.questions] if scen else []}))
    read = res.info["drive"].get("read") or {}
    if read and read.get("frames") == 0:
        raise ReplayError("no-frames", f"{drive.info.path}: no frame could be decoded in the replay window "
                          f"from {start:g} s (the video ends early: a truncated file?); outputs so far in {out_dir}")
    header, records, problems = read_log_checked(res.trip_log)
    warnings = [w for w in (video_warning(res.info), problems) if w]
    evaluation = evaluate(t, records, check, update_refs, info=header)
    files, video_info = write_outputs(out_dir, t, header, records, evaluation, drive, start, end, video, mcap, on_frame)
    return {"name": t.name, "drive": res.info["drive"]["name"], "scenario": scen.name if scen else None,
            "out": str(out_dir), "trip_log": str(res.trip_log), "passed": evaluation["passed"],
            "checks": evaluation["checks"] or [], "ref": evaluation["ref"], "alerts": evaluation["alerts"], "files": files,
            "video": video_info,
            "speech_wavs": [str(p) for p in res.speech_wavs], "replay": res.info["replay"],
            "drive_s": res.info["replay"]["drive_s"], "summary": res.summary, "warnings": warnings}


def realert_target(t: Target, trip: Path, out_dir: Path, check: bool, update_refs: bool) -> dict[str, Any]:
    """Re-run hazards and alerts on a trip log's logged tracks (current configs), then evaluate."""
    from vehicle_assist.messages import MessageError
    from vehicle_assist.replay import realert

    try:
        header, records, problems = read_log_checked(trip)
    except triplog.TripLogError as err:
        raise ReplayError(err.code, err.message) from None
    calib, info = _realert_calibration(trip)
    try:
        new = realert.rerun(records, calib)
    except MessageError as err:
        raise ReplayError("bad-record", f"{trip}: {err.message}") from None
    with private.open_file(out_dir / "realert.jsonl", "w") as f:
        f.write(json.dumps({**header, "realert_of": str(trip)}, default=str) + "\n")
        for r in new:
            f.write(json.dumps(r, separators=(",", ":"), default=str) + "\n")
    evaluation = evaluate(t, new, check, update_refs, info=header)
    files, _ = write_outputs(out_dir, t, {**info, **header}, new, evaluation, None, 0.0, None, video=False, mcap=False)
    return {"name": t.name, "from_log": str(trip), "out": str(out_dir), "checks": evaluation["checks"] or [],
            "ref": evaluation["ref"], "alerts": evaluation["alerts"], "passed": evaluation["passed"], "files": files,
            "warnings": [problems] if problems else []}
