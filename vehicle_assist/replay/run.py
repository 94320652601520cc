"""Replay a recorded drive through the unchanged runtime (:func:`vehicle_assist.runtime.build`).

Only the sources and the clock differ from a live run. A :class:`Feeder` holds the drive's merged
message stream and hands frames and microphone blocks to the runtime's input tasks in drive-time
order, advancing a :class:`ReplayClock` as it goes (in steps of at most ``step_ms`` across gaps,
letting the loop run its timers at each step, so staleness fires at the right drive time).

- ``lockstep`` (default): before handing out the next input the feeder waits until the runtime is
  quiet (the last frame's ``frame_done`` is logged, every utterance transcribed, every question
  answered), observed from the bus's logged envelopes only. Every frame is processed, in order;
  the decisions do not depend on how fast the machine is.
- ``realtime``: inputs are handed out at their recorded times (wall clock, times ``speed``); a
  frame that arrives while perception is busy replaces the waiting one (the bus's latest-value
  topic drops it), as live. For latency figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from vehicle_assist import clock as clock_mod
from vehicle_assist import private
from vehicle_assist.clock import ReplayClock
from vehicle_assist.messages import Envelope, VehicleState
from vehicle_assist.replay import faults as faults_mod
from vehicle_assist.replay.drive import Drive, Timed
from vehicle_assist.replay.errors import ReplayError
from vehicle_assist.advisory.dispatch import ROUTE_ADVICE
from vehicle_assist.vehicle import SourceStatus

log = logging.getLogger(__name__)

Mode = Literal["lockstep", "realtime"]


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay."""

    mode: Mode = "lockstep"
    start_s: float = 0.0
    end_s: float | None = None
    speed: float = 1.0
    """Realtime only: drive seconds per wall second."""
    step_ms: float = 20.0
    """Largest clock step across a gap in the inputs (timers fire at each step)."""
    settle_timeout_s: float = 180.0
    """Lockstep: the longest wall time to wait for the runtime to go quiet before moving on."""
    frame_rate_hz: float | None = None
    """Lockstep: hand frames to perception at most at this rate of drive time (a fixed stride, as a
    live loop running at that rate would see them); None: every frame."""


class ReplayVehicle:
    """Recorded vehicle states as a runtime VehicleSource: the latest state at or before ``t``."""

    def __init__(self, states: list[VehicleState], name: str, max_age_s: float = 2.0) -> None:
        self.states, self.name, self.max_age_ns = states, name, int(max_age_s * 1e9)
        self._t = [s.t_ns for s in states]

    def state_at(self, t_ns: int) -> VehicleState:
        import bisect

        i = bisect.bisect_right(self._t, t_ns) - 1
        if i < 0 or t_ns - self._t[i] > self.max_age_ns:
            return VehicleState(t_ns=t_ns, source=self.name)
        from dataclasses import replace

        return replace(self.states[i], t_ns=t_ns)

    def status(self) -> SourceStatus:
        return SourceStatus(self.name, bool(self.states), f"{len(self.states)} recorded states" if self.states else "no telemetry in the drive")

    def close(self) -> None:
        """Nothing to release."""


