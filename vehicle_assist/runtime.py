"""The onboard loop: wiring and supervision of the lanes over one bus.

``build(config, sources, clock, sinks, parts) -> Runtime``; ``await runtime.run(duration_s)``; live and
replay differ only in the sources and the clock handed in. The lanes do the work: ``SafetyLane``
(frames -> alerts, no language model), ``VoiceLane`` (audio -> intents), ``AdvisoryDispatcher`` (one
answer at a time), with ``route.map`` the ``RouteLane``. The runtime owns the bus, the trip log
(closed, with fsync, last), the audio arbiter and the one speaker; runs every stage under the
watchdog (crash -> ``errors`` -> restart); ends once every file input has ended and the lanes are idle.
"""

from __future__ import annotations

import asyncio
import logging
import types
from typing import Any, Awaitable, Callable, Protocol

from vehicle_assist import aio, private, triplog, vehicle
from vehicle_assist.advisory.dispatch import AdvisoryDispatcher
from vehicle_assist.audio_out import AudioArbiter
from vehicle_assist.bus import Bus
from vehicle_assist.clock import Clock
from vehicle_assist.config import AppConfig
from vehicle_assist.messages import ErrorEvent, Intent, SpeechEvent, SpeechRequest, Tier
from vehicle_assist.parts import Parts, Sinks, Sources, load_parts
from vehicle_assist.route.lane import LaneStep, open_lane
from vehicle_assist.safety import lane as safety_lane
from vehicle_assist.safety.voice import AlertVoice
from vehicle_assist.speech.lane import VoiceLane
from vehicle_assist.speech.speak import Speaker
from vehicle_assist.watchdog import Watchdog

log = logging.getLogger(__name__)


class Lane(Protocol):
    """A lane as the runtime supervises it: work pending, resources to release."""

    def busy(self) -> bool: ...
    def close(self) -> None: ...


