"""One frame through perception: detect -> ego motion (without telemetry) -> track -> assess, with per-stage timings.

The pipeline keeps only what must carry across frames (the tracker's state and the previous
hazard levels for hysteresis); every decision is made by the pure :func:`hazards.assess`. The
safety lane (:mod:`vehicle_assist.safety.lane`) runs it for the car, ``detect``, replay and the
benchmarks alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from vehicle_assist import clock
from vehicle_assist.config import CameraCalibration, PerceptionSettings
from vehicle_assist.messages import CameraFrame, Detections, Hazard, HazardLevel, Track, VehicleState
from vehicle_assist.perception import hazards
from vehicle_assist.perception.egomotion import EgoMotion
from vehicle_assist.perception.hazards import HazardTable


class FrameDetector(Protocol):
    """What the pipeline needs of :class:`~vehicle_assist.perception.detector.Detector`."""

    def detect(self, frame: CameraFrame) -> Detections:
        """The objects on one frame."""

    def reset(self, calib: CameraCalibration | None = None) -> None:
        """Start afresh (pass schedule), optionally for another camera."""


class FrameTracker(Protocol):
    """What the pipeline needs of :class:`~vehicle_assist.perception.tracker.Tracker`."""

    def update(self, dets: Detections) -> list[Track]:
        """The tracks matched on this frame."""

    def reset(self) -> None:
        """Forget every track."""


@dataclass(frozen=True)
class FrameResult:
    """What perception made of one frame."""

    frame_seq: int
    t_ns: int
    detections: Detections
    tracks: tuple[Track, ...]
    hazards: tuple[Hazard, ...]
    timings: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage: detect, motion (ego motion from the image), track, assess, total."""


class PerceptionPipeline:
    """Detector + tracker + hazard assessment for one camera."""

    def __init__(self, detector: FrameDetector, tracker: FrameTracker, calib: CameraCalibration,
                 table: HazardTable | None = None) -> None:
        self.detector, self.tracker, self.calib = detector, tracker, calib
        self.table = table or hazards.default_table()
        self.motion = EgoMotion(calib)
        self._prev: dict[int, HazardLevel] = {}
        self._scaled: dict[tuple[int, int], CameraCalibration] = {}

    def reset(self, calib: CameraCalibration | None = None) -> None:
        """A new run: fresh tracks and hysteresis, the detector's schedule from the start, maybe another camera."""
        if calib is not None:
            self.calib = calib
        self.detector.reset(self.calib)
        self.tracker.reset()
        self.motion.reset(self.calib)
        self._prev, self._scaled = {}, {}

    def process(self, frame: CameraFrame, ego: VehicleState | None = None) -> FrameResult:
        """Run every stage on ``frame``; ``ego`` None means the ego state is unknown."""
        t0 = clock.perf_ns()
        dets = self.detector.detect(frame)
        t1 = clock.perf_ns()
        dets = self.observe_motion(frame, dets, ego)
        tm = clock.perf_ns()
        tracks = self.tracker.update(dets)
        t2 = clock.perf_ns()
        key = (frame.width, frame.height)
        if key not in self._scaled:
            self._scaled[key] = self.calib.scaled(*key)
        hz = hazards.assess(tracks, ego, frame.t_ns, self._scaled[key], self._prev, self.table, motion=dets.motion)
        self._prev = hazards.levels_of(hz)
        t3 = clock.perf_ns()
        timings = {"detect": (t1 - t0) / 1e6, "motion": (tm - t1) / 1e6, "track": (t2 - tm) / 1e6,
                   "assess": (t3 - t2) / 1e6, "total": (t3 - t0) / 1e6}
        return FrameResult(frame.seq, frame.t_ns, dets, tuple(tracks), tuple(hz), timings)

    def observe_motion(self, frame: CameraFrame, dets: Detections, ego: VehicleState | None) -> Detections:
        """``dets`` with the ego motion read from the image, when telemetry gives no speed (else unchanged:
        the estimate is not computed). Detections that already carry a motion (logged ones, re-run by
        ``replay/realert.py``) keep it."""
        if dets.motion is not None or (ego is not None and ego.speed_mps is not None):
            return dets  # given with the detections (a trip log's), or not needed
        boxes = tuple(d.box for d in dets.items)
        return replace(dets, motion=self.motion.update(frame.image, frame.t_ns, boxes))


def build(settings: PerceptionSettings, threads: int, calib: CameraCalibration | None = None,
          model=None) -> PerceptionPipeline:
    """The pipeline from settings: the detector (``threads`` for its model), ByteTrack, the hazard table."""
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.tracker import Tracker

    table = hazards.default_table()
    calib = calib or settings.calibration or table.camera
    return PerceptionPipeline(Detector(model, settings, calib, threads), Tracker(settings.tracker), calib, table)


__all__ = ["PerceptionPipeline", "FrameResult", "FrameDetector", "FrameTracker", "build"]