class QuietGate:
    """Watches the runtime's logged envelopes to know when it has finished with what it was given."""

    def __init__(self, wait_answers: bool = True) -> None:
        self.wait_answers = wait_answers
        """False when an injected SLM stall must pass in drive time (the drive goes on meanwhile)."""
        self._cond = threading.Condition()
        self.frames_sent: set[int] = set()
        self.utterances = 0
        self.transcripts = 0
        self.questions = 0
        self.answers = 0
        self._asked: set[int] = set()
        self._holding: set[int] = set()
        """Runs answering a question / of those, the ones waiting in drive time for the driver to be
        less busy (the drive must go on meanwhile)."""
        self.alerts: list[tuple[int, str]] = []
        self.route_advice = 0
        """Route advisories being rendered (advisory_events start minus end of ``route-advice``)."""

    def observe(self, env: Envelope) -> None:
        """Bus sink (called under the bus lock, in seq order)."""
        msg, topic = env.msg, env.topic
        with self._cond:
            if topic == "frame_done":
                self.frames_sent.discard(msg.frame_seq)
            elif topic == "utterances":
                self.utterances += 1
            elif topic == "transcripts":
                self.transcripts += 1
            elif topic == "intents" and getattr(msg, "name", "") == "question":
                self.questions += 1
            elif topic == "advisories" and getattr(msg, "question", None) is not None:
                self.answers += 1
            elif topic == "advisory_events" and msg.stage == ROUTE_ADVICE:
                self.route_advice += 1 if msg.type == "start" else -1
            elif topic == "advisory_events":
                if msg.stage == "run" and msg.type == "start" and msg.data.get("question") is not None:
                    self._asked.add(msg.run_id)
                elif msg.stage == "hold" and msg.run_id in self._asked:
                    (self._holding.add if msg.type == "start" else self._holding.discard)(msg.run_id)
            elif topic == "errors":
                stage = getattr(msg, "stage", "")
                if stage == "perception":
                    self.frames_sent.clear()
                elif stage == "asr":
                    self.transcripts = self.utterances
                elif stage == "advisory":
                    self.answers = self.questions
            self._cond.notify_all()

    def sent_frame(self, seq: int) -> None:
        with self._cond:
            self.frames_sent.add(seq)

    def quiet(self) -> bool:
        return (not self.frames_sent and self.transcripts >= self.utterances and self.route_advice <= 0
                and (self.answers + len(self._holding) >= self.questions or not self.wait_answers))

    def wait_quiet(self, timeout_s: float) -> bool:
        """Block until quiet (or the timeout); True when quiet."""
        with self._cond:
            return self._cond.wait_for(self.quiet, timeout_s)


