"""The safety lane's step: a frame (or its absence) in, hazards and alert events out, alerts spoken.

``SafetyLane.step`` is what the runtime calls for each frame the source delivers (or on a timeout
with ``frame=None``). It never waits on anything but the detector: no language model here.
"""

from __future__ import annotations

from dataclasses import dataclass

from vehicle_assist import clock
from vehicle_assist.config import PerceptionSettings
from vehicle_assist.messages import AlertEvent, CameraFrame, Hazard, VehicleState
from vehicle_assist.perception.pipeline import FrameResult, PerceptionPipeline, RateMonitor
from vehicle_assist.perception.sources import camera_hazards
from vehicle_assist.safety.alert_manager import AlertManager


@dataclass(frozen=True)
class LaneStep:
    """One step of the lane: the frame's result (None without a frame), all hazards, alert events."""

    t_ns: int
    result: FrameResult | None
    hazards: tuple[Hazard, ...]
    events: tuple[AlertEvent, ...]


class SafetyLane:
    """Perception pipeline + system signals (camera lost, lagging) + alert manager + spoken alerts."""

    def __init__(self, pipeline: PerceptionPipeline, manager: AlertManager, voice=None,
                 settings: PerceptionSettings | None = None, monitor_rate: bool = True) -> None:
        self.pipeline, self.manager, self.voice = pipeline, manager, voice
        self.settings = settings or PerceptionSettings()
        s = self.settings
        self.monitor = RateMonitor(s.rate_hz, s.lagging_factor, s.lagging_window_s) if monitor_rate else None
        self._last_frame_ns: int | None = None
        self._first_step_ns: int | None = None

    def step(self, frame: CameraFrame | None, now_ns: int, ego: VehicleState | None = None,
             mute_until_ns: int | None = None) -> LaneStep:
        """Process one frame (or note its absence) at run time ``now_ns``; speak alerts that start.

        ``now_ns`` and the frames' ``t_ns`` are on the run's clock (wall time live, media time in
        replay), so a slow first frame in replay is never taken for a lost camera.
        """
        if self._first_step_ns is None:
            self._first_step_ns = now_ns
        result = None
        hz: list[Hazard] = []
        if frame is not None:
            result = self.pipeline.process(frame, ego)
            hz.extend(result.hazards)
            self._last_frame_ns = frame.t_ns
            if self.monitor is not None:
                self.monitor.tick(clock.perf_ns())
        last = self._last_frame_ns if self._last_frame_ns is not None else self._first_step_ns
        hz.extend(camera_hazards(last, now_ns, self.settings.camera_lost_after_s))
        if self.monitor is not None:
            hz.extend(self.monitor.hazards(clock.perf_ns()))
        events = self.manager.update(hz, now_ns, mute_until_ns)
        if self.voice is not None and events:
            self.voice.handle(events)
        return LaneStep(now_ns, result, tuple(hz), tuple(events))


__all__ = ["SafetyLane", "LaneStep"]
