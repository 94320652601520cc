"""Run the safety lane over a recorded video or image folder, frame by frame (lockstep).

Used by ``vehicle-assist detect`` and ``bench/perception.py``. Every frame is processed in order
with media time as the run's time, so results are the same on every run. Calibration comes from
the settings, or from a sidecar JSON next to the video (``<video>.json`` with a ``calibration``
object, as written by :mod:`vehicle_assist.perception.approach` and drive manifests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import yaml

from vehicle_assist.config import CameraCalibration, PerceptionSettings
from vehicle_assist.messages import CameraFrame, VehicleState
from vehicle_assist.perception import pipeline as pipeline_mod
from vehicle_assist.perception.sources import open_source
from vehicle_assist.safety import alerts
from vehicle_assist.safety.alert_manager import AlertManager
from vehicle_assist.safety.lane import LaneStep, SafetyLane


def load_calibration(path: Path | str) -> CameraCalibration:
    """A calibration from JSON/YAML: either the fields themselves or a document with ``calibration``."""
    path = Path(path)
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if isinstance(data, dict) and "calibration" in data:
        data = data["calibration"]
    return CameraCalibration.model_validate(data)


def sidecar_calibration(video: Path | str) -> CameraCalibration | None:
    """The calibration in ``<video>.json`` next to a video, if there is one."""
    side = Path(video).with_suffix(".json")
    if not side.is_file():
        return None
    try:
        return load_calibration(side)
    except (ValueError, TypeError):  # a sidecar without a usable calibration is simply not one
        return None


def run_lockstep(spec: str, settings: PerceptionSettings | None = None, calib: CameraCalibration | None = None,
                 ego_speed_mps: float | None = None, lane: SafetyLane | None = None,
                 model=None, max_frames: int | None = None) -> Iterator[tuple[CameraFrame, LaneStep]]:
    """Yield ``(frame, step)`` for every frame of ``spec`` (a video file or image folder)."""
    settings = settings or pipeline_mod.load_settings()
    if lane is None:
        pipe = pipeline_mod.build(settings, calib, model)
        lane = SafetyLane(pipe, AlertManager(alerts.load_table()), None, settings, monitor_rate=False)
    src = open_source(spec, realtime=False)
    try:
        for frame in src:
            ego = VehicleState(t_ns=frame.t_ns, speed_mps=ego_speed_mps, source="given") if ego_speed_mps is not None else None
            step = lane.step(frame, frame.t_ns, ego)
            yield frame, step
            if max_frames is not None and frame.seq + 1 >= max_frames:
                break
    finally:
        src.close()


def run_stills(spec: str, settings: PerceptionSettings | None = None, calib: CameraCalibration | None = None,
               ego_speed_mps: float | None = None, model=None,
               max_frames: int | None = None) -> Iterator[tuple[CameraFrame, LaneStep]]:
    """Yield ``(frame, step)`` for every image of a folder of unrelated stills: detections only (no
    tracking, hazards or alerts across them; ``ego_speed_mps`` is unused)."""
    from time import perf_counter_ns

    from vehicle_assist.perception.pipeline import FrameResult

    settings = settings or pipeline_mod.load_settings()
    detector = pipeline_mod.build(settings, calib, model).detector
    src = open_source(spec, realtime=False)
    try:
        for frame in src:
            t0 = perf_counter_ns()
            dets = detector.detect(frame)
            ms = (perf_counter_ns() - t0) / 1e6
            res = FrameResult(frame_seq=frame.seq, t_ns=frame.t_ns, detections=dets, tracks=(), hazards=(),
                              timings={"detect": ms, "track": 0.0, "assess": 0.0, "total": ms})
            yield frame, LaneStep(t_ns=frame.t_ns, result=res, hazards=(), events=())
            if max_frames is not None and frame.seq + 1 >= max_frames:
                break
    finally:
        src.close()


def detection_records(result) -> list[dict]:
    """A frame's detections as JSON records: box (xyxy px), label, score, track id (None when no track
    took it, e.g. a low-score box or a still), the detector pass that measured it."""
    ids = {t.box: t.track_id for t in result.tracks}
    return [{"box": [round(v, 1) for v in d.box], "label": d.label, "score": round(d.confidence, 3),
             "track_id": ids.get(d.box), "pass": d.source} for d in result.detections.items]


__all__ = ["detection_records", "run_lockstep", "run_stills", "load_calibration", "sidecar_calibration"]
