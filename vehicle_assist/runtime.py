"""The onboard loop: the safety lane and the voice lane as asyncio tasks over one bus.

``build(config, sources, clock, sinks, parts) -> Runtime``; ``await runtime.run(duration_s)``.
Live and replay differ only in the sources and the clock handed in: nothing here asks which.

- Safety lane: frames (latest value) -> detector (worker thread) -> tracker -> ``hazards.assess``
  -> ``AlertManager`` -> ``AlertVoice`` -> audio arbiter. No language model on this path.
- Voice lane: audio -> activation gate -> VAD -> utterances (FIFO) -> ASR (worker thread) ->
  intent -> a command acts at once; a question starts an ``AdvisoryRun`` (its SLM runs off the
  loop; the arbiter's cancel event stops it when an alert pre-empts).
- Route lane (only when ``route.map`` is set; :mod:`vehicle_assist.route.lane`): vehicle states ->
  map matching -> ``RouteContext`` on ``route``; route advisories (spoken through the advisory
  tier under the workload hold), the speeding hazard (alert table row ``speeding``) and answers to
  questions that need the position ("what's the speed limit here?").
- Vehicle state is published at ``runtime.vehicle_rate_hz``; stale topics become system hazards
  (``camera-lost``, ``perception-lagging``) that the alert table turns into spoken alerts.
- Every logged envelope goes to the trip log as it is published; every stage runs under the
  watchdog (crash -> ``errors`` -> restart with backoff); SIGINT/SIGTERM stop the run gracefully
  and the trip log is closed (fsync) last.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Protocol

from vehicle_assist import private, triplog
from vehicle_assist.advisory.proactive import ProactiveState, due
from vehicle_assist.bus import Bus
from vehicle_assist.clock import Clock
from vehicle_assist.config import AppConfig
from vehicle_assist.messages import (Advisory, AdvisoryEvent, AudioChunk, CameraFrame, ErrorEvent, Hazard,
                                     HazardLevel, Intent, Scene, SpeechEvent, SpeechRequest, StageTiming, Tier,
                                     Utterance)
from vehicle_assist.topics import TOPICS

ROUTE_ADVICE = "route-advice"
"""The advisory_events stage around the rendering of a route advisory (replay waits for its end)."""
from vehicle_assist.vehicle import UnknownSource, VehicleSource
from vehicle_assist.watchdog import Backoff, Watchdog

log = logging.getLogger(__name__)

STALE_HAZARDS: dict[str, str] = {"frames": "camera-lost", "detections": "perception-lagging"}
"""A stale topic -> the hazard kind it raises (the alert table says what is spoken)."""


def system_hazards(stale: Iterable[str], now_ns: int) -> list[Hazard]:
    """Pure: hazards for stale topics. A lost camera explains lagging perception, so only it is raised."""
    stale = set(stale)
    if "frames" in stale:
        stale.discard("detections")
    return [Hazard(t_ns=now_ns, kind=STALE_HAZARDS[t], level=HazardLevel.WARNING, label=t)
            for t in sorted(stale) if t in STALE_HAZARDS]


def scene_of(hazards: Iterable[Hazard], ego: Any) -> Scene | None:
    """Pure: the situation for retrieval, from the worst current hazard and what is known of the ego."""
    worst = max(hazards, key=lambda h: int(h.level), default=None)
    if worst is None and ego is None:
        return None
    return Scene(label=worst.label if worst else None, distance_m=worst.distance_m if worst else None,
                 speed_mps=getattr(ego, "speed_mps", None), road_type=getattr(ego, "road_type", None),
                 weather=getattr(ego, "weather", None), hazard=worst.kind if worst else None)


class Advisor(Protocol):
    """What the runtime needs of ``advisory.run.AdvisoryRun``."""

    async def execute(self, question: str | None, scene: Scene | None, t_ns: int) -> Advisory:
        """Answer and speak; returns the Advisory."""


@dataclass
class Parts:
    """The loaded components (models loaded once, by :func:`load_parts` or by a test)."""

    detector: Any
    """``detect(CameraFrame) -> Detections``."""
    tracker: Any
    """``update(Detections) -> list[Track]``."""
    calib: Any
    """``perception.hazards.CameraCalibration`` of the camera (scaled to each frame's size)."""
    alert_table: dict[str, Any]
    renderer: Any
    """``render(text, rate=None) -> Rendered`` (pcm, sample_rate)."""
    hazard_table: Any = None
    asr: Any = None
    """``transcribe(Utterance) -> Transcript``; None: no voice lane."""
    make_advisor: Callable[[Any, Callable[[AdvisoryEvent], None]], Advisor] | None = None
    """``(arbiter, on_event) -> Advisor``; None: questions are answered with an apology."""
    model_paths: dict[str, Path] = field(default_factory=dict)
    """Role -> model file, for the trip log's provenance header."""


@dataclass
class Sources:
    """The inputs; any may be absent (``missing`` says why, and the run goes on without it)."""

    frames: Iterable[CameraFrame] | None = None
    audio: Iterable[AudioChunk] | None = None
    vehicle: VehicleSource = field(default_factory=UnknownSource)
    audio_is_held: bool = False
    """Push-to-talk held for the whole audio input (a recorded question is one long press)."""
    button: Any = None
    """Push-to-talk button (``events() -> Iterator[ButtonEvent]``) of a live microphone; None: none."""
    missing: dict[str, str] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    """Lanes switched off on purpose (``{"voice": "off (--no-voice)"}``): in the header, not errors."""


@dataclass
class Sinks:
    """The outputs: the speaker (an ``audio_out`` sink) and where the trip log goes."""

    speaker: Any
    trip_log: Path | None = None
    """None: a new file under ``runtime.trip_log_dir``."""


class Runtime:
    """One run: the bus, the lanes as supervised tasks, the arbiter and the trip log."""

    def __init__(self, config: AppConfig, sources: Sources, clock: Clock, sinks: Sinks, parts: Parts) -> None:
        from vehicle_assist.audio_out import AudioArbiter
        from vehicle_assist.safety.alert_manager import AlertManager
        from vehicle_assist.safety.voice import AlertVoice
        from vehicle_assist.speech import endpoint
        from vehicle_assist.speech.activation import Gate
        from vehicle_assist.speech.controls import VoiceControls

        rt = config.runtime
        self.config, self.sources, self.clock, self.parts = config, sources, clock, parts
        # The camera is lost after perception's own threshold; detections go stale only later, so a
        # lost camera raises camera-lost, and perception-lagging means frames come but are not processed.
        lost = config.perception.camera_lost_after_s
        topics = dict(TOPICS)
        topics["frames"] = dataclasses.replace(TOPICS["frames"], stale_after_s=lost)
        topics["detections"] = dataclasses.replace(TOPICS["detections"],
                                                   stale_after_s=lost + (TOPICS["detections"].stale_after_s or 0.0))
        self.bus = Bus(clock, topics, fifo_maxlen=rt.queue_bound)
        self.trip_path = sinks.trip_log or triplog.new_path(rt.trip_log_dir)
        header = triplog.provenance(config, parts.model_paths, inputs={
            "camera": sources.frames is not None, "mic": sources.audio is not None,
            "vehicle": sources.vehicle.name, "missing": sources.missing, "modes": sources.modes,
            "route": {"map": config.route.map, "log_position": config.route.log_position} if config.route.map else None},
            t0_ns=clock.now_ns())
        self.trip = triplog.TripLog(self.trip_path, header, fsync=rt.fsync)
        self.bus.add_sink(private.position_filter(self.trip.append, config.route.log_position))
        self.arbiter = AudioArbiter(sinks.speaker)
        self.arbiter.add_listener(self._on_speech)
        self.alerts = AlertManager(parts.alert_table)
        self.alert_voice = AlertVoice(parts.alert_table, parts.renderer, self.arbiter)
        self.controls = VoiceControls()
        self.gate = Gate.from_settings(config.speech.activation, self.arbiter.is_speaking)
        self.joiner = endpoint.Joiner(endpoint.EndpointOptions.from_settings(config.speech.endpoint))
        self._stream_s = 0.0  # latest audio time the VAD has seen (seconds on the clock): ends a hold
        if sources.audio_is_held:
            self.gate.pressed = True  # a recorded question is one long press of push-to-talk
        w = rt.watchdog
        self.watchdog = Watchdog(clock, lambda e: self.bus.publish("errors", e),
                                 Backoff(w.initial_backoff_s, w.backoff_factor, w.max_backoff_s, w.reset_after_s),
                                 w.max_restarts)
        self.advisor = parts.make_advisor(self.arbiter, lambda e: self.bus.publish("advisory_events", e)) \
            if parts.make_advisor else None
        self._pools = {name: ThreadPoolExecutor(1, thread_name_prefix=name)
                       for name in ("detector", "asr", "tts")}
        self._stop = asyncio.Event()
        self._hazards: tuple[Hazard, ...] = ()
        self._levels: dict[int, HazardLevel] = {}
        self._calib: dict[tuple[int, int], Any] = {}
        self._alert_origin: dict[int, tuple[SpeechRequest, int]] = {}
        self._advice: asyncio.Task[None] | None = None
        self.last_advisory: Advisory | None = None
        self.last_alert_text: str | None = None
        self._inputs: set[str] = set()
        self._working = 0
        self._drain: asyncio.Future[None] | None = None
        self._released = False  # the push-to-talk button went up: end the open utterance
        self._proactive = ProactiveState()
        self.route_lane: Any = None
        self._route_hazards: list[Hazard] = []
        self._route_error: str | None = None
        if config.route.map:
            from vehicle_assist.route.lane import RouteLane
            from vehicle_assist.route.map import RouteError

            try:
                self.route_lane = RouteLane.open(config.route)
            except (RouteError, OSError) as err:  # no map: the run goes on without route context
                self._route_error = str(err)

    # --- the run --------------------------------------------------------------------------------

    async def run(self, duration_s: float | None = None) -> dict[str, Any]:
        """Run until ``duration_s`` of clock time, SIGINT/SIGTERM, or every input has ended."""
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop)
                handled.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
                pass
        self.arbiter.start()
        wd, bus, src = self.watchdog, self.bus, self.sources
        wd.start("staleness", lambda: bus.watch(self.config.runtime.stale_check_s))
        wd.start("health", self._health)
        if src.vehicle.name != "none":  # nothing configured: no stream of all-unknown states
            wd.start("vehicle", self._vehicle)
        if src.vehicle.status().available:
            bus.expect("vehicle")
        if src.frames is not None:
            bus.expect("frames", "detections")
            self._inputs.add("frames")
            wd.start("frames-in", self._frames_in)
            wd.start("perception", self._perception)
        if src.audio is not None and self.parts.asr is not None:
            bus.expect("audio")
            self._inputs.add("audio")
            wd.start("audio-in", self._audio_in)
            wd.start("asr", self._asr)
            if src.button is not None and self.gate.mode == "push_to_talk":
                wd.start("button", self._button)
        if self.route_lane is not None and src.vehicle.name != "none":
            wd.start("route", self._route)
        elif self._route_error:
            bus.publish("errors", ErrorEvent(self.clock.now_ns(), "route-unavailable", self._route_error, stage="route"))
        for what, why in src.missing.items():
            bus.publish("errors", ErrorEvent(self.clock.now_ns(), f"{what}-missing", why, stage=what))
        waits = [asyncio.ensure_future(self._stop.wait())]
        if duration_s is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep(duration_s)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            for sig in handled:
                loop.remove_signal_handler(sig)
            summary = await self.shutdown()
        return summary

    def ask(self, text: str) -> None:
        """Start an advisory for a typed question, as if the driver had asked it."""
        intent = Intent(self.clock.now_ns(), "question", text)
        self.bus.publish("intents", intent)
        self._start_advice(intent)

    def stop(self) -> None:
        """Ask the run to end (signal handlers call this); shutdown follows on the loop."""
        self._stop.set()

    async def shutdown(self) -> dict[str, Any]:
        """Stop inputs, let a running advisory finish (bounded), then close everything; the trip log last."""
        timeout = self.config.runtime.shutdown_timeout_s
        for name in ("frames-in", "audio-in", "vehicle", "button"):
            task = self.watchdog.tasks.get(name)
            if task is not None:
                task.cancel()
        for s in (self.sources.frames, self.sources.audio, self.sources.button):
            close = getattr(s, "close", None)
            if callable(close) and not isinstance(s, types.GeneratorType):  # a generator ends with its thread
                try:
                    close()
                except Exception:
                    log.exception("closing a source failed")
        if self._advice is not None and not self._advice.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._advice), timeout)
            except (asyncio.TimeoutError, Exception):
                self._advice.cancel()
        await self.watchdog.stop(timeout)
        self.bus.close()
        await asyncio.get_running_loop().run_in_executor(None, self.arbiter.close)
        self.sources.vehicle.close()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        stats = self.bus.stats()
        self.trip.close()
        return {"trip_log": str(self.trip_path), "records": self.trip.count,
                "published": {t: s["published"] for t, s in stats.items() if s["published"]},
                "dropped": {t: s["dropped"] for t, s in stats.items() if s["dropped"]},
                "restarts": {k: v for k, v in self.watchdog.restarts.items() if v},
                "sink_errors": self.bus.sink_errors, "missing": self.sources.missing, "modes": self.sources.modes}

    # --- helpers --------------------------------------------------------------------------------

    def _timing(self, lane: str, stage: str, t0_perf: int, item: int | None = None) -> float:
        ms = (self.clock.perf_ns() - t0_perf) / 1e6
        self.bus.publish("timings", StageTiming(self.clock.now_ns(), lane, stage, round(ms, 3), item))
        return ms

    async def _in_pool(self, pool: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pools[pool], fn, *args)

    def _on_speech(self, kind: str, req: SpeechRequest, t_perf_ns: int) -> None:
        """Arbiter listener (its thread): log what was said; frame -> alert audio latency on start."""
        self.bus.publish("speech", SpeechEvent(self.clock.now_ns(), kind, req.text, req.tier, req.source, t_perf_ns))
        origin = self._alert_origin.pop(id(req), None)
        if origin is not None and kind == "start":
            ms = (t_perf_ns - origin[1]) / 1e6
            self.bus.publish("timings", StageTiming(self.clock.now_ns(), "safety", "frame_to_audio", round(ms, 3)))

    def _decide(self, hazards: list[Hazard], now_ns: int, origin_perf_ns: int | None) -> None:
        """Alert selection and spoken alerts for the current hazards (+ system hazards of stale topics)."""
        events = self.alerts.update(hazards + system_hazards(self.bus.stale_topics(), now_ns) + self._route_hazards,
                                    now_ns, self.controls.mute_until_ns)
        for ev in events:
            self.bus.publish("alerts", ev)
            if ev.state == "start":
                self.last_alert_text = ev.text
        for req in self.alert_voice.handle(events):
            if origin_perf_ns is not None:
                self._alert_origin[id(req)] = (req, origin_perf_ns)

    def _calibration(self, width: int, height: int) -> Any:
        key = (width, height)
        if key not in self._calib:
            self._calib[key] = self.parts.calib.scaled(width, height)
        return self._calib[key]

    # --- safety lane ----------------------------------------------------------------------------

    async def _frames_in(self) -> None:
        async for frame in _pump(self.sources.frames, "frames-in"):
            self.bus.publish("frames", frame)
        self.bus.unexpect("frames")
        self.bus.unexpect("detections")
        self._input_ended("frames")

    async def _consume(self, topic: str, handle: Callable[[Any], Awaitable[None]]) -> None:
        """Handle every envelope of ``topic`` in turn, counted as work in progress while handled."""
        sub = self.bus.subscribe(topic)
        try:
            async for env in sub:
                self._working += 1
                try:
                    await handle(env)
                finally:
                    self._working -= 1
        finally:
            self.bus.unsubscribe(sub)

    async def _perception(self) -> None:
        await self._consume("frames", self._process_frame)

    async def _process_frame(self, env: Any) -> None:
        """detect (worker thread) -> track -> assess -> alerts, each timed."""
        from vehicle_assist.perception import hazards as hz

        frame: CameraFrame = env.msg
        t0 = self.clock.perf_ns()
        dets = await self._in_pool("detector", self.parts.detector.detect, frame)
        self._timing("safety", "detect", t0, frame.seq)
        self.bus.publish("detections", dets)
        t1 = self.clock.perf_ns()
        tracks = self.parts.tracker.update(dets)
        self._timing("safety", "track", t1, frame.seq)
        self.bus.publish("tracks", tuple(tracks))
        t2 = self.clock.perf_ns()
        ego_env = self.bus.latest("vehicle")
        found = hz.assess(tracks, ego_env.msg if ego_env else None, frame.t_ns,
                          self._calibration(frame.width, frame.height), self._levels, self.parts.hazard_table)
        self._levels = hz.levels_of(found)
        self._hazards = tuple(found)
        self.bus.publish("hazards", self._hazards)
        # assess in the frame's time base (the tracks'); alerts on the run clock, like the health path
        origin = frame.perf_ns or env.proc_ns or t0  # capture time when the source knows it
        self._decide(found, self.clock.now_ns(), origin)
        self._timing("safety", "assess_alert", t2, frame.seq)
        self._offer_advice(found, frame.t_ns)
        self._timing("safety", "frame_to_decision", origin, frame.seq)

    async def _health(self) -> None:
        """A topic going stale (or recovering) re-runs alert selection even when no frame comes."""
        sub = self.bus.subscribe("health")
        try:
            async for _ in sub:
                stale = self.bus.stale_topics()
                self._decide([] if "frames" in stale else list(self._hazards), self.clock.now_ns(), None)
        finally:
            self.bus.unsubscribe(sub)

    async def _vehicle(self) -> None:
        period = 1.0 / self.config.runtime.vehicle_rate_hz
        while True:
            self.bus.publish("vehicle", self.sources.vehicle.state_at(self.clock.now_ns()))
            await self.clock.sleep(period)

    # --- voice lane -----------------------------------------------------------------------------

    async def _audio_in(self) -> None:
        from vehicle_assist.speech import vad

        sp = self.config.speech
        gate = self.gate
        seg = vad.VadSegmenter(vad.VadOptions.from_settings(sp.vad), sp.sample_rate, self.clock.now_ns())
        origin, elapsed = self.clock.now_ns(), 0.0
        async for chunk in _pump(self.sources.audio, "audio-in"):
            self.bus.publish("audio", chunk)
            t = origin + int(elapsed * 1e9)
            t0 = self.clock.perf_ns()
            events = seg.process(chunk.pcm, elapsed) if gate.listening(t) else []
            if self._released:  # push-to-talk let go: the utterance ends here, trailing silence or not
                self._released = False
                events += seg.flush(elapsed, "button-released")
            elapsed += chunk.duration_s
            self._stream_s = (origin + int(elapsed * 1e9)) / 1e9
            for ev in events:
                if ev.kind == "start":
                    self.joiner.started(t / 1e9)  # a held utterance goes on: merged, not acted on
                if ev.utterance is not None:
                    self._timing("voice", "vad", t0)
                    self.bus.publish("utterances", ev.utterance)
        for ev in seg.flush(elapsed, "end-of-input"):
            if ev.utterance is not None:
                self.bus.publish("utterances", ev.utterance)
        self.bus.unexpect("audio")
        self._input_ended("audio")

    async def _button(self) -> None:
        """Push-to-talk: a press opens the microphone to the VAD, the release ends the utterance."""
        async for event in _pump(self.sources.button.events(), "button"):
            if self.gate.button(event):
                self._released = True

    async def _asr(self) -> None:
        await self._consume("utterances", lambda env: self._hear(env.msg))

    async def _hear(self, utt: Utterance) -> None:
        """ASR (worker thread) -> transcript -> ask back, or intent -> act; a mid-sentence pause holds."""
        from vehicle_assist.speech import endpoint, lane

        sp = self.config.speech
        t0 = self.clock.perf_ns()
        utt = self.joiner.take(utt)  # a fragment the driver went on from comes in front
        heard = await self._in_pool("asr", lane.hear, utt, self.parts.asr, self.gate,
                                    sp.asr.min_confidence, sp.asr.ask_back, sp.mute_default_minutes)
        self._timing("voice", "asr", t0)
        self.bus.publish("transcripts", heard.transcript)
        go_on = heard.decision.accept and self.gate.may_go_on()
        if self.joiner.end(utt, heard.transcript.text if go_on else "") and await endpoint.wait_for_rest(
                self.joiner, lambda: max(self._stream_s, self.clock.now_ns() / 1e9), self.clock.sleep):
            return  # a mid-sentence pause: heard again with the rest of the sentence
        if heard.ask_back:
            await self._say(heard.ask_back, "ask-back")
        if heard.intent is not None:
            self.bus.publish("intents", heard.intent)
            await self._act(heard.intent)

    async def _act(self, intent: Intent) -> None:
        """A command acts at once; a question starts an advisory (replacing one still running)."""
        from vehicle_assist.speech import controls

        action = controls.apply(intent, self.controls, self.clock.now_ns())
        self.controls = action.controls
        self.arbiter.set_gain(self.controls.gain)
        if action.effect == "stop_speaking":
            self.arbiter.preempt(Tier.ALERT)
        elif action.effect == "repeat" and self.last_advisory is not None:
            await self._say(self.last_advisory.text, "repeat")
        elif action.effect == "what_was_that" and self.last_alert_text:
            await self._say(self.last_alert_text, "what-was-that")
        elif action.effect == "ask_advisory":
            self._start_advice(intent)
        if action.reply:
            await self._say(action.reply, f"command:{intent.name}")

    def _offer_advice(self, found: list[Hazard], t_ns: int) -> None:
        """A hazard that persisted may start an advisory on its rule, unasked; never over a running one."""
        hazard, self._proactive = due(found, self._proactive, t_ns, self.config.runtime.proactive)
        if hazard is None or self.advisor is None or (self._advice is not None and not self._advice.done()):
            return
        ego = self.bus.latest("vehicle")
        self._advice = asyncio.ensure_future(self._advise(None, scene_of([hazard], ego.msg if ego else None),
                                                          self.clock.now_ns()))

    def _start_advice(self, intent: Intent) -> None:
        """A new question replaces an advisory still running (its speech is stopped)."""
        if self._advice is not None and not self._advice.done():
            self._advice.cancel()
            self.arbiter.preempt(Tier.ALERT)
        if self._route_question(intent):
            return
        ego = self.bus.latest("vehicle")
        self._advice = asyncio.ensure_future(self._advise(intent.text, scene_of(self._hazards, ego.msg if ego else None),
                                                          intent.t_ns))

    async def _advise(self, question: str | None, scene: Scene | None, t_ns: int) -> None:
        """Answer a question (or, with ``question`` None, advise on the scene's hazard) and log it."""
        try:
            if self.advisor is None:
                advisory = Advisory(t_ns, "Sorry, I can't answer questions right now.", "refusal", refused=True,
                                    question=question)
                await self._say(advisory.text, "advisory")
            else:
                advisory = await self.advisor.execute(question, scene, t_ns)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the voice lane degrades, never the safety lane
            self.bus.publish("errors", ErrorEvent(self.clock.now_ns(), "advisory-failed", f"{type(err).__name__}: {err}",
                                                  stage="advisory"))
            return
        self.last_advisory = advisory
        self.bus.publish("advisories", advisory)

    # --- route lane (vehicle_assist.route.lane; only with route.map) ------------------------------

    async def _route(self) -> None:
        await self.route_lane.serve(self.bus, self.clock, lambda: self._advice is not None and not self._advice.done(),
                                    self._on_route_step)

    def _on_route_step(self, step: Any) -> None:
        """Speeding hazard -> alert selection; a route advisory due -> spoken (unless an advisory runs)."""
        if step.hazards or step.hazards_changed:
            self._route_hazards = step.hazards
            self._decide([] if "frames" in self.bus.stale_topics() else list(self._hazards), self.clock.now_ns(), None)
        if step.advice is not None and (self._advice is None or self._advice.done()):
            advisory = step.advice.advisory(self.clock.now_ns(), ttl_s=self.config.route.advice_ttl_s)
            self._advice = asyncio.ensure_future(self._route_say(advisory))

    async def _route_say(self, advisory: Advisory) -> None:
        """Speak a route advisory once the driver is not busy (workload hold); dropped when it goes stale."""
        from vehicle_assist.advisory import timing

        def situation() -> tuple[Any, Any]:
            ego = self.bus.latest("vehicle")
            return self._hazards, ego.msg if ego else None

        decision = await timing.hold(advisory, self.clock, situation, self.config.advisory.workload)
        if decision.action == timing.DROP:
            return
        # start/end around the rendering (wall time): lockstep replay waits for the end before the
        # drive moves on, so what the lane decides next never depends on how fast the machine renders.
        self.bus.publish("advisory_events", AdvisoryEvent("start", ROUTE_ADVICE, time.perf_counter_ns()))
        try:
            await self._say(advisory.text, "route")
            self.last_advisory = advisory
            self.bus.publish("advisories", advisory)
        finally:
            self.bus.publish("advisory_events", AdvisoryEvent("end", ROUTE_ADVICE, time.perf_counter_ns()))

    def _route_question(self, intent: Intent) -> bool:
        """A question that needs the position is answered from the route context (True when it was)."""
        if self.route_lane is None:
            return False
        from vehicle_assist.route import advice as adv

        kind = adv.question_kind(intent.text, self.route_lane.table)
        if kind is None:
            return False
        advisory = adv.answer(kind, intent.text, self.route_lane.context, intent.t_ns)
        self._advice = asyncio.ensure_future(self._route_answer(advisory))
        return True

    async def _route_answer(self, advisory: Advisory) -> None:
        await self._say(advisory.text, "route")
        self.last_advisory = advisory
        self.bus.publish("advisories", advisory)

    async def _say(self, text: str, source: str) -> None:
        """Render (TTS thread) and queue advisory-tier speech sentence by sentence."""
        from vehicle_assist.speech.speak import speak_text

        await self._in_pool("tts", speak_text, text, self.arbiter, self.parts.renderer, Tier.ADVISORY,
                            self.clock.now_ns(), source, self.controls.rate)

    def add_input(self, name: str) -> None:
        """An input the run waits for beyond frames and audio (replay's drive clock of a telemetry-only drive)."""
        self._inputs.add(name)

    def input_ended(self, name: str) -> None:
        self._input_ended(name)

    def _input_ended(self, name: str) -> None:
        """A file input ran out; when all have, the run ends once the lanes are idle."""
        self._inputs.discard(name)
        if not self._inputs:
            self._drain = asyncio.ensure_future(self._drain_then_stop())

    async def _drain_then_stop(self) -> None:
        """Wait (bounded) until no frame, utterance, advisory or speech is pending, then end the run."""
        limit_s = self.config.advisory.run_timeout_s + self.config.runtime.shutdown_timeout_s
        t0 = self.clock.perf_ns()
        while (self.clock.perf_ns() - t0) / 1e9 < limit_s:
            advising = self._advice is not None and not self._advice.done()
            queued = any(not sub.empty() for topic in ("frames", "utterances") for sub in self.bus.subscriptions(topic))
            if not (advising or queued or self._working or self.arbiter.is_speaking()):
                break
            await asyncio.sleep(0.05)
        self.stop()