class Runtime:
    """One run: the bus, the lanes as supervised tasks, the arbiter, the speaker and the trip log."""

    def __init__(self, config: AppConfig, sources: Sources, clock: Clock, sinks: Sinks, parts: Parts) -> None:
        rt = config.runtime
        self.config, self.sources, self.clock = config, sources, clock
        self.bus = Bus(clock, safety_lane.topics(config.perception), fifo_maxlen=rt.queue_bound)
        self.trip_path = sinks.trip_log or triplog.new_path(rt.trip_log_dir)
        self.trip = triplog.TripLog(self.trip_path, triplog.provenance(config, parts.model_paths, inputs={
            "camera": sources.frames is not None, "mic": sources.audio is not None,
            "vehicle": sources.vehicle.name, "missing": sources.missing, "modes": sources.modes,
            "route": {"map": config.route.map, "log_position": config.route.log_position} if config.route.map else None},
            t0_ns=clock.now_ns()), fsync=rt.fsync)
        self.bus.add_sink(private.position_filter(self.trip.append, config.route.log_position))
        self.watchdog = Watchdog.from_settings(clock, lambda e: self.bus.publish("errors", e), rt.watchdog)
        self.arbiter = AudioArbiter(sinks.speaker)
        self.arbiter.add_listener(self._on_speech)
        self.speaker, self._tts = Speaker(self.arbiter, parts.renderer,
                                                 first_chunk_words=config.speech.tts.first_chunk_words,
                                          nice=config.speech.tts.nice), aio.Worker("tts")
        self.safety = safety_lane.assemble(config.perception, parts.detector, parts.tracker, parts.hazard_table,
                                           parts.alert_table, AlertVoice(parts.alert_table, parts.renderer, self.arbiter))
        self.route, self._route_error = open_lane(config.route)
        advisor = parts.advisory.bind(self.speaker, lambda e: self.bus.publish("advisory_events", e), self.arbiter.cancel_event,
                                      clock, lambda: (self.safety.hazards, self.advice.ego())) if parts.advisory else None
        self.advice = AdvisoryDispatcher(advisor, self.bus, self.say, lambda: self.arbiter.preempt(Tier.ALERT),
                                         lambda: self.safety.hazards, rt.proactive, config.advisory.workload,
                                         self.route.answer if self.route else lambda intent: None)
        self.voice = VoiceLane(config.speech, parts.asr, self.arbiter, self.speaker, self.say, self.advice,
                               lambda: self.safety.last_alert_text, sources.audio_is_held)
        self.safety.bind(self.bus, mute=lambda: self.voice.controls.mute_until_ns, after_frame=self.advice.offer)
        self.voice.bind(self.bus)
        self.lanes: tuple[Lane, ...] = (self.safety, self.voice, self.advice)
        self._stop = asyncio.Event()
        self.inputs = aio.Inputs(lambda: asyncio.ensure_future(self._drain_then_stop()))
        """File inputs the run waits for: when all have ended, the run ends once the lanes are idle."""

    async def run(self, duration_s: float | None = None) -> dict[str, Any]:
        """Run until ``duration_s`` of clock time, SIGINT/SIGTERM, or every input has ended."""
        unhandle = aio.on_signals(self.stop)
        self.arbiter.start()
        wd, bus, src = self.watchdog, self.bus, self.sources
        wd.start("staleness", lambda: bus.watch(self.config.runtime.stale_check_s))
        wd.start("health", self.safety.health)
        if src.vehicle.name != "none":  # nothing configured: no stream of all-unknown states
            wd.start("vehicle", lambda: vehicle.publish_states(bus, src.vehicle, self.config.runtime.vehicle_rate_hz))
        if src.vehicle.status().available:
            bus.expect("vehicle")
        if src.frames is not None or "camera" in src.missing:  # a camera not answering is lost from the start
            lost_ns = int(self.config.perception.camera_lost_after_s * 1e9) if "camera" in src.missing else 0
            bus.expect("frames", "detections", since_ns=self.clock.now_ns() - lost_ns)
        if src.frames is not None:
            self._input("frames-in", "frames", lambda: self.safety.frames_in(src.frames))
            wd.start("perception", self.safety.serve)
        if src.audio is not None and self.voice.asr is not None:
            bus.expect("audio")
            self._input("audio-in", "audio", lambda: self.voice.audio_in(src.audio))
            wd.start("asr", self.voice.listen)
            if src.button is not None and self.voice.gate.mode == "push_to_talk":
                wd.start("button", lambda: self.voice.button(src.button.events()))
        if self.route is not None and src.vehicle.name != "none":
            wd.start("route", lambda: self.route.serve(bus, self.clock, self.advice.busy, self._on_route_step))
        elif self._route_error:  # no map: the run goes on without route context
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
            unhandle()
            summary = await self.shutdown()
        return summary

    def ask(self, text: str) -> None:
        """Start an advisory for a typed question, as if the driver had asked it."""
        intent = Intent(self.clock.now_ns(), "question", text)
        self.bus.publish("intents", intent)
        self.advice.ask(intent)

    def stop(self) -> None:
        """Ask the run to end (signal handlers call this); shutdown follows on the loop."""
        self._stop.set()

    async def say(self, text: str, source: str) -> None:
        """Speak ``text`` on the advisory tier (rendered on the TTS thread, sentence by sentence)."""
        await self._tts.call(self.speaker.say, text, source, Tier.ADVISORY, self.clock.now_ns())

    async def shutdown(self) -> dict[str, Any]:
        """Stop inputs, let a running advisory finish (bounded), then close everything; the trip log last."""
        timeout = self.config.runtime.shutdown_timeout_s
        self.watchdog.cancel("frames-in", "audio-in", "vehicle", "button")
        for s in (self.sources.frames, self.sources.audio, self.sources.button):
            close = getattr(s, "close", None)
            if callable(close) and not isinstance(s, types.GeneratorType):  # a generator ends with its thread
                try:
                    close()
                except Exception:
                    log.exception("closing a source failed")
        await self.advice.finish(timeout)
        await self.watchdog.stop(timeout)
        self.bus.close()
        await asyncio.get_running_loop().run_in_executor(None, self.arbiter.close)
        self.sources.vehicle.close()
        for lane in self.lanes:
            lane.close()
        self._tts.close()
        stats = self.bus.stats()
        self.trip.close()
        return {"trip_log": str(self.trip_path), "records": self.trip.count,
                "published": {t: s["published"] for t, s in stats.items() if s["published"]},
                "dropped": {t: s["dropped"] for t, s in stats.items() if s["dropped"]},
                "restarts": {k: v for k, v in self.watchdog.restarts.items() if v},
                "sink_errors": self.bus.sink_errors, "missing": self.sources.missing, "modes": self.sources.modes}

    def _on_speech(self, kind: str, req: SpeechRequest, t_perf_ns: int) -> None:
        """Arbiter listener (its thread): log what was said; frame -> alert audio latency on start."""
        self.bus.publish("speech", SpeechEvent(self.clock.now_ns(), kind, req.text, req.tier, req.source, t_perf_ns))
        if req.origin_perf_ns is not None and kind == "start":
            self.bus.timing("safety", "frame_to_audio", (t_perf_ns - req.origin_perf_ns) / 1e6)

    def _on_route_step(self, step: LaneStep) -> None:
        """The speeding hazard -> alert selection; a route advisory due -> said (workload hold, not over another)."""
        if step.hazards or step.hazards_changed:
            self.safety.raise_hazards(step.hazards)
        if step.advice is not None:
            self.advice.tell(step.advice.advisory(self.clock.now_ns(), ttl_s=self.config.route.advice_ttl_s), "route")

    def _input(self, stage: str, name: str, pump: Callable[[], Awaitable[None]]) -> None:
        """Supervise an input stage, counted among the inputs the run waits for."""
        self.inputs.add(name)

        async def run() -> None:
            await pump()
            self.inputs.ended(name)

        self.watchdog.start(stage, run)

    async def _drain_then_stop(self) -> None:
        """Wait (bounded) until no lane has work pending and nothing is being said, then end the run."""
        limit_s = self.config.advisory.run_timeout_s + self.config.runtime.shutdown_timeout_s
        t0 = self.clock.perf_ns()
        while (self.clock.perf_ns() - t0) / 1e9 < limit_s:
            if not (any(lane.busy() for lane in self.lanes) or self.arbiter.is_speaking()):
                break
            await asyncio.sleep(0.05)
        self.stop()


def build(config: AppConfig, sources: Sources, clock: Clock, sinks: Sinks, parts: Parts) -> Runtime:
    """The runtime for these inputs, outputs and clock; the same call for live and replay."""
    return Runtime(config, sources, clock, sinks, parts)


__all__ = ["Runtime", "Parts", "Sources", "Sinks", "build", "load_parts"]