class Feeder:
    """The drive's merged stream, handed to the runtime's input tasks in time order."""

    def __init__(self, items: Iterator[Timed], clock: ReplayClock, consumers: set[str], options: ReplayOptions,
                 gate: QuietGate, ready: Callable[[str], bool], settle: Callable[[], None],
                 on_item: Callable[[Timed], None] | None = None) -> None:
        self._it, self.clock, self.consumers, self.options = items, clock, consumers, options
        self.gate, self.ready, self.settle, self.on_item = gate, ready, settle, on_item
        self._cond = threading.Condition()
        self._buf: deque[Timed] = deque()
        self._done = False
        self._closed = False
        self.step_ns = max(1, int(options.step_ms * 1e6))
        self.wall0: float | None = None
        self.t0_ns: int | None = None
        self.released = {"frames": 0, "audio": 0}
        self.timeouts = 0
        self.skipped = 0
        self._last_frame_ns: int | None = None
        self._kept: Timed | None = None

    def close(self) -> None:
        """End both input streams (waiting consumers poll the flag; no lock, so the loop never blocks here)."""
        self._closed = True

    def _skip(self, item: Timed) -> bool:
        """A frame between strides (``frame_rate_hz``): time passes, the frame is not handed out."""
        rate = self.options.frame_rate_hz
        if item.topic != "frames" or not rate or item is self._kept:
            return False
        if self._last_frame_ns is not None and item.t_ns - self._last_frame_ns < 1e9 / rate - 1e6:
            self.skipped += 1
            return True
        self._last_frame_ns, self._kept = item.t_ns, item  # decided once per frame (the head is looked at often)
        return False

    def _has(self, topic: str) -> bool:
        """Whether ``topic`` has another item: looks ahead (buffering) until one shows or the stream ends."""
        if any(m.topic == topic for m in self._buf):
            return True
        while not self._done:
            item = next(self._it, None)
            if item is None:
                self._done = True
                break
            self._buf.append(item)
            if item.topic == topic:
                return True
        return False

    def _peek(self) -> Timed | None:
        if not self._buf and not self._done:
            item = next(self._it, None)
            if item is None:
                self._done = True
            else:
                self._buf.append(item)
        return self._buf[0] if self._buf else None

    def _wall_wait(self, t_ns: int) -> None:
        if self.options.mode != "realtime":
            return
        if self.wall0 is None:
            self.wall0, self.t0_ns = (clock_mod.perf_ns() / 1e9), t_ns
        due = self.wall0 + (t_ns - self.t0_ns) / 1e9 / self.options.speed
        delay = due - (clock_mod.perf_ns() / 1e9)
        if delay > 0:
            time.sleep(delay)

    def _advance(self, t_ns: int) -> None:
        """Move drive time to ``t_ns`` in bounded steps, letting the loop's timers run at each."""
        now = self.clock.now_ns()
        while now < t_ns:
            now = min(t_ns, now + self.step_ns)
            self._wall_wait(now)
            self.clock.advance_to(now)
            self.settle()

    def take(self, topic: str) -> Any:
        """The next message of ``topic`` once everything before it was handed out (None: the topic has ended)."""
        with self._cond:
            while True:
                if self._closed or not self._has(topic):
                    self._cond.notify_all()
                    return None  # this input has ended (the runtime unexpects it: no false staleness)
                head = self._peek()
                if head.topic not in self.consumers or self._skip(head):  # vehicle states: the runtime samples them
                    self._buf.popleft()
                    self._advance(head.t_ns)
                    continue
                if head.topic == topic:
                    break
                self._cond.wait(0.05)
        # only the head's owner gets here; the other consumer waits until the head is its own
        if self.options.mode == "lockstep":
            deadline = (clock_mod.perf_ns() / 1e9) + self.options.settle_timeout_s
            while not self.ready(topic) and (clock_mod.perf_ns() / 1e9) < deadline:
                time.sleep(0.005)
            if not self.gate.wait_quiet(self.options.settle_timeout_s):
                self.timeouts += 1
                log.warning("runtime not quiet after %.0f s at t=%.2f s; moving on", self.options.settle_timeout_s, head.t_ns / 1e9)
        self._advance(head.t_ns)
        with self._cond:
            self._buf.popleft()
            self._cond.notify_all()
        if topic == "frames":
            self.gate.sent_frame(head.msg.seq)
        self.released[topic] = self.released.get(topic, 0) + 1
        if self.on_item:
            self.on_item(head)
        return head.msg

    def tail(self, limit_s: float, pace_s: float = 0.002) -> None:
        """After the drive's last item, keep drive time moving (up to ``limit_s``) until closed, so
        timers of work still pending (an injected SLM stall) can fire. Run in its own thread."""
        while not self._closed and not (self._done and not self._buf):
            time.sleep(0.01)
        end = self.clock.now_ns() + int(limit_s * 1e9)
        while not self._closed and self.clock.now_ns() < end:
            self._advance(min(end, self.clock.now_ns() + self.step_ns))
            time.sleep(pace_s)

    def stream(self, topic: str) -> Iterator[Any]:
        """An iterator for one runtime input (``frames`` or ``audio``)."""
        while True:
            msg = self.take(topic)
            if msg is None:
                return
            yield msg


@dataclass
class ReplayResult:
    """What a replay produced."""

    trip_log: Path
    summary: dict[str, Any]
    info: dict[str, Any]
    speech_wavs: list[Path] = field(default_factory=list)


def replay_config(config, drive: Drive):
    """The run's config with the drive's camera calibration (when the drive has one), and the map
    its manifest names as ``route.map`` when the config names none."""
    the_map = getattr(getattr(drive, "manifest", None), "map", None)
    if the_map and not config.route.map:
        config = config.model_copy(update={"route": config.route.model_copy(update={"map": the_map})})
    cal = drive.info.calibration
    if cal is None or not drive.info.frame_count:
        return config
    cam = cal.camera(drive.info.width, drive.info.height)
    return config.model_copy(update={"perception": config.perception.model_copy(update={"calibration": cam})})


