"""The voice lane: microphone -> activation gate -> VAD -> utterances -> ASR -> intent -> act.

:func:`hear` is one utterance (ASR -> activation decision -> ask back, or intent), used by
``vehicle-assist listen`` and by :class:`VoiceLane`, the lane as the car runs it on the bus: audio
blocks through the gate and the VAD, each utterance heard on a worker thread, a command acted on at
once (mute, volume, speech rate, repeat, stop), a question handed to the advisory lane. Every
stage is timed; results are our own types only.

Audio with no words in it (silence, road noise, text the noise gate dropped, only a noise phrase
such as "you") gives neither an intent nor an ask-back: the assistant stays silent. A question
that pauses mid-sentence is held (:mod:`.endpoint`) and heard again with the rest; so is one the car
starts speaking into (an alert): the muted playback neither ends it nor enters it, and the driver's
words after it continue it (``Utterance.held_s`` in the trip log says how long it was held).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Iterator, Protocol

import numpy as np

from vehicle_assist import aio, clock
from vehicle_assist.bus import Bus
from vehicle_assist.config import SpeechSettings
from vehicle_assist.messages import Advisory, AudioChunk, Envelope, Intent, Tier, Transcript, Utterance
from vehicle_assist.speech import controls, endpoint, intents, rescore, vad
from vehicle_assist.speech.activation import LISTENING, PLAYBACK, ButtonEvent, Decision, Gate
from vehicle_assist.speech.asr import ASR, needs_ask_back
from vehicle_assist.speech.controls import Effect, VoiceControls
from vehicle_assist.speech.rescore import RescoreOptions


@dataclass(frozen=True)
class Heard:
    """What the lane made of one utterance."""

    transcript: Transcript
    decision: Decision
    intent: Intent | None  # None when not acted on (no wake phrase) or asked back
    ask_back: str | None  # the phrase to say when the transcript was too unsure
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage


def decide(gate: Gate, utt: Utterance, transcript: Transcript, asr: ASR) -> Decision:
    """Act on this transcript? The gate's decision on the text; in hands-free mode, a transcript whose
    start is near the wake phrase but not accepted as written is scored against the phrase by sound
    (when the backend can: ``score_prefix``) and accepted if Whisper finds the phrase nearly as likely."""
    decision = gate.decide(transcript.text)
    if not decision.accept and hasattr(asr, "score_prefix") and gate.wants_sound_check(transcript.text):
        decision = gate.decide_by_sound(transcript.text, asr.score_prefix(utt, gate.prefix, transcript.text))
    return decision


def hear(utt: Utterance, asr: ASR, gate: Gate, min_confidence: float = 0.45,
         ask_back_text: str = "Sorry, say that again?", default_minutes: int = 10,
         transcript: Transcript | None = None, rescore_opts: RescoreOptions = RescoreOptions()) -> Heard:
    """Transcribe one utterance (unless its ``transcript`` is given: transcribed ahead) and decide what to do with it;
    an uncertain command reading is checked by sound (:mod:`.rescore`, when ``rescore_opts.enabled``): a command
    reading the audio confirms is acted on even below ``min_confidence`` (else that transcript is asked back)."""
    t0 = clock.perf_ns()
    transcript = transcript if transcript is not None else asr.transcribe(utt)
    t1 = clock.perf_ns()
    decision = decide(gate, utt, transcript, asr)
    intent: Intent | None = None
    ask: str | None = None
    timings = {"asr_ms": (t1 - t0) / 1e6}
    if decision.accept and transcript.text.strip():  # no words (noise, silence, gated): no intent, no ask-back
        r = rescore.resolve(utt, transcript, decision.text, asr, rescore_opts, default_minutes=default_minutes,
                            head=gate.prefix if decision.reason == "wake-by-sound" else None)
        if r.scores:
            timings["rescore_ms"] = r.ms
        if r.ask_back or (needs_ask_back(transcript, min_confidence) and r.chosen is None):
            ask = ask_back_text  # too unsure, unless the audio confirmed a command reading of it
        else:
            intent = r.intent
            if intent.name == "empty":  # only a noise phrase ("you", "thank you"): nothing to act on or ask
                intent = None
    t2 = clock.perf_ns()
    return Heard(transcript, decision, intent, ask, {**timings, "decide_ms": (t2 - t1) / 1e6})


class Output(Protocol):
    """What the voice lane controls of the audio arbiter."""

    cancel_event: threading.Event

    def is_speaking(self) -> bool: ...
    def preempt(self, below: Tier = Tier.ALERT) -> None: ...
    def set_gain(self, gain: float) -> None: ...


class Advice(Protocol):
    """What the voice lane needs of the advisory dispatcher."""

    last: Advisory | None

    def ask(self, intent: Intent) -> None: ...


class RateControl(Protocol):
    rate: int | None


class VoiceLane(aio.BusLane):
    """The voice lane on the runtime's bus: ``audio`` -> ``utterances`` -> ``transcripts`` -> ``intents``."""

    def __init__(self, settings: SpeechSettings, asr: ASR | None, output: Output, speaker: RateControl,
                 say: Callable[[str, str], Awaitable[None]], advice: Advice,
                 last_alert: Callable[[], str | None], held: bool = False) -> None:
        self.settings, self.asr, self.output, self.speaker = settings, asr, output, speaker
        self.say, self.advice, self.last_alert = say, advice, last_alert
        self.controls = VoiceControls()
        """What the driver's commands set (mute, volume, speech rate)."""
        speaker.rate = self.controls.rate
        self.gate = Gate.from_settings(settings.activation, output.is_speaking)
        self.gate.pressed = held  # a recorded question is one long press of push-to-talk
        self.rescore = RescoreOptions.from_settings(settings.asr.rescore)
        ep = endpoint.EndpointOptions.from_settings(settings.endpoint)
        self.joiner = endpoint.Joiner(ep, onset_lag_s=2 * settings.vad.start_s)
        self.shorts = endpoint.Shorts(ep)  # spans too short for the VAD, joined to the utterance next to them
        self._acted: tuple[Intent, str, float] | None = None  # last command acted on at once: (intent, words, end s)
        self._stream_s = 0.0  # latest audio time the VAD has seen (seconds on the clock): ends a hold
        self._released = False  # the push-to-talk button went up: end the open utterance
        self._ahead: tuple[Utterance, asyncio.Future] | None = None  # an utterance transcribed as its silence ran

    def bind(self, bus: Bus) -> None:
        """Run on ``bus``: utterances heard on the ASR's worker thread."""
        self.attach(bus, "utterances", "asr")

    async def audio_in(self, chunks: Iterable[AudioChunk]) -> None:
        """Microphone blocks through the gate and the VAD; returns when the input ends."""
        bus, sp = self.bus, self.settings
        now = bus.clock.now_ns
        seg = vad.VadSegmenter(vad.VadOptions.from_settings(sp.vad), sp.sample_rate, now(), candidates=sp.asr.transcribe_ahead)
        origin, elapsed = now(), 0.0
        onset_s = 0.0  # when the speech of the open utterance began (seconds on the clock)
        async for chunk in aio.pump(chunks, "audio-in"):
            bus.publish("audio", chunk)
            t, t0 = origin + int(elapsed * 1e9), clock.perf_ns()
            state = self.gate.state(t)
            events = seg.process(chunk.pcm, elapsed) if state == LISTENING else []
            if state == PLAYBACK and self.joiner.opts.hold_across_playback:  # the car speaks: hold, do not cut
                seg.gated(chunk.duration_s)
                self.joiner.muted(t / 1e9, chunk.duration_s)
            if self._released:  # push-to-talk let go: the utterance ends here, trailing silence or not
                self._released = False
                events += seg.flush(elapsed, "button-released")
            elapsed += chunk.duration_s
            self._stream_s = (origin + int(elapsed * 1e9)) / 1e9
            if state == LISTENING and (settled := seg.settled_s()) is not None:
                self.joiner.settled(origin / 1e9 + settled)  # no onset left to announce before this: a hold may end
            for ev in events:
                if ev.candidate is not None:
                    self._transcribe_ahead(ev.candidate)
                if ev.kind == "start":  # a held utterance goes on: merged, not acted on
                    onset_s = origin / 1e9 + (ev.onset_s if ev.onset_s is not None else ev.t_s)
                    self.joiner.started(onset_s)
                if ev.short is not None and self.shorts.after(ev.short, onset_s):
                    bus.publish("utterances", ev.short)  # may finish a held fragment ("Volume ..." + "up")
                if ev.utterance is not None:
                    bus.timing("voice", "vad", (clock.perf_ns() - t0) / 1e6)
                    bus.publish("utterances", self.shorts.before(ev.utterance, onset_s))
        for ev in seg.flush(elapsed, "end-of-input"):
            if ev.utterance is not None:
                bus.publish("utterances", self.shorts.before(ev.utterance, onset_s))
        self.joiner.close()  # no more speech can come: a held question is acted on, not lost
        bus.unexpect("audio")

    def _transcribe_ahead(self, utt: Utterance) -> None:
        """The driver's speech stopped 0.2 s ago: transcribe the utterance now, while the VAD's trailing silence
        runs; :meth:`_hear` uses the transcript if the utterance ends with that very audio (no more speech),
        else it is dropped. Not when the utterance will not be heard alone (a held fragment or a short span goes
        in front of it) or one is still being transcribed ahead."""
        if self.asr is None or self._worker is None or (self.joiner.held is not None and self.joiner.continued) \
                or self.shorts.pending is not None or (self._ahead is not None and not self._ahead[1].done()):
            return
        fut = asyncio.ensure_future(self._worker.call(self.asr.transcribe, utt))
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # a dropped one's error is not left unread
        self._ahead = (utt, fut)

    def _taken_ahead(self, utt: Utterance) -> asyncio.Future | None:
        """The transcription started ahead for exactly this utterance (same times, same audio), if any."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        early, fut = ahead
        same = (early.t_start_ns, early.t_end_ns, len(early.pcm)) == (utt.t_start_ns, utt.t_end_ns, len(utt.pcm)) \
            and np.array_equal(early.pcm, utt.pcm)
        return fut if same else None

    async def button(self, events: Iterator[ButtonEvent]) -> None:
        """Push-to-talk: a press opens the microphone to the VAD, the release ends the utterance."""
        async for event in aio.pump(events, "button"):
            if self.gate.button(event):
                self._released = True

    async def listen(self) -> None:
        """Hear every utterance in turn."""
        await self.handle_inputs(self._hear)

    async def _hear(self, env: Envelope) -> None:
        """ASR (worker thread) -> transcript -> ask back, or intent -> act; a mid-sentence pause holds."""
        bus, sp = self.bus, self.settings
        t0 = clock.perf_ns()
        if not self.joiner.continues(env.msg):
            return  # a short span that finishes nothing held: never transcribed alone
        utt = self.joiner.take(env.msg)  # a fragment the driver went on from comes in front
        ahead = self._taken_ahead(utt)
        early = await ahead if ahead is not None else None  # transcribed while the trailing silence ran
        heard = await self._worker.call(hear, utt, self.asr, self.gate, sp.asr.min_confidence, sp.asr.ask_back,
                                        sp.mute_default_minutes, early, self.rescore)
        bus.timing("voice", "asr", (clock.perf_ns() - t0) / 1e6)
        bus.publish("transcripts", heard.transcript)
        go_on = heard.decision.accept and self.gate.may_go_on()
        if self.joiner.end(utt, heard.transcript.text if go_on else "") and await endpoint.wait_for_rest(
                self.joiner, lambda: max(self._stream_s, bus.clock.now_ns() / 1e9), bus.clock.sleep):
            return  # a mid-sentence pause: heard again with the rest of the sentence
        if heard.ask_back:
            await self.say(heard.ask_back, "ask-back")
        intent, acted = heard.intent, self._acted
        self._acted = None
        if intent is not None and acted is not None and go_on and self._within_hold(acted[2], utt):
            finished = endpoint.continues_command(acted[0].name, acted[1], heard.decision.text, intent.t_ns,
                                                  slots=acted[0].slots, stray_max_words=self.joiner.opts.stray_max_words)
            if finished is not None:  # the rest of the command just acted on ("Slow down." + "your speech")
                if finished.slots == acted[0].slots:
                    return
                intent = finished  # "Turn off the alerts." + "for 15 minutes": the duration changes
        if intent is not None:
            bus.publish("intents", intent)
            await self.act(intent)
            if intent.name in intents.COMMANDS:
                self._acted = (intent, heard.decision.text, utt.t_end_ns / 1e9)

    def _within_hold(self, end_s: float, utt: Utterance) -> bool:
        """Did ``utt``'s speech begin within the question hold after ``end_s`` (end of a command's audio)?"""
        onset_s = utt.t_start_ns / 1e9 + self.settings.vad.pre_roll_s
        return onset_s - end_s <= self.joiner.opts.hold_question_s + self.joiner.onset_lag_s

    async def act(self, intent: Intent) -> None:
        """A command acts at once (its reply spoken); a question goes to the advisory lane."""
        action = controls.apply(intent, self.controls, self.bus.clock.now_ns())
        self.controls = action.controls
        self.output.set_gain(self.controls.gain)
        self.speaker.rate = self.controls.rate
        if action.effect == Effect.STOP_SPEAKING:
            self.output.preempt(Tier.ALERT)
        elif action.effect == Effect.REPEAT and self.advice.last is not None:
            await self.say(self.advice.last.text, "repeat")
        elif action.effect == Effect.WHAT_WAS_THAT and self.last_alert():
            await self.say(self.last_alert(), "what-was-that")
        elif action.effect == Effect.ASK_ADVISORY:
            self.advice.ask(intent)
        if action.reply:
            await self.say(action.reply, f"command:{intent.name}")
