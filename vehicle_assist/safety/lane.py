"""The safety lane: frames in, hazards and alert events out, alerts spoken. No language model here.

One object, run by the car (:mod:`vehicle_assist.runtime`), ``detect``, replay and the benchmarks:

- :meth:`SafetyLane.perceive` ``(frame, ego) -> FrameResult``: detector -> tracker -> ``hazards.assess``
  (:class:`~vehicle_assist.perception.pipeline.PerceptionPipeline`). It may run on a worker thread;
  it alone touches the tracker's state.
- :meth:`SafetyLane.decide` ``(now, result, stale, mute) -> Decision``: the frame's hazards (or the
  last frame's, while the camera is not lost) plus the system hazards (camera lost, perception
  lagging) -> :class:`AlertManager` -> :class:`AlertVoice`. On the caller's thread.
- :meth:`SafetyLane.step`: both, for callers that hand frames one by one (``detect``, benchmarks).
- :meth:`SafetyLane.serve` / :meth:`SafetyLane.health`: the same on the runtime's bus, each
  frame's results published and closed with a ``frame_done``.

"perception-lagging" comes from two signals: no detections for a while (the bus's staleness) and
a measured rate of processed frames below ``lagging_factor`` x the configured ``rate_hz`` (or x
the rate frames are offered at, when the camera is slower than that), both on the run's clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from vehicle_assist import aio, clock
from vehicle_assist.bus import Bus
from vehicle_assist.config import CameraCalibration, PerceptionSettings
from vehicle_assist.messages import (AlertEvent, AlertState, CameraFrame, Envelope, FrameDone, Hazard, HazardLevel,
                                     SpeechRequest, VehicleState)
from vehicle_assist.perception.hazards import HazardTable
from vehicle_assist.perception.pipeline import FrameDetector, FrameResult, FrameTracker, PerceptionPipeline
from vehicle_assist.safety.alert_manager import AlertManager
from vehicle_assist.safety.alerts import AlertSpec
from vehicle_assist.safety.voice import AlertVoice
from vehicle_assist.topics import TOPICS, TopicSpec

STALE_HAZARDS: dict[str, str] = {"frames": "camera-lost", "detections": "perception-lagging"}
"""A stale topic -> the hazard kind it raises (the alert table says what is spoken)."""


def system_hazards(stale: Iterable[str], now_ns: int) -> list[Hazard]:
    """Pure: hazards for stale topics. A lost camera explains lagging perception, so only it is raised."""
    stale = set(stale)
    if "frames" in stale:
        stale.discard("detections")
    return [Hazard(t_ns=now_ns, kind=STALE_HAZARDS[t], level=HazardLevel.WARNING, label=t)
            for t in sorted(stale) if t in STALE_HAZARDS]


def topics(settings: PerceptionSettings) -> dict[str, TopicSpec]:
    """The bus's topics with this lane's staleness: frames are lost after ``camera_lost_after_s``;
    detections go stale only later, so a lost camera raises camera-lost, and perception-lagging
    means frames come but are not processed."""
    lost = settings.camera_lost_after_s
    return {**TOPICS, "frames": replace(TOPICS["frames"], stale_after_s=lost),
            "detections": replace(TOPICS["detections"], stale_after_s=lost + (TOPICS["detections"].stale_after_s or 0.0))}


class RateMonitor:
    """Is perception keeping up? Frames processed against frames offered, per second of the run's
    clock over a sliding window. Lagging: processed below ``factor`` x min(rate_hz, offered rate)."""

    def __init__(self, rate_hz: float, factor: float = 0.6, window_s: float = 2.0) -> None:
        self.rate_hz, self.factor, self.window_ns = rate_hz, factor, int(window_s * 1e9)
        self._offered: deque[int] = deque()
        self._processed: deque[int] = deque()
        self._since: int | None = None

    def offered(self, now_ns: int) -> None:
        """A frame arrived at ``now_ns`` (processed or not)."""
        self._since = now_ns if self._since is None else self._since
        self._offered.append(now_ns)

    def processed(self, now_ns: int) -> None:
        """A frame was processed at ``now_ns``."""
        self._processed.append(now_ns)

    def rates(self, now_ns: int) -> tuple[float, float] | None:
        """(offered, processed) frames per second over the window; None until a full window was seen."""
        for q in (self._offered, self._processed):
            while q and now_ns - q[0] > self.window_ns:
                q.popleft()
        if self._since is None or now_ns - self._since < self.window_ns:
            return None
        return len(self._offered) * 1e9 / self.window_ns, len(self._processed) * 1e9 / self.window_ns

    def hazards(self, now_ns: int) -> list[Hazard]:
        """A ``perception-lagging`` hazard while perception falls behind."""
        r = self.rates(now_ns)
        if r is None or r[1] >= self.factor * min(self.rate_hz, r[0]):
            return []
        return [Hazard(t_ns=now_ns, kind="perception-lagging", level=HazardLevel.WARNING, label="perception")]


@dataclass(frozen=True)
class Decision:
    """Alert selection at one moment: every hazard considered, the alert events, the requests spoken."""

    t_ns: int
    hazards: tuple[Hazard, ...]
    events: tuple[AlertEvent, ...]
    spoken: tuple[SpeechRequest, ...] = ()


@dataclass(frozen=True)
class LaneStep:
    """One lockstep step: the frame's result (None without a frame), every hazard, the alert events."""

    t_ns: int
    result: FrameResult | None
    hazards: tuple[Hazard, ...]
    events: tuple[AlertEvent, ...]


