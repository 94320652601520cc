"""``vehicle-assist detect``: run the safety lane over a video and write what it saw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vehicle_assist.commands._out import console, emit, fail, progress, warn


def register(app: typer.Typer) -> None:
    @app.command(short_help="Detect, track and warn on a video: annotated MP4 and JSONL.")
    def detect(
        video: str = typer.Argument(..., metavar="VIDEO", help="Video file or folder of images to analyse, or a recorded drive (a name in sim/manifests, a manifest .yaml, or a drive folder with manifest.yaml)."),
        out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Output folder (default: $VA_HOME/out/detect/<video name>)."),
        calib: Optional[Path] = typer.Option(None, "--calib", metavar="FILE", help="Camera calibration JSON/YAML (fields, or a document with 'calibration'). Default: the calibration of the drive the video belongs to (its manifest, as replay uses), else <video>.json if there is one, else the configured camera."),
        speed: Optional[float] = typer.Option(None, "--speed", metavar="M/S", help="Ego speed in m/s, if known (default: unknown, never assumed 0)."),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", metavar="N", help="Stop after this many frames."),
        no_video: bool = typer.Option(False, "--no-video", help="Skip the annotated MP4 (JSONL and summary only)."),
        stills: bool = typer.Option(False, "--stills", help="A folder of unrelated stills: each image on its own (every detector pass, no tracking, hazards or alerts across them; no annotated video)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON document."),
    ) -> None:
        """Detect, track and assess every frame; write an annotated MP4, a JSONL of detections, hazards and alerts, a summary.

        Frames are processed in order (lockstep), so the output is the same on every run. A drive's
        video is assessed with the drive's camera calibration, as replay does. Each JSONL line holds the
        frame's detections (box, label, score, track id, detector pass; the image's file name when the
        input is a folder). With --stills every image is an independent frame.
        """
        import cv2

        from vehicle_assist import clock, config, paths, private
        from vehicle_assist.messages import AlertState, to_record
        from vehicle_assist.perception import annotate, video as video_mod
        from vehicle_assist.perception.detector import DetectorError, road_ahead_region
        from vehicle_assist.perception.sources import SourceError, open_source
        from vehicle_assist.replay.errors import DriveError
        from vehicle_assist.safety import lane as safety_lane

        from vehicle_assist.perception.sources import IMAGE_SUFFIXES

        try:
            src_path, drive_cal = _source(video)
        except DriveError as err:
            fail(err, 2)
        if stills and not src_path.is_dir():
            fail(f"--stills needs a folder of images, got {video}", 2, code="usage")
        app = config.load_app(only=("perception", "runtime.threads"))
        settings = app.perception
        if stills:  # every still gets every pass of the schedule; stills differ in size, so no video
            no_video = True
            settings = settings.model_copy(update={"full_every": 1, "roi": settings.roi.model_copy(update={"every": 1})})
        names = sorted(p.name for p in src_path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if src_path.is_dir() else None
        try:
            cal, cal_source = _calibration(src_path, calib, drive_cal)
        except (OSError, ValueError) as err:
            fail(f"calibration {calib}: {err}", 2, code="bad-calibration")
        out_dir = out or paths.home() / "out" / "detect" / src_path.stem
        private.make_dirs(out_dir)  # what the camera saw: owner-only
        try:
            probe = open_source(str(src_path), realtime=False)
            total, fps = probe.frame_count or None, probe.fps or 25.0
            probe.close()
        except SourceError as err:
            fail(err, 2)
        if max_frames:
            total = min(total or max_frames, max_frames)
        writer = None
        alerts_seen: list[dict] = []
        n = 0
        totals: list[float] = []
        n_dets = 0
        start = clock.perf_ns()
        active = None
        jsonl = out_dir / "hazards.jsonl"
        try:
            with private.open_file(jsonl, "w") as log, progress("detecting", total, enabled=not as_json) as advance:
                lane = safety_lane.load(settings, app.runtime.threads.detector, cal)
                steps = (safety_lane.run_stills(lane, str(src_path), max_frames) if stills
                         else safety_lane.run_lockstep(lane, str(src_path), speed, max_frames=max_frames))
                lane_region = None
                for frame, step in steps:
                    res = step.result
                    n += 1
                    totals.append(res.timings["total"])
                    for ev in step.events:
                        if ev.state == AlertState.START:
                            active = ev
                            alerts_seen.append({"t_s": round(ev.t_ns / 1e9, 3), "frame": frame.seq, "name": ev.name,
                                                "text": ev.text, "audible": ev.audible})
                        elif active is not None and ev.name == active.name:
                            active = None
                    rec = {"frame": frame.seq, "t_s": round(frame.t_ns / 1e9, 3)}
                    if names is not None and frame.seq < len(names):
                        rec["file"] = names[frame.seq]
                    rec.update({"detections": video_mod.detection_records(res),
                                "hazards": [to_record(h) for h in res.hazards],
                                "alerts": [to_record(e) for e in step.events],
                                "ego_motion": to_record(res.detections.motion) if res.detections.motion else None,
                                "timings_ms": {k: round(v, 2) for k, v in res.timings.items()}})
                    n_dets += len(rec["detections"])
                    log.write(json.dumps(rec) + "\n")
                    if not no_video:
                        if writer is None:
                            private.write_bytes(out_dir / "annotated.mp4", b"")  # OpenCV truncates it, keeping 0600
                            writer = cv2.VideoWriter(str(out_dir / "annotated.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                                     fps, (frame.width, frame.height))
                            r = settings.roi
                            c = lane.pipeline.calib
                            lane_region = road_ahead_region(frame.width, frame.height, c, r.size_frac, r.below_frac) if r.every else None
                        writer.write(annotate.draw(frame.image, res, active, lane_region, 1000.0 / max(res.timings["total"], 1e-3)))
                    advance()
        except (DetectorError, SourceError) as err:
            fail(err, 2)
        finally:
            if writer is not None:
                writer.release()
                private.restrict(out_dir / "annotated.mp4")
        wall_s = (clock.perf_ns() - start) / 1e9
        if total and n < total - 1:  # the container promised more frames than could be decoded
            warn(f"{src_path}: the video ends early: {n} frame(s) decoded of the {total} its header claims "
                 "(a truncated file?); the outputs cover what was read")
        summary = {
            "video": str(src_path),
            "frames": n,
            "frames_claimed": total,
            "media_fps": fps,
            "processing_fps": round(n / wall_s, 2) if wall_s else None,
            "frame_ms_median": round(sorted(totals)[len(totals) // 2], 2) if totals else None,
            "alerts": alerts_seen,
            "calibration": (cal.model_dump() if cal else None),
            "calibration_source": cal_source,
            "ego_speed_mps": speed,
            "stills": stills,
            "detections": n_dets,
            "outputs": {"jsonl": str(jsonl), "video": None if no_video else str(out_dir / "annotated.mp4")},
        }
        private.write_text(out_dir / "summary.json", json.dumps(summary, indent=1))

        def human(s: dict) -> None:
            console.print(f"{s['frames']} frames at {s['processing_fps']} fps (median {s['frame_ms_median']} ms/frame)")
            for a in s["alerts"]:
                console.print(f"  {a['t_s']:7.2f} s  {a['name']:<20} {a['text']}" + ("" if a["audible"] else " (silent)"))
            if not s["alerts"]:
                console.print("  no alerts")
            console.print(f"wrote {s['outputs']['jsonl']}" + (f" and {s['outputs']['video']}" if s["outputs"]["video"] else ""))

        emit(summary, as_json, human)


def _source(video: str):
    """(video file or image folder, the drive's (calibration, manifest) or None) for what was typed:
    a path, or a drive given by manifest, drive folder or name (``sim/manifests/<name>.yaml``)."""
    from vehicle_assist import paths
    from vehicle_assist.replay import manifest as mf

    path = Path(video).expanduser()
    manifest = None
    if path.is_dir() and (path / "manifest.yaml").is_file():
        manifest = path / "manifest.yaml"
    elif path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        manifest = path
    elif not path.exists():
        named = paths.sim() / "manifests" / f"{video}.yaml"
        if not named.is_file():
            fail(f"{video}: no such video file, folder or drive", 2, code="video-missing")
        manifest = named
    if manifest is None:
        return path, (mf.drive_calibration(path) if path.is_file() else None)
    m, base = mf.load_manifest(manifest)
    if m.video is None:
        fail(f"{manifest}: a drive without a camera (telemetry only): nothing to detect", 2, code="no-camera")
    return mf.media_path(base, m.video, manifest, "video"), (m.calibration, manifest)


def _calibration(src_path: Path, calib: Optional[Path], drive_cal):
    """(calibration or None for the configured camera, where it came from): --calib, else the drive's
    manifest (as replay), else a ``<video>.json`` sidecar, else the config."""
    from vehicle_assist.perception import video as video_mod

    if calib:
        return video_mod.load_calibration(calib), f"--calib {calib}"
    if drive_cal is not None:
        import cv2

        cap = cv2.VideoCapture(str(src_path))
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
        if width > 0 and height > 0:
            return drive_cal[0].camera(width, height), f"drive {drive_cal[1]}"
    side = video_mod.sidecar_calibration(src_path)
    if side is not None:
        return side, f"sidecar {src_path.with_suffix('.json')}"
    return None, "config (perception.calibration, else configs/hazards.yaml)"