class StalledAdvisor:
    """Fault injection: the advisory lane's generator stalls ``plan.slm_stall_s(t)`` seconds of drive time
    before answering (logged as a ``stall`` stage), while the safety lane goes on."""

    def __init__(self, inner, plan: faults_mod.FaultPlan, clock, on_event) -> None:
        self.inner, self.plan, self.clock, self.on_event = inner, plan, clock, on_event

    async def execute(self, question, scene, t_ns: int):
        from vehicle_assist.messages import AdvisoryEvent

        stall = self.plan.slm_stall_s(t_ns)
        if stall:
            self.on_event(AdvisoryEvent("start", "stall", self.clock.perf_ns(), {"injected_s": stall}))
            await self.clock.sleep(stall)
            self.on_event(AdvisoryEvent("end", "stall", self.clock.perf_ns(), {"injected_s": stall}))
        return await self.inner.execute(question, scene, t_ns)


@dataclass
class StalledLane:
    """The advisory lane with the plan's fault (an SLM stall) around every advisor it binds."""

    inner: Any
    plan: faults_mod.FaultPlan
    clock: Any

    def bind(self, speaker=None, on_event=None, cancel_event=None, clock=None, situation=None):
        inner = self.inner.bind(speaker, on_event, cancel_event, clock, situation)
        return StalledAdvisor(inner, self.plan, self.clock, on_event or (lambda e: None))


def with_faults(parts, plan: faults_mod.FaultPlan, clock):
    """The parts with the plan's advisory-lane fault (an SLM stall) wrapped around the advisory lane."""
    import dataclasses

    if plan.slm_stall is None or parts.advisory is None:
        return parts
    return dataclasses.replace(parts, advisory=StalledLane(parts.advisory, plan, clock))