class SafetyLane(aio.BusLane):
    """Perception pipeline + system signals (camera lost, lagging) + alert manager + spoken alerts."""

    def __init__(self, pipeline: PerceptionPipeline, manager: AlertManager, voice: AlertVoice | None = None,
                 settings: PerceptionSettings | None = None) -> None:
        self.pipeline, self.manager, self.voice = pipeline, manager, voice
        self.settings = s = settings or PerceptionSettings()
        self.monitor = RateMonitor(s.rate_hz, s.lagging_factor, s.lagging_window_s)
        self.hazards: tuple[Hazard, ...] = ()
        """The last processed frame's hazards."""
        self.others: tuple[Hazard, ...] = ()
        """Hazards another lane raised (the route lane's speeding), part of every decision."""
        self.last_alert_text: str | None = None
        self._last_frame_ns: int | None = None
        self._first_ns: int | None = None

    # --- the lane, one call at a time --------------------------------------------------------------

    def arrived(self, now_ns: int) -> None:
        """A frame reached the lane at ``now_ns`` (counted for the rate, processed or not)."""
        self.monitor.offered(now_ns)

    def perceive(self, frame: CameraFrame, ego: VehicleState | None = None) -> FrameResult:
        """Detect, track and assess one frame (may run on a worker thread)."""
        return self.pipeline.process(frame, ego)

    def decide(self, now_ns: int, result: FrameResult | None = None, stale: Iterable[str] = (),
               mute_until_ns: int | None = None, origin_perf_ns: int | None = None) -> Decision:
        """Alert selection at ``now_ns`` for a frame's result (None: the last frame's hazards, unless the
        camera is lost) and the system hazards of the ``stale`` topics; audible alerts that start are spoken."""
        stale = set(stale)
        if result is not None:  # a frame just detected: the camera is back, whatever the last staleness check said
            stale -= {"frames", "detections"}
            self.hazards = result.hazards
            self.monitor.processed(now_ns)
        found = [] if "frames" in stale and result is None else list(self.hazards)
        system = system_hazards(stale, now_ns)
        if not any(h.kind == "perception-lagging" for h in system):
            system += self.monitor.hazards(now_ns)
        events = tuple(self.manager.update(found + system + list(self.others), now_ns, mute_until_ns))
        for ev in events:
            if ev.state == AlertState.START:
                self.last_alert_text = ev.text
        spoken = tuple(self.voice.handle(events, origin_perf_ns)) if self.voice is not None and events else ()
        return Decision(now_ns, tuple(found + system) + self.others, events, spoken)

    def step(self, frame: CameraFrame | None, now_ns: int, ego: VehicleState | None = None,
             mute_until_ns: int | None = None) -> LaneStep:
        """Process one frame (or note its absence) at run time ``now_ns``; speak alerts that start.

        ``now_ns`` and the frames' ``t_ns`` are on the run's clock (wall time live, media time in
        replay), so a slow first frame in replay is never taken for a lost camera.
        """
        self._first_ns = now_ns if self._first_ns is None else self._first_ns
        result = None
        if frame is not None:
            self.arrived(now_ns)
            result = self.perceive(frame, ego)
            self._last_frame_ns = frame.t_ns
        last = self._last_frame_ns if self._last_frame_ns is not None else self._first_ns
        lost = now_ns - last >= self.settings.camera_lost_after_s * 1e9
        d = self.decide(now_ns, result, {"frames"} if lost else (), mute_until_ns)
        return LaneStep(now_ns, result, d.hazards, d.events)

    def reset(self, calib: CameraCalibration | None = None) -> None:
        """A new run: perception afresh (optionally for another camera), no active alert, no rate history."""
        self.pipeline.reset(calib)
        self.manager = AlertManager(self.manager.table)
        s = self.settings
        self.monitor = RateMonitor(s.rate_hz, s.lagging_factor, s.lagging_window_s)
        self.hazards, self.others, self.last_alert_text, self._last_frame_ns, self._first_ns = (), (), None, None, None

    # --- on the runtime's bus ----------------------------------------------------------------------

    def bind(self, bus: Bus, mute: Callable[[], int | None] = lambda: None,
             after_frame: Callable[[tuple[Hazard, ...], int], None] | None = None) -> None:
        """Run on ``bus``: frames from ``frames``, results to ``detections``/``tracks``/``hazards``/``alerts``/``frame_done``.
        ``mute`` gives the driver's mute; ``after_frame(hazards, t_ns)`` sees each frame's hazards."""
        self._mute, self._after = mute, after_frame
        self.attach(bus, "frames", "detector")

    async def frames_in(self, frames: Iterable[CameraFrame]) -> None:
        """Publish the camera's frames (the input stage); returns when the source ends."""
        bus = self.bus
        async for frame in aio.pump(frames, "frames-in"):
            bus.publish("frames", frame)
            self.arrived(bus.clock.now_ns())
        bus.unexpect("frames")
        bus.unexpect("detections")

    async def serve(self) -> None:
        """Handle every frame the bus delivers (the newest when perception is behind)."""
        await self.handle_inputs(self._frame)

    async def _frame(self, env: Envelope) -> None:
        bus, frame = self.bus, env.msg
        origin = frame.perf_ns or env.proc_ns or clock.perf_ns()  # capture time when the source knows it
        ego = bus.latest("vehicle")
        result = await self._worker.call(self.perceive, frame, ego.msg if ego else None)
        bus.timing("safety", "detect", result.timings["detect"], frame.seq)
        bus.publish("detections", result.detections)
        bus.timing("safety", "track", result.timings["track"], frame.seq)
        bus.publish("tracks", result.tracks)
        bus.publish("hazards", result.hazards)
        t0 = clock.perf_ns()
        # assessed in the frame's time base (the tracks'); alerts on the run clock, like the health path
        self._publish(self.decide(bus.clock.now_ns(), result, bus.stale_topics(), self._mute(), origin))
        bus.timing("safety", "assess_alert", result.timings["assess"] + (clock.perf_ns() - t0) / 1e6, frame.seq)
        if self._after is not None:
            self._after(result.hazards, frame.t_ns)
        bus.timing("safety", "frame_to_decision", (clock.perf_ns() - origin) / 1e6, frame.seq)
        bus.publish("frame_done", FrameDone(bus.clock.now_ns(), frame.seq))

    async def health(self) -> None:
        """A topic going stale (or recovering) re-runs alert selection even when no frame comes."""
        bus = self.bus
        sub = bus.subscribe("health")
        try:
            async for _ in sub:
                self._publish(self.decide(bus.clock.now_ns(), None, bus.stale_topics(), self._mute()))
        finally:
            bus.unsubscribe(sub)

    def raise_hazards(self, hazards: Iterable[Hazard]) -> None:
        """Hazards another lane raised now (replacing its earlier ones); alert selection re-runs at once."""
        self.others = tuple(hazards)
        bus = self.bus
        self._publish(self.decide(bus.clock.now_ns(), None, bus.stale_topics(), self._mute()))

    def _publish(self, decision: Decision) -> None:
        for ev in decision.events:
            self.bus.publish("alerts", ev)


