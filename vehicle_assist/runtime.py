"""The onboard loop: the safety lane and the voice lane as asyncio tasks over one bus.

``build(config, sources, clock, sinks, parts) -> Runtime``; ``await runtime.run(duration_s)``.
Live and replay differ only in the sources and the clock handed in: nothing here asks which.

- Safety lane: frames (latest value) -> detector (worker thread) -> tracker -> ``hazards.assess``
  -> ``AlertManager`` -> ``AlertVoice`` -> audio arbiter. No language model on this path.
- Voice lane: audio -> activation gate -> VAD -> utterances (FIFO) -> ASR (worker thread) ->
  intent -> a command acts at once; a question starts an ``AdvisoryRun`` (its SLM runs off the
  loop; the arbiter's cancel event stops it when an alert pre-empts).
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
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Protocol

from vehicle_assist import aio, triplog
from vehicle_assist.advisory.proactive import ProactiveState, due
from vehicle_assist.advisory.timing import Situation
from vehicle_assist.bus import Bus
from vehicle_assist.clock import Clock
from vehicle_assist.config import AppConfig
from vehicle_assist.messages import (Advisory, AdvisoryEvent, AudioChunk, CameraFrame, ErrorEvent, Hazard, Intent,
                                     Scene, SpeechEvent, SpeechRequest, Tier, Utterance)
from vehicle_assist.perception.hazards import HazardTable
from vehicle_assist.perception.hazards import load_table as load_hazard_table
from vehicle_assist.perception.pipeline import FrameDetector, FrameTracker
from vehicle_assist.safety import lane as safety_lane
from vehicle_assist.safety.alerts import AlertSpec
from vehicle_assist.safety.voice import AlertVoice
from vehicle_assist.speech.speak import Speaker
from vehicle_assist.topics import TOPICS
from vehicle_assist.vehicle import UnknownSource, VehicleSource
from vehicle_assist.watchdog import Backoff, Watchdog

log = logging.getLogger(__name__)

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


class AdvisorFactory(Protocol):
    """What the runtime needs of ``advisory.lane.AdvisoryParts``: the loaded lane, bound per run."""

    def bind(self, speaker: Speaker | None = None, on_event: Callable[[AdvisoryEvent], None] | None = None,
             cancel_event: threading.Event | None = None, clock: Clock | None = None,
             situation: Situation | None = None) -> Advisor:
        """An advisor speaking through ``speaker`` (waiting while the driver is busy, per ``situation``)."""


@dataclass
class Parts:
    """The loaded components (models loaded once, by :func:`load_parts` or by a test)."""

    detector: FrameDetector
    tracker: FrameTracker
    hazard_table: HazardTable
    alert_table: dict[str, AlertSpec]
    renderer: Any
    """``render(text, rate=None) -> Rendered`` (pcm, sample_rate)."""
    asr: Any = None
    """``transcribe(Utterance) -> Transcript``; None: no voice lane."""
    advisory: AdvisorFactory | None = None
    """The advisory lane (``advisory.lane.load``); None: questions are answered with an apology."""
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
            "vehicle": sources.vehicle.name, "missing": sources.missing})
        self.trip = triplog.TripLog(self.trip_path, header, fsync=rt.fsync)
        self.bus.add_sink(self.trip.append)
        self.arbiter = AudioArbiter(sinks.speaker)
        self.arbiter.add_listener(self._on_speech)
        self.safety = safety_lane.assemble(config.perception, parts.detector, parts.tracker, parts.hazard_table,
                                           parts.alert_table, AlertVoice(parts.alert_table, parts.renderer, self.arbiter))
        self.safety.bind(self.bus, mute=lambda: self.controls.mute_until_ns, after_frame=self._offer_advice)
        self.controls = VoiceControls()
        self.gate = Gate.from_settings(config.speech.activation, self.arbiter.is_speaking)
        if sources.audio_is_held:
            self.gate.pressed = True  # a recorded question is one long press of push-to-talk
        w = rt.watchdog
        self.watchdog = Watchdog(clock, lambda e: self.bus.publish("errors", e),
                                 Backoff(w.initial_backoff_s, w.backoff_factor, w.max_backoff_s, w.reset_after_s),
                                 w.max_restarts)
        self.speaker = Speaker(self.arbiter, parts.renderer, self.controls.rate)
        self.advisor = parts.advisory.bind(self.speaker, lambda e: self.bus.publish("advisory_events", e),
                                           self.arbiter.cancel_event, clock, self._situation) if parts.advisory else None
        self._pools = {name: ThreadPoolExecutor(1, thread_name_prefix=name) for name in ("asr", "tts")}
        self._stop = asyncio.Event()
        self._advice: asyncio.Task[None] | None = None
        self.last_advisory: Advisory | None = None
        self._inputs: set[str] = set()
        self._working = 0
        self._drain: asyncio.Future[None] | None = None
        self._released = False  # the push-to-talk button went up: end the open utterance
        self._proactive = ProactiveState()

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
        wd.start("health", self.safety.health)
        if src.vehicle.name != "none":  # nothing configured: no stream of all-unknown states
            wd.start("vehicle", self._vehicle)
        if src.vehicle.status().available:
            bus.expect("vehicle")
        if src.frames is not None:
            bus.expect("frames", "detections")
            self._inputs.add("frames")
            wd.start("frames-in", self._frames_in)
            wd.start("perception", self.safety.serve)
        if src.audio is not None and self.parts.asr is not None:
            bus.expect("audio")
            self._inputs.add("audio")
            wd.start("audio-in", self._audio_in)
            wd.start("asr", self._asr)
            if src.button is not None and self.gate.mode == "push_to_talk":
                wd.start("button", self._button)
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
        self.safety.close()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        stats = self.bus.stats()
        self.trip.close()
        return {"trip_log": str(self.trip_path), "records": self.trip.count,
                "published": {t: s["published"] for t, s in stats.items() if s["published"]},
                "dropped": {t: s["dropped"] for t, s in stats.items() if s["dropped"]},
                "restarts": {k: v for k, v in self.watchdog.restarts.items() if v},
                "sink_errors": self.bus.sink_errors, "missing": self.sources.missing}

    # --- helpers --------------------------------------------------------------------------------

    def _timing(self, lane: str, stage: str, t0_perf: int, item: int | None = None) -> None:
        self.bus.timing(lane, stage, (self.clock.perf_ns() - t0_perf) / 1e6, item)

    async def _in_pool(self, pool: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pools[pool], fn, *args)

    def _situation(self) -> tuple[tuple[Hazard, ...], Any]:
        """The current hazards and ego state, for the advisory lane's workload hold."""
        ego = self.bus.latest("vehicle")
        return self.safety.hazards, ego.msg if ego else None

    def _on_speech(self, kind: str, req: SpeechRequest, t_perf_ns: int) -> None:
        """Arbiter listener (its thread): log what was said; frame -> alert audio latency on start."""
        self.bus.publish("speech", SpeechEvent(self.clock.now_ns(), kind, req.text, req.tier, req.source, t_perf_ns))
        if req.origin_perf_ns is not None and kind == "start":
            self.bus.timing("safety", "frame_to_audio", (t_perf_ns - req.origin_perf_ns) / 1e6)

    async def _frames_in(self) -> None:
        await self.safety.frames_in(self.sources.frames)
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
        async for chunk in aio.pump(self.sources.audio, "audio-in"):
            self.bus.publish("audio", chunk)
            t = origin + int(elapsed * 1e9)
            t0 = self.clock.perf_ns()
            events = seg.process(chunk.pcm, elapsed) if gate.listening(t) else []
            if self._released:  # push-to-talk let go: the utterance ends here, trailing silence or not
                self._released = False
                events += seg.flush(elapsed, "button-released")
            elapsed += chunk.duration_s
            for ev in events:
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
        async for event in aio.pump(self.sources.button.events(), "button"):
            if self.gate.button(event):
                self._released = True

    async def _asr(self) -> None:
        await self._consume("utterances", lambda env: self._hear(env.msg))

    async def _hear(self, utt: Utterance) -> None:
        """ASR (worker thread) -> transcript -> ask back, or intent -> act."""
        from vehicle_assist.speech import lane

        sp = self.config.speech
        t0 = self.clock.perf_ns()
        heard = await self._in_pool("asr", lane.hear, utt, self.parts.asr, self.gate,
                                    sp.asr.min_confidence, sp.asr.ask_back, sp.mute_default_minutes)
        self._timing("voice", "asr", t0)
        self.bus.publish("transcripts", heard.transcript)
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
        self.speaker.rate = self.controls.rate
        if action.effect == "stop_speaking":
            self.arbiter.preempt(Tier.ALERT)
        elif action.effect == "repeat" and self.last_advisory is not None:
            await self._say(self.last_advisory.text, "repeat")
        elif action.effect == "what_was_that" and self.safety.last_alert_text:
            await self._say(self.safety.last_alert_text, "what-was-that")
        elif action.effect == "ask_advisory":
            self._start_advice(intent)
        if action.reply:
            await self._say(action.reply, f"command:{intent.name}")

    def _offer_advice(self, found: tuple[Hazard, ...], t_ns: int) -> None:
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
        ego = self.bus.latest("vehicle")
        self._advice = asyncio.ensure_future(self._advise(intent.text, scene_of(self.safety.hazards, ego.msg if ego else None),
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

    async def _say(self, text: str, source: str) -> None:
        """Render (TTS thread) and queue advisory-tier speech sentence by sentence."""
        await self._in_pool("tts", self.speaker.say, text, source, Tier.ADVISORY, self.clock.now_ns())

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
            queued = any(not sub.empty() for sub in self.bus.subscriptions("utterances"))
            if not (advising or queued or self._working or self.safety.busy() or self.arbiter.is_speaking()):
                break
            await asyncio.sleep(0.05)
        self.stop()


def build(config: AppConfig, sources: Sources, clock: Clock, sinks: Sinks, parts: Parts) -> Runtime:
    """The runtime for these inputs, outputs and clock; the same call for live and replay."""
    return Runtime(config, sources, clock, sinks, parts)


def load_parts(config: AppConfig, voice: bool = True) -> Parts:
    """Load every model once, with the thread counts of ``runtime.threads`` (malloc arenas capped first)."""
    from vehicle_assist import memory, models
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.tracker import Tracker
    from vehicle_assist.safety import alerts
    from vehicle_assist.speech.tts import TTSRenderer

    memory.cap_malloc_arenas(config.runtime.malloc_arenas)
    th = config.runtime.threads
    perception = config.perception
    table = load_hazard_table()
    calib = perception.calibration or table.camera
    paths_: dict[str, Path] = {}
    for role in ("detector", "asr", "embedder", "slm"):
        try:
            paths_[role] = models.resolve(role).path
        except Exception:  # a missing optional model shows as absent in the header
            pass
    parts = Parts(detector=Detector(settings=perception, calib=calib, threads=th.detector), tracker=Tracker(perception.tracker),
                  hazard_table=table, alert_table=alerts.load_table(), renderer=TTSRenderer(),
                  model_paths=paths_)
    if voice:
        from vehicle_assist.speech import asr

        opts = asr.AsrOptions.from_settings(config.speech.asr)
        parts.asr = asr.load_backend(config.speech.asr.backend, opts, threads=th.asr)
        from vehicle_assist.advisory import lane as advisory_lane

        parts.advisory = advisory_lane.load(config)
    return parts


__all__ = ["Runtime", "Parts", "Sources", "Sinks", "build", "load_parts", "scene_of"]