async def _settle_loop(n: int = 6) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def run_replay(drive: Drive, config, parts, out_dir: Path, options: ReplayOptions = ReplayOptions(),
                     plan: faults_mod.FaultPlan | None = None, has_voice: bool = False,
                     on_item: Callable[[Timed], None] | None = None, extra_info: dict[str, Any] | None = None) -> ReplayResult:
    """Replay ``drive`` through the runtime (already-loaded ``parts``); writes ``out_dir/trip.jsonl`` and speech WAVs."""
    from vehicle_assist import runtime as rt_mod
    from vehicle_assist.audio_out import WavSink
    from vehicle_assist.replay import soundtrack
    from vehicle_assist.speech.tts import write_wav

    plan = plan or faults_mod.FaultPlan()
    private.make_dirs(out_dir)  # trip log, WAVs, report: owner-only (vehicle_assist.private)
    trip_path = out_dir / "trip.jsonl"
    if trip_path.exists():
        raise ReplayError("out-exists", f"{trip_path} exists; a trip log is never overwritten (choose another --out)")
    clock = ReplayClock(int(options.start_s * 1e9))
    parts = with_faults(parts, plan, clock)
    loop = asyncio.get_running_loop()
    info = drive.info
    camera = info.frame_count > 0
    # a drive without a camera (telemetry only): its vehicle states pace the drive clock instead of frames
    consumers = ({"frames"} if camera else {"vehicle"}) | ({"audio"} if info.has_audio and parts.asr is not None else set())
    stream = faults_mod.apply(plan, drive.messages(options.start_s, options.end_s))
    gate = QuietGate(wait_answers=plan.slm_stall is None)
    holder: dict[str, Any] = {}

    def ready(topic: str) -> bool:  # the runtime's consumers are subscribed (a frame published before is lost)
        bus = holder.get("bus")
        if topic == "vehicle":
            return bus is not None
        return bus is not None and bool(bus.subscriptions("frames" if topic == "frames" else "utterances"))

    def settle() -> None:
        try:
            asyncio.run_coroutine_threadsafe(_settle_loop(), loop).result(timeout=10)
        except Exception:  # the loop is shutting down
            pass

    feeder = Feeder(iter(stream), clock, consumers, options, gate, ready, settle, on_item)
    vehicle = ReplayVehicle(drive.vehicle_states(), f"replay:{info.name}")
    sources = rt_mod.Sources(frames=feeder.stream("frames") if camera else None,
                             audio=feeder.stream("audio") if "audio" in consumers else None,
                             vehicle=vehicle, audio_is_held=has_voice)
    if not info.has_audio:
        sources.missing["mic"] = "the drive has no audio and no scripted questions"
    if not camera:
        sources.modes["camera"] = "none: the drive has no video (telemetry only)"  # not a lost camera
    sink = WavSink(out_dir / "speaker.wav", realtime=options.mode == "realtime", now_ns=clock.now_ns)
    runtime = rt_mod.build(replay_config(config, drive), sources, clock, rt_mod.Sinks(speaker=sink, trip_log=trip_path), parts)
    holder["bus"] = runtime.bus
    runtime.bus.add_sink(gate.observe)
    if options.mode == "realtime":  # warm the detector up first: its first call is slow, and would cost frames
        first = next((m.msg for m in drive.messages(options.start_s, options.end_s) if m.topic == "frames"), None)
        if first is not None:
            await loop.run_in_executor(None, parts.detector.detect, first)
    if not camera:  # the drive clock follows the telemetry; the run ends (once idle) when it does
        runtime.inputs.add("drive-clock")

        def pace() -> None:
            for _ in feeder.stream("vehicle"):
                pass
            loop.call_soon_threadsafe(runtime.inputs.ended, "drive-clock")

        threading.Thread(target=pace, daemon=True, name="replay-drive-clock").start()
    if plan.slm_stall is not None:  # the stalled answer comes due in drive time, after the drive may have ended
        threading.Thread(target=feeder.tail, args=(plan.slm_stall.stall_s + 5.0,), daemon=True, name="replay-tail").start()
    wall0 = clock_mod.perf_ns()
    try:
        summary = await runtime.run()
    finally:
        feeder.close()
    wall_s = (clock_mod.perf_ns() - wall0) / 1e9
    wavs = []
    for i, seg in enumerate(sink.segments, start=1):
        if len(seg.pcm):
            kind = "alert" if int(seg.request.tier) == 0 else "advisory"
            wavs.append(write_wav(out_dir / "speech" / f"{i:03d}_{kind}_{_slug(seg.request.text)}.wav",
                                  seg.pcm, sink.sample_rate))
    soundtrack.write_log(out_dir / soundtrack.LOG_NAME, sink.segments, sink.sample_rate)  # the speaker on the drive clock
    drive_s = max(0.0, (clock.now_ns() - int(options.start_s * 1e9)) / 1e9)
    run_info = {"drive": {"name": info.name, "path": info.path, "kind": info.kind, "duration_s": info.duration_s,
                          "frame_rate_hz": info.frame_rate_hz, "frame_count": info.frame_count,
                          "width": info.width, "height": info.height,
                          "calibration": info.calibration.model_dump() if info.calibration else None,
                          "read": asdict(read) if (read := getattr(drive, "last_read", None)) else None},
                "mode": options.mode, "start_s": options.start_s, "end_s": options.end_s, "speed": options.speed,
                "faults": plan.model_dump(), "fault_lines": faults_mod.describe(plan),
                "replay": {"wall_s": round(wall_s, 3), "drive_s": round(drive_s, 3),
                           "x_realtime": round(drive_s / wall_s, 3) if wall_s else None,
                           "frames_in": feeder.released.get("frames", 0), "frames_skipped_by_rate": feeder.skipped,
                           "frame_rate_hz": options.frame_rate_hz, "audio_blocks_in": feeder.released.get("audio", 0),
                           "settle_timeouts": feeder.timeouts}, **(extra_info or {})}
    private.write_text(out_dir / "replay.json", json.dumps(run_info, indent=1, default=str))
    return ReplayResult(trip_path, summary, run_info, wavs)


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "speech"