def assemble(settings: PerceptionSettings, detector: FrameDetector, tracker: FrameTracker, hazard_table: HazardTable,
             alert_table: dict[str, AlertSpec], voice: AlertVoice | None = None) -> SafetyLane:
    """The lane over loaded models, started afresh for ``settings``' camera (its calibration, else the table's)."""
    calib = settings.calibration or hazard_table.camera
    pipeline = PerceptionPipeline(detector, tracker, calib, hazard_table)
    pipeline.reset(calib)
    return SafetyLane(pipeline, AlertManager(alert_table), voice, settings)


def load(settings: PerceptionSettings, threads: int, calib: CameraCalibration | None = None, model=None,
         voice: AlertVoice | None = None) -> SafetyLane:
    """The lane with its models loaded (``detect``, the benchmarks): YOLO, ByteTrack, both tables."""
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.hazards import default_table
    from vehicle_assist.perception.tracker import Tracker
    from vehicle_assist.safety import alerts

    if calib is not None:
        settings = settings.model_copy(update={"calibration": calib})
    table = default_table()
    detector = Detector(model, settings, settings.calibration or table.camera, threads)
    return assemble(settings, detector, Tracker(settings.tracker), table, alerts.load_table(), voice)


def run_lockstep(lane: SafetyLane, spec: str, ego_speed_mps: float | None = None,
                 max_frames: int | None = None) -> Iterable[tuple[CameraFrame, LaneStep]]:
    """Yield ``(frame, step)`` for every frame of ``spec`` (a video file or image folder), in order,
    with media time as the run's time: the same results on every run."""
    from vehicle_assist.perception.sources import open_source

    src = open_source(spec, realtime=False)
    try:
        for frame in src:
            ego = VehicleState(t_ns=frame.t_ns, speed_mps=ego_speed_mps, source="given") if ego_speed_mps is not None else None
            yield frame, lane.step(frame, frame.t_ns, ego)
            if max_frames is not None and frame.seq + 1 >= max_frames:
                break
    finally:
        src.close()


def run_stills(lane: SafetyLane, spec: str, max_frames: int | None = None) -> Iterable[tuple[CameraFrame, LaneStep]]:
    """Yield ``(frame, step)`` for every image of a folder of unrelated stills: the lane's detector
    only (no tracking, hazards or alerts across them)."""
    from vehicle_assist.perception.sources import open_source

    src = open_source(spec, realtime=False)
    try:
        for frame in src:
            t0 = clock.perf_ns()
            dets = lane.pipeline.detector.detect(frame)
            ms = (clock.perf_ns() - t0) / 1e6
            res = FrameResult(frame_seq=frame.seq, t_ns=frame.t_ns, detections=dets, tracks=(), hazards=(),
                              timings={"detect": ms, "track": 0.0, "assess": 0.0, "total": ms})
            yield frame, LaneStep(t_ns=frame.t_ns, result=res, hazards=(), events=())
            if max_frames is not None and frame.seq + 1 >= max_frames:
                break
    finally:
        src.close()


__all__ = ["SafetyLane", "Decision", "LaneStep", "RateMonitor", "STALE_HAZARDS", "system_hazards", "topics", "assemble",
           "load", "run_lockstep", "run_stills"]
