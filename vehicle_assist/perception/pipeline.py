"""One frame through the perception lane: detect -> track -> assess, with per-stage timings.

The pipeline keeps only what must carry across frames (the tracker's state and the previous
hazard levels for hysteresis); every decision is made by the pure :func:`hazards.assess`.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from vehicle_assist import clock, config
from vehicle_assist.config import CameraCalibration, PerceptionSettings, StrictModel, ThreadSettings
from vehicle_assist.messages import CameraFrame, Detections, Hazard, HazardLevel, Track, VehicleState
from vehicle_assist.perception import hazards
from vehicle_assist.perception.hazards import HazardTable


@dataclass(frozen=True)
class FrameResult:
    """What the lane made of one frame."""

    frame_seq: int
    t_ns: int
    detections: Detections
    tracks: tuple[Track, ...]
    hazards: tuple[Hazard, ...]
    timings: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage: detect, track, assess, total."""


class PerceptionPipeline:
    """Detector + tracker + hazard assessment for one camera."""

    def __init__(self, detector, tracker, calib: CameraCalibration, table: HazardTable | None = None) -> None:
        self.detector, self.tracker, self.calib = detector, tracker, calib
        self.table = table or hazards.default_table()
        self._prev: dict[int, HazardLevel] = {}

    def process(self, frame: CameraFrame, ego: VehicleState | None = None) -> FrameResult:
        """Run every stage on ``frame``; ``ego`` None means the ego state is unknown."""
        t0 = clock.perf_ns()
        dets = self.detector.detect(frame)
        t1 = clock.perf_ns()
        tracks = self.tracker.update(dets)
        t2 = clock.perf_ns()
        cal = self.calib.scaled(frame.width, frame.height)
        hz = hazards.assess(tracks, ego, frame.t_ns, cal, self._prev, self.table)
        self._prev = hazards.levels_of(hz)
        t3 = clock.perf_ns()
        timings = {"detect": (t1 - t0) / 1e6, "track": (t2 - t1) / 1e6, "assess": (t3 - t2) / 1e6, "total": (t3 - t0) / 1e6}
        return FrameResult(frame.seq, frame.t_ns, dets, tuple(tracks), tuple(hz), timings)


class _PerceptionOnly(StrictModel):
    perception: PerceptionSettings = PerceptionSettings()


class _ThreadsOnly(StrictModel):
    threads: ThreadSettings = ThreadSettings()


def _section(path: Path | str | None, name: str, keys: tuple[str, ...] = ()) -> tuple[dict, Path]:
    """One section (or a sub-table of it) of the onboard config with its ``VA_`` overrides, unvalidated."""
    path = Path(path or os.environ.get("VA_CONFIG") or config.config_path("default.yaml"))
    data, over = (config.read_yaml(path) or {}).get(name) or {}, config.env_overrides().get(name)
    for key in keys:
        data, over = (data or {}).get(key) or {}, (over or {}).get(key)
    label = keys[-1] if keys else name
    return (config._merge({label: data}, {label: over}) if over else {label: data}), path


def load_settings(path: Path | str | None = None) -> PerceptionSettings:
    """The ``perception:`` section of the onboard config (VA_CONFIG, else configs/default.yaml), alone.

    Commands that only run perception validate only their own section (with the same
    ``VA_PERCEPTION__<KEY>`` overrides), so a half-edited section of another concern cannot stop them.
    """
    data, path = _section(path, "perception")
    return config.validate(data, _PerceptionOnly, path, env=True).perception


def load_threads(path: Path | str | None = None) -> ThreadSettings:
    """``runtime.threads`` of the onboard config (with ``VA_RUNTIME__THREADS__<KEY>``), validated alone."""
    data, path = _section(path, "runtime", ("threads",))
    return config.validate(data, _ThreadsOnly, path, env=True).threads


def build(settings: PerceptionSettings | None = None, calib: CameraCalibration | None = None,
          model=None, threads: int | None = None) -> PerceptionPipeline:
    """The pipeline from settings: the detector through models.load_detector, ByteTrack, the hazard table.

    ``threads``: detector threads (None: ``runtime.threads.detector`` of the onboard config)."""
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.tracker import Tracker

    settings = settings or PerceptionSettings()
    table = hazards.default_table()
    calib = calib or settings.calibration or table.camera
    threads = threads if threads is not None else load_threads().detector
    return PerceptionPipeline(Detector(model, settings, calib, threads), Tracker(settings.tracker), calib, table)


class RateMonitor:
    """Is the lane keeping its declared rate? Frames processed per second over a sliding window."""

    def __init__(self, rate_hz: float, factor: float = 0.6, window_s: float = 2.0) -> None:
        self.min_rate, self.window_ns = rate_hz * factor, int(window_s * 1e9)
        self._times: deque[int] = deque()

    def tick(self, now_ns: int) -> None:
        """Count one processed frame at ``now_ns`` (processing clock)."""
        self._times.append(now_ns)
        while self._times and now_ns - self._times[0] > self.window_ns:
            self._times.popleft()

    def rate(self, now_ns: int) -> float | None:
        """Frames per second over the window; None until a full window has been seen."""
        if not self._times or now_ns - self._times[0] < self.window_ns * 0.9:
            return None
        return (len(self._times) - 1) / ((now_ns - self._times[0]) / 1e9) if len(self._times) > 1 else 0.0

    def hazards(self, now_ns: int) -> list[Hazard]:
        """A ``perception-lagging`` hazard while the rate is below the declared minimum."""
        r = self.rate(now_ns)
        if r is None or r >= self.min_rate:
            return []
        return [Hazard(t_ns=now_ns, kind="perception-lagging", level=HazardLevel.WARNING, label="perception")]


__all__ = ["PerceptionPipeline", "FrameResult", "RateMonitor", "build", "load_settings", "load_threads"]