_END = object()


async def _pump(iterable: Iterable[Any], name: str) -> AsyncIterator[Any]:
    """Iterate a blocking source in a daemon thread (a source stuck in a read never holds up the
    process's exit), handing items over through a 2-slot queue; the source's errors are re-raised."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue(maxsize=2)
    stop = threading.Event()

    def hand(item: tuple[Any, BaseException | None]) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def work() -> None:
        outcome: tuple[Any, BaseException | None] = (_END, None)
        try:
            for item in iterable:
                if stop.is_set():
                    return
                hand((item, None))
        except BaseException as err:  # handed to the stage, which crashes and is restarted
            outcome = (_END, err)
        if not stop.is_set():
            try:
                hand(outcome)
            except RuntimeError:  # the loop is gone
                pass

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        while True:
            item, err = await queue.get()
            if item is _END:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()


def build(config: AppConfig, sources: Sources, clock: Clock, sinks: Sinks, parts: Parts) -> Runtime:
    """The runtime for these inputs, outputs and clock; the same call for live and replay."""
    return Runtime(config, sources, clock, sinks, parts)


def load_parts(config: AppConfig, voice: bool = True) -> Parts:
    """Load every model once, with the thread counts of ``runtime.threads`` (malloc arenas capped first)."""
    from vehicle_assist import memory, models
    from vehicle_assist.perception import hazards
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.tracker import Tracker
    from vehicle_assist.safety import alerts
    from vehicle_assist.speech.tts import load_renderer

    memory.cap_malloc_arenas(config.runtime.malloc_arenas)
    th = config.runtime.threads
    perception = config.perception
    table = hazards.load_table()
    calib = perception.calibration or table.camera
    paths_: dict[str, Path] = {}
    for role in ("detector", "asr", "embedder", "slm"):
        try:
            paths_[role] = models.resolve(role).path
        except Exception:  # a missing optional model shows as absent in the header
            pass
    parts = Parts(detector=Detector(settings=perception, calib=calib, threads=th.detector), tracker=Tracker(perception.tracker),
                  calib=calib, hazard_table=table, alert_table=alerts.load_table(), renderer=load_renderer(config.speech.tts.engine),
                  model_paths=paths_)
    if voice:
        from vehicle_assist.speech import asr

        opts = asr.AsrOptions.from_settings(config.speech.asr)
        parts.asr = asr.load_backend(config.speech.asr.backend, opts, threads=th.asr)
        parts.make_advisor = _advisor_factory(config, parts.renderer)
    return parts


def _advisor_factory(config: AppConfig, renderer: Any) -> Callable[[Any, Callable[[AdvisoryEvent], None]], Advisor]:
    """Build the advisory lane's retriever and (if routed to) SLM once; bind to the arbiter later."""
    from vehicle_assist.advisory import lane
    from vehicle_assist.advisory.run import ArbiterSpeaker

    res = lane.resources(config)  # the same lane as `ask` and the advisory bench
    for why in res.notes:  # the SLM would not load: the extractive route answers
        log.warning("advisory lane: %s", why)

    def make(arbiter: Any, on_event: Callable[[AdvisoryEvent], None]) -> Advisor:
        return res.run(speaker=ArbiterSpeaker(arbiter, renderer), on_event=on_event, cancel_event=arbiter.cancel_event)

    return make


__all__ = ["Runtime", "Parts", "Sources", "Sinks", "build", "load_parts", "system_hazards", "scene_of",
           "STALE_HAZARDS"]
